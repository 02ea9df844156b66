// [profiles.NAME] tables: custom profiles next to the built-in ones.
//
//   [profiles.thumbs]
//   keep_metadata = false
//   fail_on = "warning"            # decoder strictness: "truncated", "error" or "warning"
//   source_fallback = "jpeg"       # "source" for HEIC and TIFF (jpeg: PNG if it has alpha)
//   animated = true                # GIF/WebP animations keep their frames in WebP/GIF outputs
//   placeholder = ["blurhash", "lqip"]  # progressive-loading placeholders; none by default
//   [[profiles.thumbs.variant]]
//   name = "small"
//   width = 320
//   height = 320
//   fit = "cover"
//   crop = "attention"             # "centre", "attention" or "entropy" (fit = "cover")
//   formats = ["source", "webp"]   # "source" = the upload's own format
//   quality = 80                   # for every format of this variant
//   watermark = { image = "mark.png", gravity = "south-east", margin = 16, opacity = 0.5,
//                 min_width = 400 }  # image relative to the configuration file's folder
#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "daemon/config_parts.hpp"
#include "pipeline/watermark_file.hpp"

namespace imgspool {

namespace {

// A variant's `watermark = { ... }`. The image is read and decoded here, once: a file that
// cannot be used fails the configuration (at start, check-config or a reload), never a render.
// A relative image path is taken from the configuration file's folder, where an operator
// keeps the overlay next to the file that names it.
Result<Watermark> read_watermark(const toml::value& table, const std::string& context,
                                 const std::string& origin) {
    Watermark w;
    TableReader r(table, context, origin);
    r.require("image");
    std::filesystem::path image;
    r.path("image", image);
    std::string gravity = gravity_name(w.gravity);
    r.string("gravity", gravity);
    if (const std::optional<Gravity> g = parse_gravity(gravity)) {
        w.gravity = *g;
    } else {
        r.fail("gravity",
               "expected \"centre\", \"north\", \"south\", \"east\", \"west\", \"north-east\", "
               "\"north-west\", \"south-east\" or \"south-west\", got " +
                   toml_string(gravity));
    }
    r.integer("margin", w.margin, 0, 100000);
    r.number("opacity", w.opacity, 0.0, 1.0);
    // 0 would hide the overlay while still paying for it: leave the watermark out instead.
    if (w.opacity == 0.0) r.fail("opacity", "expected a number above 0 and at most 1, got 0");
    r.integer("min_width", w.min_width, 0, 100000);
    // Unknown keys and bad values first: no file is read for a table with a typo.
    if (Status s = r.finish(); !s) return s.error();
    std::error_code ec;
    const std::filesystem::path folder = std::filesystem::path(origin).parent_path();
    w.image = std::filesystem::absolute(folder / image, ec).lexically_normal();
    if (ec) {
        r.fail("image",
               "cannot make " + toml_string(image.string()) + " absolute: " + ec.message());
    } else if (Status s = load_watermark(w); !s) {
        r.fail("image", "cannot use " + toml_string(w.image.string()) + ": " + s.error().reason);
    }
    if (Status s = r.finish(); !s) return s.error();
    return w;
}

Result<Variant> read_variant(const toml::value& table, const std::string& context,
                             const std::string& origin) {
    Variant v;
    TableReader r(table, context, origin);
    r.require("name");
    r.string("name", v.name);
    r.integer("width", v.width, 0, 100000);
    r.integer("height", v.height, 0, 100000);
    std::string fit = "inside";
    r.string("fit", fit);
    if (fit == "cover") {
        v.fit = Fit::cover;
    } else if (fit != "inside") {
        r.fail("fit", "expected \"cover\" or \"inside\", got " + toml_string(fit));
    }
    std::string crop = crop_name(v.crop);
    r.string("crop", crop);
    if (const std::optional<Crop> c = parse_crop(crop)) {
        v.crop = *c;
    } else {
        r.fail("crop",
               "expected \"centre\", \"attention\" or \"entropy\", got " + toml_string(crop));
    }
    r.boolean("enlarge", v.enlarge);
    std::vector<std::string> formats{"source"};
    r.string_list("formats", formats);
    int quality = 85;
    r.integer("quality", quality, 1, 100);
    if (formats.empty()) r.fail("formats", "expected at least one format, got []");
    for (const std::string& name : formats) {
        OutputFormat out;
        out.quality = quality;
        if (name != "source") {
            out.format = parse_output_format(name);
            if (!out.format) {
                r.fail(
                    "formats",
                    "expected \"source\", \"jpeg\", \"png\", \"webp\", \"avif\" or \"gif\", got " +
                        toml_string(name));
            }
        }
        v.outputs.push_back(out);
    }
    const toml::value* watermark = r.table("watermark");
    if (Status s = r.finish(); !s) return s.error();
    if (watermark) {
        Result<Watermark> w =
            read_watermark(*watermark, context + " \"" + v.name + "\" watermark", origin);
        if (!w) return w.error();
        v.watermark = std::move(*w);
    }
    return v;
}

Result<Profile> read_profile(const toml::value& table, const std::string& name,
                             const std::string& origin) {
    Profile p;
    p.name = name;
    const std::string context = "[profiles." + name + "]";
    TableReader r(table, context, origin);
    r.boolean("keep_metadata", p.keep_metadata);
    r.boolean("jpeg_progressive", p.jpeg_progressive);
    r.integer("png_compression", p.png_compression, 0, 9);
    r.integer("webp_effort", p.webp_effort, 0, 6);
    r.integer("avif_effort", p.avif_effort, 0, 9);
    std::string fail_on = fail_on_name(p.fail_on);
    r.string("fail_on", fail_on);
    if (const std::optional<FailOn> f = parse_fail_on(fail_on)) {
        p.fail_on = *f;
    } else {
        r.fail("fail_on",
               "expected \"truncated\", \"error\" or \"warning\", got " + toml_string(fail_on));
    }
    std::string fallback = format_name(p.source_fallback);
    r.string("source_fallback", fallback);
    if (const std::optional<Format> f = parse_output_format(fallback)) {
        p.source_fallback = *f;
    } else {
        r.fail("source_fallback",
               "expected \"jpeg\", \"png\", \"webp\", \"avif\" or \"gif\", got " +
                   toml_string(fallback));
    }
    r.boolean("animated", p.animated);
    r.integer("max_frames", p.max_frames, 1, 100000);
    r.unsigned_integer("max_animation_pixels", p.max_animation_pixels, 1, 100'000'000'000ull);
    std::vector<std::string> placeholders;
    r.string_list("placeholder", placeholders);
    for (const std::string& kind : placeholders) {
        if (kind == "blurhash") {
            p.placeholders.blurhash = true;
        } else if (kind == "lqip") {
            p.placeholders.lqip = true;
        } else {
            r.fail("placeholder", "expected \"blurhash\" or \"lqip\", got " + toml_string(kind));
        }
    }
    r.require("variant");
    const toml::array* variants = r.table_array("variant");
    if (Status s = r.finish(); !s) return s.error();
    for (std::size_t i = 0; i < variants->size(); ++i) {
        Result<Variant> v = read_variant(
            (*variants)[i], "[[profiles." + name + ".variant]] #" + std::to_string(i + 1), origin);
        if (!v) return v.error();
        p.variants.push_back(std::move(v.value()));
    }
    if (Status s = validate_profile(p); !s) {
        return make_error(Stage::config, context + ": " + s.error().reason, origin);
    }
    return p;
}

}  // namespace

Status read_profiles(TableReader& top, const std::string& origin, Config& config) {
    config.profiles = builtin_profiles();
    const toml::value* table = top.table("profiles");
    if (!table) return ok_status();

    // File order, so the first problem reported is the first one in the file.
    std::vector<std::pair<std::uint_least32_t, std::string>> names;
    for (const auto& [name, value] : table->as_table()) {
        names.emplace_back(value.location().line(), name);
    }
    std::sort(names.begin(), names.end());

    TableReader r(*table, "[profiles]", origin);
    for (const auto& [line, name] : names) {
        const toml::value* body = r.table(name);
        if (!body) break;
        if (!is_plain_name(name)) {
            r.fail(name, "profile names use letters, digits, '_' or '-' only");
            break;
        }
        if (builtin_profiles().count(name) != 0) {
            r.fail(name, "\"" + name + "\" is a built-in profile; give yours another name");
            break;
        }
        Result<Profile> profile = read_profile(*body, name, origin);
        if (!profile) return profile.error();
        config.profiles[name] = std::move(profile.value());
    }
    return r.finish();
}

}  // namespace imgspool
