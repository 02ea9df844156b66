// Compositing a watermark over a rendered variant (private to the imaging code; the loading
// is in pipeline/watermark_file.hpp).
#pragma once

#include <vips/vips.h>

#include "common/error.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/vips_handles.hpp"

namespace imgspool {

// What load_watermark decoded: an 8-bit sRGB image with alpha (4 bands), in memory, never
// modified, so any number of renders may read it at once.
struct WatermarkOverlay {
    VipsImagePtr image;
};

// `image` with w's overlay composited over it (OVER, alpha premultiplied for the blend): the
// overlay scaled down (never up) to fit inside the image less `margin` on every side, placed
// by `gravity` `margin` px from the edges it sits by, its alpha multiplied by `opacity`.
// The result has the image's size, bands (no alpha is added) and format. Images narrower
// than min_width, or with no room left inside the margins, come back unchanged (shared).
// A pure function of its arguments: `image` is not modified, and neither is the overlay.
// Stage::render errors.
Result<VipsImagePtr> apply_watermark(VipsImage* image, const Watermark& w);

}  // namespace imgspool
