// Removes metadata chunks from a WebP file (private to the imaging code).
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool {

// Drops the EXIF, XMP and ICC chunks of an extended (VP8X) WebP and clears their flags; a
// simple WebP has none and comes back unchanged. Stage::render error if the RIFF is malformed.
Result<std::string> strip_webp_metadata(std::string_view webp);

}  // namespace imgspool
