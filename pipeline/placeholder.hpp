// Progressive-loading placeholders made from a decoded image (private to the imaging code): a
// BlurHash string and a tiny blurred WebP as a data: URI, for a page to show while the real
// derivative loads.
#pragma once

#include <vips/vips.h>

#include <cstddef>

#include "common/error.hpp"
#include "pipeline/profile.hpp"
// Placeholders is a plain record of the job (no code): the store keeps what this makes.
#include "store/job_records.hpp"

namespace imgspool {

// Every LQIP data: URI, "data:image/webp;base64," included, is shorter than this.
inline constexpr std::size_t kMaxLqipBytes = 1024;

// The placeholders `which` asks for, from `decoded` (auto-oriented and in sRGB, as render()
// decodes it; alpha is flattened onto white here); the others stay "". Both come from one copy
// of at most 32 x 32 pixels, never from the full-size pixels:
//   blurhash: 4 x 3 components for a landscape or square image, 3 x 4 for a portrait one (28
//             characters), enough for a blurred layout of colours, as BlurHash suggests;
//   lqip:     20 px on the long side, Gaussian blur sigma 1, WebP without metadata at low
//             quality, smaller and lower quality again while the URI would reach kMaxLqipBytes.
// Stage::render errors, e.g. when even the smallest try does not fit.
Result<Placeholders> make_placeholders(VipsImage* decoded, const PlaceholderSet& which);

}  // namespace imgspool
