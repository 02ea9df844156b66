// Cuts and scales one variant out of an already decoded image (private to the imaging code).
#pragma once

#include <vips/vips.h>

#include "common/error.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/vips_handles.hpp"

namespace imgspool {

// `base` shows the whole (auto-oriented) source at some scale. Returns exactly target.width x
// target.height: for Fit::cover the largest centred region of the target's aspect ratio,
// for Fit::inside the whole image, resampled to the target size. Stage::render errors.
Result<VipsImagePtr> frame(VipsImage* base, Size target, Fit fit);

}  // namespace imgspool
