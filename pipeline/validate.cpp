// Every limit in one place: size, type by magic bytes, and dimensions from the header only.
#include "pipeline/validate.hpp"

#include <cstdio>
#include <string>

#include "pipeline/vips_handles.hpp"

namespace imgspool {

namespace {

const char* display_name(Format f) {
    switch (f) {
        case Format::jpeg:
            return "JPEG";
        case Format::png:
            return "PNG";
        case Format::webp:
            return "WebP";
    }
    return "image";
}

// "25 50 44 46": the first bytes, for a reason a person can look up.
std::string leading_hex(std::string_view data) {
    std::string hex;
    for (std::size_t i = 0; i < data.size() && i < 4; ++i) {
        char byte[4];
        std::snprintf(byte, sizeof byte, "%02X", static_cast<unsigned char>(data[i]));
        if (!hex.empty()) hex += ' ';
        hex += byte;
    }
    return hex;
}

std::string dims(int w, int h) {
    return std::to_string(w) + "x" + std::to_string(h);
}

// Opens the source with the loader its magic bytes name. Loaders read only the header until
// pixels are asked for, and none are: this never decodes the image. `data` must outlive it.
Result<VipsImagePtr> open_header(std::string_view data, Format format) {
    void* buf = const_cast<char*>(data.data());
    VipsImage* out = nullptr;
    int rc = -1;
    switch (format) {
        case Format::jpeg:
            rc = vips_jpegload_buffer(buf, data.size(), &out, "access", VIPS_ACCESS_SEQUENTIAL,
                                      nullptr);
            break;
        case Format::png:
            rc = vips_pngload_buffer(buf, data.size(), &out, "access", VIPS_ACCESS_SEQUENTIAL,
                                     nullptr);
            break;
        case Format::webp:
            rc = vips_webpload_buffer(buf, data.size(), &out, "access", VIPS_ACCESS_SEQUENTIAL,
                                      nullptr);
            break;
    }
    VipsImagePtr image = own(out);
    if (rc != 0 || !image) {
        return vips_failure(Stage::validate, std::string("cannot read the ") +
                                                 display_name(format) +
                                                 " header, the file is damaged");
    }
    return image;
}

}  // namespace

std::optional<Format> sniff_format(std::string_view data) {
    auto starts = [&](std::string_view magic) { return data.substr(0, magic.size()) == magic; };
    if (starts(std::string_view("\xFF\xD8\xFF", 3))) return Format::jpeg;
    if (starts(std::string_view("\x89PNG\r\n\x1A\n", 8))) return Format::png;
    if (data.size() >= 12 && starts("RIFF") && data.substr(8, 4) == "WEBP") return Format::webp;
    return std::nullopt;
}

Result<SourceInfo> validate_source(std::string_view data, const Limits& limits) {
    auto fail = [](std::string reason) { return make_error(Stage::validate, std::move(reason)); };
    if (data.empty()) return fail("empty file (0 bytes)");
    if (data.size() > limits.max_bytes) {
        return fail("file is " + std::to_string(data.size()) + " bytes, larger than the limit of " +
                    std::to_string(limits.max_bytes) + " bytes");
    }
    const std::optional<Format> format = sniff_format(data);
    if (!format) {
        return fail("not a JPEG, PNG or WebP image (starts with " + leading_hex(data) + ")");
    }
    Result<VipsImagePtr> header = open_header(data, *format);
    if (!header) return header.error();
    VipsImage* image = header->get();

    SourceInfo info;
    info.format = *format;
    info.width = vips_image_get_width(image);
    info.height = vips_image_get_height(image);
    info.orientation = vips_image_get_orientation(image);
    info.bytes = data.size();
    info.has_icc_profile = vips_image_get_typeof(image, VIPS_META_ICC_NAME) != 0;

    if (info.width < limits.min_width || info.height < limits.min_height) {
        return fail("image is " + dims(info.width, info.height) + ", smaller than the minimum " +
                    dims(limits.min_width, limits.min_height));
    }
    const std::uint64_t pixels = static_cast<std::uint64_t>(info.width) * info.height;
    if (pixels > limits.max_pixels) {
        return fail("image is " + dims(info.width, info.height) + " = " + std::to_string(pixels) +
                    " pixels, more than the limit of " + std::to_string(limits.max_pixels) +
                    " (decompression bomb protection)");
    }
    if (info.width > limits.max_width || info.height > limits.max_height) {
        return fail("image is " + dims(info.width, info.height) + ", larger than the maximum " +
                    dims(limits.max_width, limits.max_height));
    }
    return info;
}

}  // namespace imgspool
