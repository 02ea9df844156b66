#include "pipeline/manifest.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/printable_name.hpp"

namespace imgspool {

namespace {

using nlohmann::json;

constexpr std::string_view kSuffix = ".job.json";
constexpr std::array<std::string_view, 3> kSchemes = {"http://", "https://", "s3://"};
// Longest key quoted back in "unknown key": the reason ends up in a log line and a failure note.
constexpr std::size_t kMaxQuotedKeyBytes = 64;

Error invalid(std::string reason) {
    return make_error(Stage::validate, "manifest: " + std::move(reason));
}

char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// A key as JSON text ("sorce", with \n and \u0001 escaped), cut short when it is long.
std::string quoted_key(const std::string& key) {
    const std::size_t keep = utf8_prefix_length(key, kMaxQuotedKeyBytes);
    const std::string shown = printable_name(std::string_view(key).substr(0, keep));
    return json(shown).dump() + (keep < key.size() ? "..." : "");
}

// nlohmann's text without its "[json.exception.parse_error.101] " tag and without the
// "; last read: '...'" part, which repeats the manifest's own bytes.
std::string parse_error_text(const json::parse_error& e) {
    std::string_view text = e.what();
    if (const auto tag_end = text.find("] "); tag_end != std::string_view::npos) {
        text.remove_prefix(tag_end + 2);
    }
    const auto last_read = text.find("; last read: ");
    if (last_read == std::string_view::npos) return printable_name(text);
    std::string out(text.substr(0, last_read));
    if (const auto expected = text.rfind("; expected ");
        expected != std::string_view::npos && expected > last_read) {
        out += text.substr(expected);
    }
    return printable_name(out);
}

// The string under key, "" when absent or null; an error for another type or a long string.
Result<std::string> optional_string(const json& manifest, const char* key) {
    const auto it = manifest.find(key);
    if (it == manifest.end() || it->is_null()) return std::string();
    if (!it->is_string()) {
        return invalid("\"" + std::string(key) + "\" must be a string, not " +
                       std::string(it->type_name()));
    }
    auto value = it->get<std::string>();
    if (value.size() > kMaxManifestStringBytes) {
        return invalid("\"" + std::string(key) + "\" is longer than " +
                       std::to_string(kMaxManifestStringBytes) + " bytes (" +
                       std::to_string(value.size()) + ")");
    }
    return value;
}

Result<std::string> metadata_text(const json& manifest) {
    const auto it = manifest.find("metadata");
    if (it == manifest.end() || it->is_null()) return std::string();
    if (!it->is_object()) {
        return invalid("\"metadata\" must be a JSON object, not " + std::string(it->type_name()));
    }
    // Parsed strings are valid UTF-8, so nothing is replaced; replace only keeps dump() from
    // ever throwing.
    std::string text = it->dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > kMaxManifestMetadataBytes) {
        return invalid("\"metadata\" is larger than " +
                       std::to_string(kMaxManifestMetadataBytes / 1024) + " KiB (" +
                       std::to_string(text.size()) + " bytes)");
    }
    return text;
}

bool known_key(const std::string& key) {
    static constexpr std::array<std::string_view, 6> kKeys = {"source", "profile",  "user_id",
                                                              "tool",   "metadata", "ref"};
    return std::find(kKeys.begin(), kKeys.end(), key) != kKeys.end();
}

}  // namespace

bool is_manifest_name(const std::filesystem::path& relative) {
    const std::string name = relative.filename().native();
    if (name.size() <= kSuffix.size()) return false;
    const std::string_view tail = std::string_view(name).substr(name.size() - kSuffix.size());
    return std::equal(tail.begin(), tail.end(), kSuffix.begin(),
                      [](char a, char b) { return ascii_lower(a) == b; });
}

Result<JobManifest> parse_manifest(std::string_view bytes) {
    if (bytes.size() > kMaxManifestBytes) {
        return invalid("larger than " + std::to_string(kMaxManifestBytes / 1024) + " KiB (" +
                       std::to_string(bytes.size()) + " bytes)");
    }
    // The parser itself keeps no recursion, but dumping metadata does: deeper values are
    // dropped while parsing and the manifest refused.
    bool too_deep = false;
    std::optional<std::string> duplicate;
    std::vector<std::string> top_keys;
    const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
        if ((event == json::parse_event_t::object_start ||
             event == json::parse_event_t::array_start) &&
            depth >= kMaxManifestDepth) {
            too_deep = true;
            return false;
        }
        // Two values for one key would be read one way here and maybe another elsewhere.
        if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (std::find(top_keys.begin(), top_keys.end(), key) != top_keys.end()) {
                if (!duplicate) duplicate = key;
            } else {
                top_keys.push_back(key);
            }
        }
        return true;
    };
    json manifest;
    try {
        manifest = json::parse(bytes.begin(), bytes.end(), check);
    } catch (const json::parse_error& e) {
        return invalid("not JSON: " + parse_error_text(e));
    }
    if (too_deep) {
        return invalid("nested deeper than " + std::to_string(kMaxManifestDepth) + " levels");
    }
    if (!manifest.is_object()) {
        return invalid("must be a JSON object, not " + std::string(manifest.type_name()));
    }
    if (duplicate) return invalid("key " + quoted_key(*duplicate) + " is given twice");
    for (auto it = manifest.begin(); it != manifest.end(); ++it) {
        if (!known_key(it.key())) return invalid("unknown key " + quoted_key(it.key()));
    }

    JobManifest m;
    auto source = optional_string(manifest, "source");
    if (!source) return source.error();
    if (source->empty()) return invalid("\"source\" is required");
    if (std::none_of(kSchemes.begin(), kSchemes.end(),
                     [&](std::string_view scheme) { return source->starts_with(scheme); })) {
        return invalid("\"source\" must start with http://, https:// or s3://");
    }
    m.source = std::move(*source);
    for (auto [key, field] : {std::pair{"profile", &m.profile}, std::pair{"user_id", &m.user_id},
                              std::pair{"tool", &m.tool}, std::pair{"ref", &m.ref}}) {
        auto value = optional_string(manifest, key);
        if (!value) return value.error();
        *field = std::move(*value);
    }
    auto metadata = metadata_text(manifest);
    if (!metadata) return metadata.error();
    m.metadata_json = std::move(*metadata);
    return m;
}

}  // namespace imgspool
