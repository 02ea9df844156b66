// Cuts and scales one variant out of an already decoded image (private to the imaging code).
#pragma once

#include <vips/vips.h>

#include <functional>

#include "common/error.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/vips_handles.hpp"

namespace imgspool {

// A region of an image, in its pixels. A smart crop's place is found when it is cut: left and
// top are then the centred ones, and two regions are the same when their size and crop are.
struct Region {
    int left = 0;
    int top = 0;
    int width = 0;
    int height = 0;
    Crop crop = Crop::centre;
    bool operator==(const Region&) const = default;
};

// The part of one frame of base_w x base_h that frame() shows for this target: for Fit::cover
// the largest region of the target's aspect ratio (centred, or where `crop` finds the subject),
// for Fit::inside the whole frame.
Region framing(int base_w, int base_h, Size target, Fit fit, Crop crop = Crop::centre);

// `base` shows the whole (auto-oriented) source at some scale, every frame of an animation
// stacked (page-height set). Returns each frame exactly target.width x target.height:
// framing() of it, resampled to the target size; an animation's frames all cut at the place
// found in its first (entropy crops there as attention). Stage::render errors.
Result<VipsImagePtr> frame(VipsImage* base, Size target, Fit fit, Crop crop = Crop::centre);

// The number of frames stacked in an image: height / page-height, 1 without page-height.
int frame_count(VipsImage* image);

// The first frame of an animation (its frames stacked, page-height set); a still image as is.
Result<VipsImagePtr> first_frame(VipsImage* image);

// fn applied to every frame of `stack` (frames stacked with page-height set; a still image is
// one frame) in order, and the results stacked again: all must have one size, which the
// result's page-height becomes.
Result<VipsImagePtr> each_frame(VipsImage* stack,
                                const std::function<Result<VipsImagePtr>(VipsImage*)>& fn);

}  // namespace imgspool
