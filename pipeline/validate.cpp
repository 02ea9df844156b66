// Every limit in one place: size, type by magic bytes, and dimensions from the header only.
#include "pipeline/validate.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
        case Format::avif:
            return "AVIF";
        case Format::gif:
            return "GIF";
        case Format::tiff:
            return "TIFF";
        case Format::heic:
            return "HEIC";
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
// (The GIF loader scans the whole file to count the frames, without decoding them.)
Result<VipsImagePtr> open_header(std::string_view data, Format format) {
    void* buf = const_cast<char*>(data.data());
    const std::size_t n = data.size();
    VipsImage* out = nullptr;
    int rc = -1;
    switch (format) {
        case Format::jpeg:
            rc = vips_jpegload_buffer(buf, n, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::png:
            rc = vips_pngload_buffer(buf, n, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::webp:
            rc = vips_webpload_buffer(buf, n, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::gif:
            rc = vips_gifload_buffer(buf, n, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::tiff:
            rc = vips_tiffload_buffer(buf, n, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::avif:
        case Format::heic:
            rc = vips_heifload_buffer(buf, n, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
    }
    VipsImagePtr image = own(out);
    if (rc != 0 || !image) return damaged_header(format);
    return image;
}

// The same for a file, through a libvips source on its descriptor: only what the header
// needs is read.
Result<VipsImagePtr> open_header(int fd, Format format) {
    std::unique_ptr<VipsSource, GObjectUnref> owned(vips_source_new_from_descriptor(fd));
    if (!owned) return vips_failure(Stage::validate, "cannot read the file");
    VipsSource* source = owned.get();
    VipsImage* out = nullptr;
    int rc = -1;
    switch (format) {
        case Format::jpeg:
            rc = vips_jpegload_source(source, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::png:
            rc = vips_pngload_source(source, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::webp:
            rc = vips_webpload_source(source, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::gif:
            rc = vips_gifload_source(source, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::tiff:
            rc = vips_tiffload_source(source, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
            break;
        case Format::avif:
        case Format::heic:
            rc = vips_heifload_source(source, &out, "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
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
        return fail(std::string("not a ") + kSourceFormatNames + " image (starts with " +
                    leading_hex(head) + ")");
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
    info.has_alpha = vips_image_hasalpha(image) != 0;
    info.frames = std::max(1, vips_image_get_n_pages(image));
    // HEIF brands do not always say which codec: the loader does (AV1 is AVIF).
    const char* codec = nullptr;
    if ((format == Format::heic || format == Format::avif) &&
        vips_image_get_typeof(image, "heif-compression") != 0 &&
        vips_image_get_string(image, "heif-compression", &codec) == 0 && codec != nullptr) {
        info.format = std::string_view(codec) == "av1" ? Format::avif : Format::heic;
    }

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

// An ISO-BMFF file whose ftyp box names a HEIF brand: AVIF when an AV1 brand comes first.
std::optional<Format> sniff_heif(std::string_view data) {
    if (data.size() < 12 || data.substr(4, 4) != "ftyp") return std::nullopt;
    auto brand_of = [](std::string_view b) -> std::optional<Format> {
        for (std::string_view avif : {"avif", "avis"}) {
            if (b == avif) return Format::avif;
        }
        for (std::string_view heic :
             {"heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs", "mif1", "msf1"}) {
            if (b == heic) return Format::heic;
        }
        return std::nullopt;
    };
    const std::uint32_t box =
        static_cast<unsigned char>(data[0]) << 24 | static_cast<unsigned char>(data[1]) << 16 |
        static_cast<unsigned char>(data[2]) << 8 | static_cast<unsigned char>(data[3]);
    std::optional<Format> found = brand_of(data.substr(8, 4));
    // Compatible brands follow the minor version; mif1 major brands list the codec's brand.
    const std::size_t end = std::min<std::size_t>(data.size(), box);
    for (std::size_t at = 16; at + 4 <= end && found != Format::avif; at += 4) {
        const std::optional<Format> compatible = brand_of(data.substr(at, 4));
        if (compatible == Format::avif || !found) found = compatible;
    }
    return found;
}

}  // namespace

std::optional<Format> sniff_format(std::string_view data) {
    auto starts = [&](std::string_view magic) { return data.substr(0, magic.size()) == magic; };
    if (starts(std::string_view("\xFF\xD8\xFF", 3))) return Format::jpeg;
    if (starts(std::string_view("\x89PNG\r\n\x1A\n", 8))) return Format::png;
    if (data.size() >= 12 && starts("RIFF") && data.substr(8, 4) == "WEBP") return Format::webp;
    if (starts("GIF87a") || starts("GIF89a")) return Format::gif;
    if (starts(std::string_view("II*\0", 4)) || starts(std::string_view("MM\0*", 4))) {
        return Format::tiff;
    }
    return sniff_heif(data);
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

    char head[64];  // enough for an ftyp box with a few compatible brands
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

namespace imgspool {

Status check_frames(const SourceInfo& info, const Profile& profile) {
    const char* what =
        info.format == Format::tiff || info.format == Format::heic || info.format == Format::avif
            ? "pages"
            : "frames";
    if (info.frames > profile.max_frames) {
        return fail(std::string(display_name(info.format)) + " has " + std::to_string(info.frames) +
                    " " + what + ", more than profile \"" + profile.name +
                    "\" allows (max_frames = " + std::to_string(profile.max_frames) + ")");
    }
    if (!profile.animated || !info.animation()) return ok_status();
    const std::uint64_t pixels = static_cast<std::uint64_t>(info.frames) *
                                 static_cast<std::uint64_t>(info.width) *
                                 static_cast<std::uint64_t>(info.height);
    if (pixels > profile.max_animation_pixels) {
        return fail("animation of " + std::to_string(info.frames) + " frames of " +
                    dims(info.width, info.height) + " = " + std::to_string(pixels) +
                    " pixels, more than profile \"" + profile.name +
                    "\" allows (max_animation_pixels = " +
                    std::to_string(profile.max_animation_pixels) + ")");
    }
    return ok_status();
}

}  // namespace imgspool
