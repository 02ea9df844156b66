// Every limit in one place: size, type by magic bytes, and dimensions from the header only.
#include "pipeline/validate.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>

#include "common/fs.hpp"
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

Error damaged_header(Format format) {
    return vips_failure(Stage::validate, std::string("cannot read the ") + display_name(format) +
                                             " header, the file is damaged");
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
    if (rc != 0 || !image) return damaged_header(format);
    return image;
}

// The same for a file, through a libvips source on its descriptor: only what the header
// needs is read.
Result<VipsImagePtr> open_header(int fd, Format format) {
    std::unique_ptr<VipsSource, GObjectUnref> source(vips_source_new_from_descriptor(fd));
    if (!source) return vips_failure(Stage::validate, "cannot read the file");
    VipsImage* out = nullptr;
    int rc = -1;
    switch (format) {
        case Format::jpeg:
            rc =
                vips_jpegload_source(source.get(), &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::png:
            rc = vips_pngload_source(source.get(), &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::webp:
            rc =
                vips_webpload_source(source.get(), &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
    }
    VipsImagePtr image = own(out);
    if (rc != 0 || !image) return damaged_header(format);
    return image;
}

Error fail(std::string reason) {
    return make_error(Stage::validate, std::move(reason));
}

// Size and type, from the size and the first bytes: what is judged before any header.
Result<Format> check_size_and_type(std::uint64_t size, std::string_view head,
                                   const Limits& limits) {
    if (size == 0) return fail("empty file (0 bytes)");
    if (size > limits.max_bytes) {
        return fail("file is " + std::to_string(size) + " bytes, larger than the limit of " +
                    std::to_string(limits.max_bytes) + " bytes");
    }
    const std::optional<Format> format = sniff_format(head);
    if (!format) {
        return fail("not a JPEG, PNG or WebP image (starts with " + leading_hex(head) + ")");
    }
    return *format;
}

// What the header says, against the dimension and pixel limits.
Result<SourceInfo> check_header(VipsImage* image, Format format, std::uint64_t size,
                                const Limits& limits) {
    SourceInfo info;
    info.format = format;
    info.width = vips_image_get_width(image);
    info.height = vips_image_get_height(image);
    info.orientation = vips_image_get_orientation(image);
    info.bytes = size;
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

Error file_error(std::string what, int err) {
    Error e = make_error(Stage::validate, what + ": " + fs::errno_text(err));
    e.transient = is_transient_errno(err);
    return e;
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
    Result<Format> format = check_size_and_type(data.size(), data, limits);
    if (!format) return format.error();
    Result<VipsImagePtr> header = open_header(data, *format);
    if (!header) return header.error();
    return check_header(header->get(), *format, data.size(), limits);
}

Result<SourceInfo> validate_source_file(const std::filesystem::path& path, const Limits& limits) {
    // O_NONBLOCK: a FIFO put in the file's place must not hang the caller in open().
    fs::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) return file_error("cannot open the file", errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return file_error("cannot stat the file", errno);
    if (!S_ISREG(st.st_mode)) return fail("not a regular file");
    const auto size = static_cast<std::uint64_t>(st.st_size);

    char head[16];
    std::size_t got = 0;
    while (got < sizeof head) {
        const ssize_t n = ::pread(fd.get(), head + got, sizeof head - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return file_error("cannot read the file", errno);
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    Result<Format> format = check_size_and_type(size, std::string_view(head, got), limits);
    if (!format) return format.error();
    Result<VipsImagePtr> header = open_header(fd.get(), *format);
    if (!header) return header.error();
    return check_header(header->get(), *format, size, limits);
}

}  // namespace imgspool
