#include "store/variant_json.hpp"

#include <nlohmann/json.hpp>

namespace imgspool {

namespace {

std::string extension_of(const StoredVariant& v) {
    auto slash = v.key.rfind('/');
    auto dot = v.key.rfind('.');
    bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash) &&
                   dot + 1 < v.key.size();
    return has_ext ? v.key.substr(dot + 1) : v.format;
}

}  // namespace

std::string variants_to_json(const std::vector<StoredVariant>& variants) {
    return variants_json_value(variants).dump();
}

nlohmann::json variants_json_value(const std::vector<StoredVariant>& variants) {
    auto list = nlohmann::json::array();
    for (const auto& v : variants) {
        nlohmann::json item = {{"variant", v.variant}, {"format", v.format}, {"key", v.key},
                               {"url", v.url},         {"width", v.width},   {"height", v.height},
                               {"bytes", v.bytes}};
        // Only an animation says so: a still output's record is as it always was.
        if (v.frames > 1) item["frames"] = v.frames;
        list.push_back(std::move(item));
    }
    return list;
}

Result<std::vector<StoredVariant>> variants_from_json(const std::string& json) {
    auto list = nlohmann::json::parse(json, nullptr, false);
    if (!list.is_array()) {
        return make_error(Stage::commit, "stored outputs are not a JSON array: " + json);
    }
    std::vector<StoredVariant> out;
    try {
        for (const auto& item : list) {
            StoredVariant v;
            v.variant = item.at("variant").get<std::string>();
            v.format = item.at("format").get<std::string>();
            v.key = item.at("key").get<std::string>();
            v.url = item.at("url").get<std::string>();
            v.width = item.at("width").get<int>();
            v.height = item.at("height").get<int>();
            v.bytes = item.at("bytes").get<std::uint64_t>();
            v.frames = item.value("frames", 1);
            out.push_back(std::move(v));
        }
    } catch (const nlohmann::json::exception& e) {
        return make_error(Stage::commit, std::string("stored outputs are malformed: ") + e.what());
    }
    return out;
}

std::string variant_urls_json(const std::vector<StoredVariant>& variants) {
    auto urls = nlohmann::json::object();
    for (const auto& v : variants) urls[v.variant + "." + extension_of(v)] = v.url;
    return urls.dump();
}

nlohmann::json placeholders_json_value(const Placeholders& placeholders) {
    auto object = nlohmann::json::object();
    if (!placeholders.blurhash.empty()) object["blurhash"] = placeholders.blurhash;
    if (!placeholders.lqip.empty()) object["lqip"] = placeholders.lqip;
    return object;
}

}  // namespace imgspool
