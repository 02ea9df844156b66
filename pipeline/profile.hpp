// Profiles: which derivatives a spool's images become, and how they are encoded.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace imgspool {

enum class Format { jpeg, png, webp };

const char* format_name(Format f);                            // "jpeg", "png", "webp"
const char* format_extension(Format f);                       // "jpg", "png", "webp"
const char* format_mime(Format f);                            // "image/jpeg", ...
std::optional<Format> parse_format(const std::string& name);  // "jpeg"/"jpg", "png", "webp"

// How strict the decoder is with a source, as libvips' fail_on (and sharp's failOn) has it:
//   truncated: fail only on truncated data; corrupt data decodes (libjpeg draws grey blocks);
//   error:     also fail on decoder errors; libjpeg reports corrupt entropy data as a warning,
//              so a corrupt JPEG still decodes;
//   warning:   fail on any warning too: corrupt JPEG data ("bad Huffman code", "premature end
//              of data segment") fails. sharp's default, and ours.
enum class FailOn { truncated, error, warning };

const char* fail_on_name(FailOn f);                            // "truncated", "error", "warning"
std::optional<FailOn> parse_fail_on(const std::string& name);  // the names above only

enum class Fit {
    cover,   // fill the box exactly, centre crop what overflows (the web thumbnails)
    inside,  // fit inside the box keeping the aspect ratio (the AI-tool presets)
};

// One encoded output of a variant. format == nullopt means "the source's format".
struct OutputFormat {
    std::optional<Format> format;
    int quality = 85;  // JPEG and WebP quality, 1-100
};

struct Variant {
    std::string name;  // "small", "original", "hq" ... becomes {variant} in the key template
    int width = 0;     // box; 0 x 0 means "the source size" (the re-encoded original)
    int height = 0;
    Fit fit = Fit::inside;
    bool enlarge = false;  // never true for the built-in profiles
    std::vector<OutputFormat> outputs;
};

// The progressive-loading placeholders a profile asks for (pipeline/placeholder.hpp).
struct PlaceholderSet {
    bool blurhash = false;  // a BlurHash string
    bool lqip = false;      // a tiny blurred WebP as a data: URI
    bool any() const { return blurhash || lqip; }
    bool operator==(const PlaceholderSet&) const = default;
};

struct Profile {
    std::string name;
    std::vector<Variant> variants;
    bool keep_metadata = false;  // false: strip EXIF/XMP/IPTC (ICC is converted to sRGB anyway)
    bool jpeg_progressive = true;
    // zlib level 0-9. 3 with the adaptive row filters compresses photos to about half the
    // bytes of level 9 without filters, in about the same time; 9 costs ~9x the CPU for ~10% less.
    int png_compression = 3;
    // libwebp's method 0-6 (libvips' `effort`). 2 costs about a third less CPU than libwebp's
    // default 4 for ~2% more bytes at the same quality setting; the bench measured the scores.
    int webp_effort = 2;
    FailOn fail_on = FailOn::warning;  // for every decode of a source
    PlaceholderSet placeholders;       // none: the render costs nothing more

    // SHA-256 (hex) over every setting that changes the rendered bytes, plus the renderer's
    // version: equal fingerprints mean a cached derivative set can be reused as is.
    std::string fingerprint() const;
};

// web, dall-e, sora, stable-diffusion.
const std::map<std::string, Profile>& builtin_profiles();

// Checks a profile's values (names unique and non-empty, sizes, qualities) and says which is wrong.
Status validate_profile(const Profile& p);

// Output size for a source of src_w x src_h (already auto-oriented) in variant v.
struct Size {
    int width = 0;
    int height = 0;
    bool operator==(const Size&) const = default;
};
Size target_size(const Variant& v, int src_w, int src_h);

}  // namespace imgspool
