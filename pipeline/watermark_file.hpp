// Loading a variant's watermark overlay with the configuration: read and checked once, then
// held in memory for every render. The public half of pipeline/watermark.hpp.
#pragma once

#include <cstdint>

#include "common/error.hpp"
#include "pipeline/profile.hpp"

namespace imgspool {

// Overlays larger than this are refused: the decoded overlay is held in memory for as long as
// its configuration runs (4096 x 4096 RGBA = 64 MiB), and a watermark is never that big.
inline constexpr std::uintmax_t kMaxWatermarkFileBytes = 16 * 1024 * 1024;
inline constexpr int kMaxWatermarkSide = 4096;

// Reads w.image (a regular PNG, WebP or JPEG file of at most kMaxWatermarkFileBytes and
// kMaxWatermarkSide px a side), decodes it fully (auto-oriented, sRGB, 8-bit, alpha added when
// missing) into w.overlay and hashes its bytes into w.overlay_sha256. Stage::config errors:
// `file` is w.image, `reason` why it cannot be used ("no such file", "not a regular file",
// "not a PNG, WebP or JPEG file", "cannot decode it: ...", too many bytes or pixels).
Status load_watermark(Watermark& w);

}  // namespace imgspool
