// Every limit in one place, checked before any pixel is decoded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "common/error.hpp"
#include "pipeline/profile.hpp"

namespace imgspool {

struct Limits {
    std::uint64_t max_bytes = 10ull * 1024 * 1024;
    int min_width = 100;
    int min_height = 100;
    int max_width = 10000;
    int max_height = 10000;
    std::uint64_t max_pixels = 100'000'000ull;  // against decompression bombs
};

// The formats a source may be in, for reasons: "not a " + this + " image".
inline constexpr const char* kSourceFormatNames = "JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC";

// What the header says about a source.
struct SourceInfo {
    Format format = Format::jpeg;
    int width = 0;  // as stored (before EXIF orientation)
    int height = 0;
    int orientation = 1;  // EXIF 1-8
    std::uint64_t bytes = 0;
    bool has_icc_profile = false;  // an embedded ICC profile: render converts it to sRGB
    bool has_alpha = false;
    int frames = 1;  // frames of an animation (GIF, WebP), pages of a TIFF, images of a HEIF

    // An animation (more than one frame of a GIF or WebP): a profile may keep its frames.
    bool animation() const {
        return frames > 1 && (format == Format::gif || format == Format::webp);
    }
};

// Magic bytes only: JPEG FF D8 FF, PNG 89 50 4E 47 0D 0A 1A 0A, WebP RIFF....WEBP, GIF GIF87a
// or GIF89a, TIFF II*\0 or MM\0*, HEIC and AVIF an ftyp box with a HEIF brand (the header then
// says which codec it holds). The first 64 bytes are enough.
std::optional<Format> sniff_format(std::string_view data);

// Size, type by magic, dimensions and pixel count from the header. Stage::validate errors
// with reasons such as "empty file (0 bytes)", "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC
// image (starts with 25 50 44 46)", "image is 90x90, smaller than the minimum 100x100". For an
// animation, width and height are one frame's.
Result<SourceInfo> validate_source(std::string_view data, const Limits& limits);

// The same judgement for a file on disk, reading its first bytes and its header only (an HTTP
// upload streamed to a temporary file is judged before it is accepted, never loaded whole).
// Opened O_NOFOLLOW; a path that is not a regular file fails. Reasons are validate_source's;
// a file that cannot be opened or read is a Stage::validate error, transient when the errno
// passes by itself (a full table of open files, say).
Result<SourceInfo> validate_source_file(const std::filesystem::path& path, const Limits& limits);

// The profile's bounds on what a source's frames cost, from its header (validate_source's
// info): more than max_frames frames or pages is refused for every profile; an animation the
// profile keeps (animated = true) also above max_animation_pixels, frames x width x height.
Status check_frames(const SourceInfo& info, const Profile& profile);

}  // namespace imgspool
