// Profiles: which derivatives a spool's images become, and how they are encoded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace imgspool {

// Sources may be any of these; outputs any but TIFF and HEIC, which browsers cannot show.
enum class Format { jpeg, png, webp, avif, gif, tiff, heic };

const char* format_name(Format f);       // "jpeg", "png", "webp", "avif", "gif", "tiff", "heic"
const char* format_extension(Format f);  // "jpg", "png", "webp", "avif", "gif", "tif", "heic"
const char* format_mime(Format f);       // "image/jpeg", ...
// The formats a variant can be encoded to: "jpeg"/"jpg", "png", "webp", "avif", "gif".
std::optional<Format> parse_output_format(const std::string& name);
bool browser_shows(Format f);  // false for TIFF and HEIC
bool has_animation(Format f);  // GIF and WebP outputs can carry every frame

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
    cover,   // fill the box exactly, crop what overflows (the web thumbnails)
    inside,  // fit inside the box keeping the aspect ratio (the AI-tool presets)
};

// Which part a cover crop keeps (libvips' smartcrop): the centre, the region libvips' attention
// model rates most interesting (skin tones, saturated colour, edges), or the most detailed one.
enum class Crop { centre, attention, entropy };

const char* crop_name(Crop c);                            // "centre", "attention", "entropy"
std::optional<Crop> parse_crop(const std::string& name);  // the names above only

// One encoded output of a variant. format == nullopt means "the source's format".
struct OutputFormat {
    std::optional<Format> format;
    int quality = 85;  // JPEG and WebP quality, 1-100
};

// Where a watermark sits: a corner, the middle of an edge, or the centre.
enum class Gravity {
    centre,
    north,
    south,
    east,
    west,
    north_east,
    north_west,
    south_east,
    south_west
};

const char* gravity_name(Gravity g);                            // "centre", "north-east", ...
std::optional<Gravity> parse_gravity(const std::string& name);  // the names above only

struct WatermarkOverlay;  // the decoded overlay, pipeline/watermark.hpp

// An image composited over a variant after resizing, before encoding (pipeline/watermark.hpp).
struct Watermark {
    std::filesystem::path image;  // the overlay file, absolute once loaded
    Gravity gravity = Gravity::south_east;
    int margin = 16;       // px between the overlay and the edges it sits by; >= 0
    double opacity = 0.5;  // multiplies the overlay's alpha; > 0 and <= 1
    int min_width = 0;     // variants narrower than this (in px) are left unmarked
    // Set by load_watermark (pipeline/watermark_file.hpp): decoded once, shared read-only by
    // every render; the file is never read again. overlay_sha256 is of the file's bytes.
    std::shared_ptr<const WatermarkOverlay> overlay;
    std::string overlay_sha256;
};

struct Variant {
    std::string name;  // "small", "original", "hq" ... becomes {variant} in the key template
    int width = 0;     // box; 0 x 0 means "the source size" (the re-encoded original)
    int height = 0;
    Fit fit = Fit::inside;
    Crop crop = Crop::centre;  // for Fit::cover
    bool enlarge = false;      // never true for the built-in profiles
    std::vector<OutputFormat> outputs;
    std::optional<Watermark> watermark;
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
    // libaom's speed, as libvips' effort 0-9 (cpu-used = 9 - effort). AV1 is slow: 2 encodes
    // several times faster than libvips' default 4 for a few percent more bytes.
    int avif_effort = 2;
    FailOn fail_on = FailOn::warning;  // for every decode of a source
    // What "source" means for a source no browser shows (HEIC, TIFF). jpeg: JPEG, or PNG when
    // the source has alpha (JPEG has none).
    Format source_fallback = Format::jpeg;
    // true: an animated GIF or WebP keeps every frame in its WebP and GIF outputs; false: the
    // first frame only. Either way a source with more than max_frames frames (or pages) is
    // refused, and an animation kept is refused above max_animation_pixels (frames x width x
    // height of the source): all its frames are held decoded while it renders.
    bool animated = false;
    int max_frames = 1000;
    std::uint64_t max_animation_pixels = 100'000'000ull;
    PlaceholderSet placeholders;  // none: the render costs nothing more

    // SHA-256 (hex) over every setting that changes the rendered bytes, plus the renderer's
    // version: equal fingerprints mean a cached derivative set can be reused as is.
    std::string fingerprint() const;
};

// web, dall-e, sora, stable-diffusion.
const std::map<std::string, Profile>& builtin_profiles();

// What this libvips can encode besides JPEG, PNG and WebP (AVIF needs libheif with an AV1
// encoder). Probed once, by encoding a tiny image.
struct Encoders {
    bool avif = false;
    bool gif = false;
};
const Encoders& available_encoders();

// Checks a profile's values (names unique and non-empty, sizes, qualities, an encoder for every
// output format) and says which is wrong.
Status validate_profile(const Profile& p, const Encoders& encoders = available_encoders());

// Output size for a source of src_w x src_h (already auto-oriented) in variant v.
struct Size {
    int width = 0;
    int height = 0;
    bool operator==(const Size&) const = default;
};
Size target_size(const Variant& v, int src_w, int src_h);

}  // namespace imgspool
