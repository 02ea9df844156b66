// Cuts and scales one variant out of an already decoded image (private to the imaging code).
#pragma once

#include <vips/vips.h>

#include "common/error.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/vips_handles.hpp"

namespace imgspool {

// A region of an image, in its pixels.
struct Region {
    int left = 0;
    int top = 0;
    int width = 0;
    int height = 0;
    bool operator==(const Region&) const = default;
};

// The part of a base of base_w x base_h that frame() shows for this target: for Fit::cover the
// largest centred region of the target's aspect ratio, for Fit::inside the whole base.
Region framing(int base_w, int base_h, Size target, Fit fit);

// `base` shows the whole (auto-oriented) source at some scale. Returns exactly target.width x
// target.height: framing() of the base, resampled to the target size. Stage::render errors.
Result<VipsImagePtr> frame(VipsImage* base, Size target, Fit fit);

}  // namespace imgspool
