// Encodes one rendered image into JPEG, PNG or WebP bytes (private to the imaging code).
#pragma once

#include <vips/vips.h>

#include <string>

#include "common/error.hpp"
#include "pipeline/profile.hpp"

namespace imgspool {

struct EncodeSettings {
    Format format = Format::jpeg;
    int quality = 85;         // JPEG and WebP
    bool progressive = true;  // JPEG
    int png_compression = 3;
    int webp_effort = 2;  // libwebp method 0-6
    bool strip = true;    // drop EXIF/XMP/IPTC/ICC
};

// JPEG has no alpha: an image with alpha is flattened onto white first. Stage::render errors.
Result<std::string> encode(VipsImage* image, const EncodeSettings& settings);

}  // namespace imgspool
