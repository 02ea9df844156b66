// One saver call per format, with the profile's settings; alpha flattened onto white for JPEG.
// JPEG: libjpeg-turbo at the given Q (Annex K tables), 4:2:0 below Q 90, optimised Huffman
// tables, progressive if asked. PNG: zlib at png_compression with adaptive row filters. WebP:
// libwebp lossy at the given quality and effort (method) with sharp YUV conversion, every frame
// of an animation. AVIF: libheif with libaom, 8 bits, at the given Q and effort. GIF: cgif,
// palettes quantised by libimagequant, every frame of an animation.
#include "pipeline/encode.hpp"

#include "pipeline/frame.hpp"
#include "pipeline/vips_handles.hpp"
#include "pipeline/webp_metadata.hpp"

namespace imgspool {

namespace {

Result<VipsImagePtr> flatten_on_white(VipsImage* image) {
    const double white = image->BandFmt == VIPS_FORMAT_USHORT ? 65535.0 : 255.0;
    VipsArrayDoublePtr background(VIPS_AREA(vips_array_double_new(&white, 1)));
    VipsImage* out = nullptr;
    if (vips_flatten(image, &out, "background",
                     reinterpret_cast<VipsArrayDouble*>(background.get()), nullptr) != 0) {
        return vips_failure(Stage::render, "cannot flatten the alpha channel onto white");
    }
    return own(out);
}

}  // namespace

Result<std::string> encode(VipsImage* image, const EncodeSettings& settings) {
    VipsImagePtr input = share(image);
    if (frame_count(image) > 1 && !has_animation(settings.format)) {
        Result<VipsImagePtr> first = first_frame(image);
        if (!first) return first.error();
        input = std::move(*first);
    }
    if (settings.format == Format::jpeg && vips_image_hasalpha(input.get())) {
        Result<VipsImagePtr> flat = flatten_on_white(input.get());
        if (!flat) return flat.error();
        input = std::move(*flat);
    }
    void* raw = nullptr;
    std::size_t length = 0;
    const gboolean strip = settings.strip ? TRUE : FALSE;
    int rc = -1;
    switch (settings.format) {
        case Format::jpeg:
            rc = vips_jpegsave_buffer(input.get(), &raw, &length, "Q", settings.quality,
                                      "interlace", settings.progressive ? TRUE : FALSE,
                                      "optimize_coding", TRUE, "strip", strip, nullptr);
            break;
        case Format::png:
            // Adaptive row filters (the best of the five PNG filters per row): photographs
            // come out at about half the bytes of libvips' default of no filtering.
            rc = vips_pngsave_buffer(input.get(), &raw, &length, "compression",
                                     settings.png_compression, "filter",
                                     VIPS_FOREIGN_PNG_FILTER_ALL, "strip", strip, nullptr);
            break;
        case Format::webp:
            // Sharp RGB->YUV conversion: chroma edges keep their colour (bench/REPORT.md: the
            // web crops' butteraugli ~2.1-2.4 with it, ~3.0 without) for ~20% more WebP CPU,
            // which the lower effort (method 2, not libwebp's 4) more than pays back.
            rc = vips_webpsave_buffer(input.get(), &raw, &length, "Q", settings.quality,
                                      "smart_subsample", TRUE, "effort", settings.webp_effort,
                                      "strip", strip, nullptr);
            break;
        case Format::avif:
            rc = vips_heifsave_buffer(input.get(), &raw, &length, "Q", settings.quality,
                                      "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "effort",
                                      settings.avif_effort, "bitdepth", 8, "strip", strip, nullptr);
            break;
        case Format::gif:
            rc = vips_gifsave_buffer(input.get(), &raw, &length, "strip", strip, nullptr);
            break;
        case Format::tiff:
        case Format::heic:
            return make_error(Stage::render, std::string("cannot encode ") +
                                                 format_name(settings.format) +
                                                 ": it is a source format only");
    }
    GBuffer buffer(raw);
    if (rc != 0 || !buffer) {
        return vips_failure(Stage::render, std::string("cannot encode the image as ") +
                                               format_name(settings.format));
    }
    std::string bytes(static_cast<const char*>(buffer.get()), length);
    // libvips 8.14.1's webpsave writes an EXIF chunk even with strip=TRUE.
    if (settings.format == Format::webp && settings.strip) return strip_webp_metadata(bytes);
    return bytes;
}

}  // namespace imgspool
