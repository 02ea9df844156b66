// The BlurHash encoder (https://github.com/woltapp/blurhash), over plain sRGB bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/error.hpp"

namespace imgspool {

// The BlurHash of a width x height image given as rows of 8-bit sRGB triplets (no padding):
// x_components x y_components cosine factors (1-9 each) of the linear-light image, quantised
// and written in base 83; 4 + 2 x components characters. The AC factors are scaled by the
// largest magnitude among them, as the reference C encoder does (the npm package's encoder takes
// the largest signed value instead, so its strings differ for images whose strongest component
// is negative; every decoder reads both). Stage::render error for a buffer that does not hold
// width x height x 3 bytes, or for components outside 1-9.
Result<std::string> blurhash_encode(std::span<const std::uint8_t> rgb, int width, int height,
                                    int x_components, int y_components);

}  // namespace imgspool
