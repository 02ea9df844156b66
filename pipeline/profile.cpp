// Formats, the built-in profiles, profile checks, output-size maths and the cache fingerprint.
#include "pipeline/profile.hpp"

#include <vips/vips.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>
#include <utility>

#include "pipeline/hash.hpp"
#include "pipeline/render.hpp"
#include "pipeline/vips_handles.hpp"

namespace imgspool {

namespace {

// Bump whenever the renderer changes how it produces bytes for the same settings.
constexpr const char* kRendererVersion = "imgspool-render-3";
// Bump whenever pipeline/placeholder.cpp changes what it makes from the same pixels.
constexpr const char* kPlaceholderVersion = "imgspool-placeholder-1";

Variant box(std::string name, int w, int h, Fit fit, std::vector<OutputFormat> outputs) {
    Variant v;
    v.name = std::move(name);
    v.width = w;
    v.height = h;
    v.fit = fit;
    v.outputs = std::move(outputs);
    return v;
}

Profile web_profile() {
    const std::vector<OutputFormat> source_and_webp = {{std::nullopt, 85}, {Format::webp, 85}};
    Profile p;
    p.name = "web";
    p.variants = {box("small", 150, 150, Fit::cover, source_and_webp),
                  box("medium", 400, 400, Fit::cover, source_and_webp),
                  box("large", 800, 800, Fit::cover, source_and_webp),
                  box("original", 0, 0, Fit::inside, {{std::nullopt, 85}})};
    return p;
}

// The AI-tool presets: a JPEG "normal" and a WebP "hq", fitted inside the box, never enlarged.
Profile ai_profile(std::string name, Size normal, int normal_q, Size hq) {
    Profile p;
    p.name = std::move(name);
    p.variants = {
        box("normal", normal.width, normal.height, Fit::inside, {{Format::jpeg, normal_q}}),
        box("hq", hq.width, hq.height, Fit::inside, {{Format::webp, 95}})};
    return p;
}

bool filename_safe(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '-';
    });
}

Status config_error(const Profile& p, const std::string& what) {
    return make_error(Stage::config, "profile \"" + p.name + "\": " + what);
}

// The config reader checks each key as it reads it; this catches profiles built in code.
Status validate_watermark(const Profile& p, const std::string& where, const Watermark& w) {
    if (w.margin < 0 || w.min_width < 0) {
        return config_error(p, where + "watermark margin and min_width must be >= 0");
    }
    if (!(w.opacity > 0.0 && w.opacity <= 1.0)) {
        return config_error(p, where + "watermark opacity must be > 0 and <= 1");
    }
    if (!w.overlay) {
        return config_error(p, where + "watermark image " + w.image.string() + " is not loaded");
    }
    return ok_status();
}

// Shortest text that reads back as the same double.
std::string exact(double value) {
    std::array<char, 32> text{};
    const auto end = std::to_chars(text.data(), text.data() + text.size(), value).ptr;
    return std::string(text.data(), end);
}

// An output format this libvips cannot encode: the reason, or "" when it can.
std::string missing_encoder(Format f, const Encoders& encoders) {
    if (f == Format::avif && !encoders.avif) {
        return "AVIF output needs libvips with libheif and an AV1 encoder (libaom); this one "
               "cannot encode AVIF";
    }
    if (f == Format::gif && !encoders.gif) {
        return "GIF output needs libvips built with cgif; this one cannot encode GIF";
    }
    return {};
}

Status validate_variant(const Profile& p, const Variant& v, const Encoders& encoders) {
    const std::string where = "variant \"" + v.name + "\": ";
    if (v.width < 0 || v.height < 0 || (v.width == 0) != (v.height == 0)) {
        return config_error(p, where + "size " + std::to_string(v.width) + "x" +
                                   std::to_string(v.height) +
                                   " must be two positive numbers, or 0x0 for the source size");
    }
    if (v.crop != Crop::centre && v.fit != Fit::cover) {
        return config_error(p, where + "crop = \"" + crop_name(v.crop) +
                                   "\" needs fit = \"cover\" (fit = \"inside\" crops nothing)");
    }
    if (v.outputs.empty()) return config_error(p, where + "has no outputs");
    std::set<std::string> formats;
    for (const OutputFormat& o : v.outputs) {
        const std::string format = o.format ? format_name(*o.format) : "source";
        if (o.quality < 1 || o.quality > 100) {
            return config_error(
                p, where + format + " quality " + std::to_string(o.quality) + " is outside 1-100");
        }
        if (!formats.insert(format).second) {
            return config_error(p, where + "lists the " + format + " output twice");
        }
        if (o.format && !browser_shows(*o.format)) {
            return config_error(p, where + format + " is a source format only");
        }
        if (const std::string missing = o.format ? missing_encoder(*o.format, encoders) : "";
            !missing.empty()) {
            return config_error(p, where + missing);
        }
    }
    if (v.watermark) return validate_watermark(p, where, *v.watermark);
    return ok_status();
}

Status validate_encoding(const Profile& p, const Encoders& encoders) {
    if (p.png_compression < 0 || p.png_compression > 9) {
        return config_error(
            p, "png_compression " + std::to_string(p.png_compression) + " is outside 0-9");
    }
    if (p.webp_effort < 0 || p.webp_effort > 6) {
        return config_error(p, "webp_effort " + std::to_string(p.webp_effort) + " is outside 0-6");
    }
    if (p.avif_effort < 0 || p.avif_effort > 9) {
        return config_error(p, "avif_effort " + std::to_string(p.avif_effort) + " is outside 0-9");
    }
    if (!browser_shows(p.source_fallback)) {
        return config_error(p, std::string("source_fallback \"") + format_name(p.source_fallback) +
                                   "\" is not a format browsers show");
    }
    if (const std::string missing = missing_encoder(p.source_fallback, encoders);
        !missing.empty()) {
        return config_error(p, "source_fallback: " + missing);
    }
    if (p.max_frames < 1) {
        return config_error(p, "max_frames " + std::to_string(p.max_frames) + " is below 1");
    }
    if (p.max_animation_pixels < 1) return config_error(p, "max_animation_pixels is 0");
    return ok_status();
}

}  // namespace

namespace {

struct FormatNames {
    Format format;
    const char* name;
    const char* extension;
    const char* mime;
};

constexpr FormatNames kFormats[] = {
    {Format::jpeg, "jpeg", "jpg", "image/jpeg"},  {Format::png, "png", "png", "image/png"},
    {Format::webp, "webp", "webp", "image/webp"}, {Format::avif, "avif", "avif", "image/avif"},
    {Format::gif, "gif", "gif", "image/gif"},     {Format::tiff, "tiff", "tif", "image/tiff"},
    {Format::heic, "heic", "heic", "image/heic"},
};

const FormatNames& names_of(Format f) {
    for (const FormatNames& n : kFormats) {
        if (n.format == f) return n;
    }
    return kFormats[0];  // unreachable: every Format is in the table
}

}  // namespace

const char* format_name(Format f) {
    return names_of(f).name;
}

const char* format_extension(Format f) {
    return names_of(f).extension;
}

const char* format_mime(Format f) {
    return names_of(f).mime;
}

std::optional<Format> parse_output_format(const std::string& name) {
    if (name == "jpg") return Format::jpeg;
    for (const FormatNames& n : kFormats) {
        if (name == n.name && browser_shows(n.format)) return n.format;
    }
    return std::nullopt;
}

bool browser_shows(Format f) {
    return f != Format::tiff && f != Format::heic;
}

bool has_animation(Format f) {
    return f == Format::webp || f == Format::gif;
}

const char* crop_name(Crop c) {
    switch (c) {
        case Crop::centre:
            return "centre";
        case Crop::attention:
            return "attention";
        case Crop::entropy:
            return "entropy";
    }
    return "centre";
}

std::optional<Crop> parse_crop(const std::string& name) {
    for (Crop c : {Crop::centre, Crop::attention, Crop::entropy}) {
        if (name == crop_name(c)) return c;
    }
    return std::nullopt;
}

const char* fail_on_name(FailOn f) {
    switch (f) {
        case FailOn::truncated:
            return "truncated";
        case FailOn::error:
            return "error";
        case FailOn::warning:
            return "warning";
    }
    return "warning";
}

const char* gravity_name(Gravity g) {
    switch (g) {
        case Gravity::centre:
            return "centre";
        case Gravity::north:
            return "north";
        case Gravity::south:
            return "south";
        case Gravity::east:
            return "east";
        case Gravity::west:
            return "west";
        case Gravity::north_east:
            return "north-east";
        case Gravity::north_west:
            return "north-west";
        case Gravity::south_east:
            return "south-east";
        case Gravity::south_west:
            return "south-west";
    }
    return "centre";
}

std::optional<Gravity> parse_gravity(const std::string& name) {
    for (Gravity g :
         {Gravity::centre, Gravity::north, Gravity::south, Gravity::east, Gravity::west,
          Gravity::north_east, Gravity::north_west, Gravity::south_east, Gravity::south_west}) {
        if (name == gravity_name(g)) return g;
    }
    return std::nullopt;
}

std::optional<FailOn> parse_fail_on(const std::string& name) {
    for (FailOn f : {FailOn::truncated, FailOn::error, FailOn::warning}) {
        if (name == fail_on_name(f)) return f;
    }
    return std::nullopt;
}

const std::map<std::string, Profile>& builtin_profiles() {
    static const std::map<std::string, Profile> profiles = [] {
        std::map<std::string, Profile> m;
        for (Profile p : {web_profile(), ai_profile("dall-e", {1024, 1024}, 80, {2048, 2048}),
                          ai_profile("sora", {1280, 720}, 85, {1920, 1080}),
                          ai_profile("stable-diffusion", {768, 768}, 80, {1536, 1536})}) {
            std::string name = p.name;
            m.emplace(std::move(name), std::move(p));
        }
        return m;
    }();
    return profiles;
}

Status validate_profile(const Profile& p, const Encoders& encoders) {
    if (!filename_safe(p.name)) {
        return config_error(p, "the name must be non-empty and use only A-Z a-z 0-9 _ -");
    }
    if (Status s = validate_encoding(p, encoders); !s) return s;
    if (p.variants.empty()) return config_error(p, "has no variants");
    std::set<std::string> names;
    for (const Variant& v : p.variants) {
        if (!filename_safe(v.name)) {
            return config_error(p, "variant name \"" + v.name +
                                       "\" must be non-empty and use only A-Z a-z 0-9 _ -");
        }
        if (!names.insert(v.name).second) {
            return config_error(p, "variant \"" + v.name + "\" is defined twice");
        }
        if (Status s = validate_variant(p, v, encoders); !s) return s;
    }
    return ok_status();
}

const Encoders& available_encoders() {
    static const Encoders encoders = [] {
        Encoders e;
        // Config files are checked before the daemon starts libvips: start it here if need be.
        if (!init_vips("imgspool")) return e;
        VipsImage* black = nullptr;
        if (vips_black(&black, 16, 16, "bands", 3, nullptr) != 0) return e;
        VipsImagePtr image = own(black);
        auto encodes = [&](auto save) {
            void* raw = nullptr;
            std::size_t length = 0;
            const bool ok = save(&raw, &length) == 0;
            g_free(raw);
            vips_error_clear();
            return ok && length > 0;
        };
        e.avif = encodes([&](void** raw, std::size_t* length) {
            return vips_heifsave_buffer(image.get(), raw, length, "compression",
                                        VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "effort", 0, nullptr);
        });
        e.gif = encodes([&](void** raw, std::size_t* length) {
            return vips_gifsave_buffer(image.get(), raw, length, nullptr);
        });
        return e;
    }();
    return encoders;
}

Size target_size(const Variant& v, int src_w, int src_h) {
    if (src_w <= 0 || src_h <= 0) return {0, 0};
    if (v.width == 0 && v.height == 0) return {src_w, src_h};
    const double sx = static_cast<double>(v.width) / src_w;
    const double sy = static_cast<double>(v.height) / src_h;
    auto scaled = [](int length, double scale) {
        return std::max(1, static_cast<int>(std::lround(length * scale)));
    };
    if (v.fit == Fit::inside) {
        double s = std::min(sx, sy);
        if (!v.enlarge) s = std::min(s, 1.0);
        return {scaled(src_w, s), scaled(src_h, s)};
    }
    if (v.enlarge || std::max(sx, sy) <= 1.0) return {v.width, v.height};
    // Cover, no enlargement, and the source is smaller than the box on at least one side:
    // the largest centred crop with the box's aspect ratio, at the source's own scale.
    if (static_cast<long long>(src_w) * v.height > static_cast<long long>(src_h) * v.width) {
        return {scaled(src_h, static_cast<double>(v.width) / v.height), src_h};
    }
    return {src_w, scaled(src_w, static_cast<double>(v.height) / v.width)};
}

std::string Profile::fingerprint() const {
    std::ostringstream text;
    text << "renderer=" << kRendererVersion << "\n"
         << "libvips=" << vips_version_string() << "\n"
         << "keep_metadata=" << keep_metadata << "\n"
         << "jpeg_progressive=" << jpeg_progressive << "\n"
         << "png_compression=" << png_compression << "\n"
         << "webp_effort=" << webp_effort << "\n"
         << "fail_on=" << fail_on_name(fail_on) << "\n";
    // Settings added since are written only when they are not their defaults (or, for the
    // placeholders, when asked for): a profile that does not use them keeps its fingerprint,
    // so its cached sets stay valid. max_frames and max_animation_pixels only refuse sources.
    if (avif_effort != Profile{}.avif_effort) text << "avif_effort=" << avif_effort << "\n";
    if (source_fallback != Format::jpeg) {
        text << "source_fallback=" << format_name(source_fallback) << "\n";
    }
    if (animated) text << "animated=1\n";
    if (placeholders.any()) {
        text << "placeholders=" << kPlaceholderVersion << (placeholders.blurhash ? " blurhash" : "")
             << (placeholders.lqip ? " lqip" : "") << "\n";
    }
    for (const Variant& v : variants) {
        text << "variant=" << v.name << " " << v.width << "x" << v.height
             << " fit=" << (v.fit == Fit::cover ? "cover" : "inside");
        if (v.crop != Crop::centre) text << " crop=" << crop_name(v.crop);
        text << " enlarge=" << v.enlarge << "\n";
        for (const OutputFormat& o : v.outputs) {
            text << " output=" << (o.format ? format_name(*o.format) : "source")
                 << " quality=" << o.quality << "\n";
        }
        // Only when set, so the fingerprints (and cached outputs) of other profiles stay.
        if (const std::optional<Watermark>& w = v.watermark) {
            text << " watermark=" << w->overlay_sha256 << " gravity=" << gravity_name(w->gravity)
                 << " margin=" << w->margin << " opacity=" << exact(w->opacity)
                 << " min_width=" << w->min_width << "\n";
        }
    }
    return sha256_hex(text.str());
}

}  // namespace imgspool
