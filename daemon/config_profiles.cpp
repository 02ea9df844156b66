// [profiles.NAME] tables: custom profiles next to the built-in ones.
//
//   [profiles.thumbs]
//   keep_metadata = false
//   fail_on = "warning"            # decoder strictness: "truncated", "error" or "warning"
//   placeholder = ["blurhash", "lqip"]  # progressive-loading placeholders; none by default
//   [[profiles.thumbs.variant]]
//   name = "small"
//   width = 320
//   height = 320
//   fit = "cover"
//   formats = ["source", "webp"]   # "source" = the upload's own format
//   quality = 80                   # for every format of this variant
#include <algorithm>
#include <utility>
#include <vector>

#include "daemon/config_parts.hpp"

namespace imgspool {

namespace {

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
            out.format = parse_format(name);
            if (!out.format) {
                r.fail("formats", "expected \"source\", \"jpeg\", \"png\" or \"webp\", got " +
                                      toml_string(name));
            }
        }
        v.outputs.push_back(out);
    }
    if (Status s = r.finish(); !s) return s.error();
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
    std::string fail_on = fail_on_name(p.fail_on);
    r.string("fail_on", fail_on);
    if (const std::optional<FailOn> f = parse_fail_on(fail_on)) {
        p.fail_on = *f;
    } else {
        r.fail("fail_on",
               "expected \"truncated\", \"error\" or \"warning\", got " + toml_string(fail_on));
    }
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
