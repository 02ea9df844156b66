// Encodes one rendered image into JPEG, PNG, WebP, AVIF or GIF bytes (private to the imaging
// code).
#pragma once

#include <vips/vips.h>

#include <string>

#include "common/error.hpp"
#include "pipeline/profile.hpp"

namespace imgspool {

struct EncodeSettings {
    Format format = Format::jpeg;
    int quality = 85;         // JPEG, WebP and AVIF
    bool progressive = true;  // JPEG
    int png_compression = 3;
    int webp_effort = 2;  // libwebp method 0-6
    int avif_effort = 2;  // libvips' effort 0-9 (libaom cpu-used = 9 - effort)
    bool strip = true;    // drop EXIF/XMP/IPTC/ICC
};

// JPEG has no alpha: an image with alpha is flattened onto white first. An animation (frames
// stacked, with page-height set) stays one in WebP and GIF; other formats take its first frame.
// Stage::render errors.
Result<std::string> encode(VipsImage* image, const EncodeSettings& settings);

}  // namespace imgspool
