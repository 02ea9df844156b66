#include "common/printable_json.hpp"

#include "common/printable_name.hpp"

namespace imgspool {

nlohmann::json printable_json(const nlohmann::json& value) {
    if (value.is_string()) return printable_name(value.get_ref<const std::string&>());
    if (value.is_array()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& item : value) out.push_back(printable_json(item));
        return out;
    }
    if (value.is_object()) {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [key, item] : value.items())
            out[printable_name(key)] = printable_json(item);
        return out;
    }
    return value;
}

std::string dump_printable(const nlohmann::json& value, int indent) {
    return printable_json(value).dump(indent);
}

}  // namespace imgspool
