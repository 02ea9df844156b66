// Formats, the built-in profiles, profile checks, output-size maths and the cache fingerprint.
#include "pipeline/profile.hpp"

#include <vips/vips.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>
#include <utility>

#include "pipeline/hash.hpp"

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

Status validate_variant(const Profile& p, const Variant& v) {
    const std::string where = "variant \"" + v.name + "\": ";
    if (v.width < 0 || v.height < 0 || (v.width == 0) != (v.height == 0)) {
        return config_error(p, where + "size " + std::to_string(v.width) + "x" +
                                   std::to_string(v.height) +
                                   " must be two positive numbers, or 0x0 for the source size");
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
    }
    return ok_status();
}

}  // namespace

const char* format_name(Format f) {
    switch (f) {
        case Format::jpeg:
            return "jpeg";
        case Format::png:
            return "png";
        case Format::webp:
            return "webp";
    }
    return "unknown";
}

const char* format_extension(Format f) {
    switch (f) {
        case Format::jpeg:
            return "jpg";
        case Format::png:
            return "png";
        case Format::webp:
            return "webp";
    }
    return "bin";
}

const char* format_mime(Format f) {
    switch (f) {
        case Format::jpeg:
            return "image/jpeg";
        case Format::png:
            return "image/png";
        case Format::webp:
            return "image/webp";
    }
    return "application/octet-stream";
}

std::optional<Format> parse_format(const std::string& name) {
    if (name == "jpeg" || name == "jpg") return Format::jpeg;
    if (name == "png") return Format::png;
    if (name == "webp") return Format::webp;
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

Status validate_profile(const Profile& p) {
    if (!filename_safe(p.name)) {
        return config_error(p, "the name must be non-empty and use only A-Z a-z 0-9 _ -");
    }
    if (p.png_compression < 0 || p.png_compression > 9) {
        return config_error(
            p, "png_compression " + std::to_string(p.png_compression) + " is outside 0-9");
    }
    if (p.webp_effort < 0 || p.webp_effort > 6) {
        return config_error(p, "webp_effort " + std::to_string(p.webp_effort) + " is outside 0-6");
    }
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
        if (Status s = validate_variant(p, v); !s) return s;
    }
    return ok_status();
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
    // Only when asked for: a profile without placeholders keeps the fingerprint it had, so its
    // cached sets stay valid.
    if (placeholders.any()) {
        text << "placeholders=" << kPlaceholderVersion << (placeholders.blurhash ? " blurhash" : "")
             << (placeholders.lqip ? " lqip" : "") << "\n";
    }
    for (const Variant& v : variants) {
        text << "variant=" << v.name << " " << v.width << "x" << v.height
             << " fit=" << (v.fit == Fit::cover ? "cover" : "inside") << " enlarge=" << v.enlarge
             << "\n";
        for (const OutputFormat& o : v.outputs) {
            text << " output=" << (o.format ? format_name(*o.format) : "source")
                 << " quality=" << o.quality << "\n";
        }
    }
    return sha256_hex(text.str());
}

}  // namespace imgspool
