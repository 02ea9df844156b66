#include "daemon/config_reader.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace imgspool {

namespace {

std::string line_suffix(const toml::value& v) {
    return " (line " + std::to_string(v.location().line()) + ")";
}

}  // namespace

std::string describe_value(const toml::value& v) {
    switch (v.type()) {
        case toml::value_t::string:
            return toml_string(v.as_string().str);
        case toml::value_t::boolean:
        case toml::value_t::integer:
        case toml::value_t::floating:
            return toml::format(v);
        case toml::value_t::array:
            return "an array";
        case toml::value_t::table:
            return "a table";
        default:
            return "a date/time";
    }
}

std::string toml_string(const std::string& s) {
    // Unlimited width: one line, with quotes, backslashes and control characters escaped.
    return toml::format(toml::value(s), std::numeric_limits<std::size_t>::max());
}

TableReader::TableReader(const toml::value& table, std::string context, std::string origin)
    : table_(table), context_(std::move(context)), origin_(std::move(origin)) {}

const toml::value* TableReader::find(const std::string& key) {
    known_.push_back(key);
    const auto& t = table_.as_table();
    auto it = t.find(key);
    return it == t.end() ? nullptr : &it->second;
}

void TableReader::record(std::string reason, const toml::value& at) {
    if (!error_) {
        error_ = make_error(Stage::config, std::move(reason) + line_suffix(at), origin_);
    }
}

void TableReader::fail(const std::string& key, const std::string& problem) {
    const toml::value* v = find(key);
    std::string prefix = context_.empty() ? key : context_ + " " + key;
    record(prefix + ": " + problem, v ? *v : table_);
}

void TableReader::mismatch(const std::string& key, const toml::value& v,
                           const std::string& expected) {
    fail(key, "expected " + expected + ", got " + describe_value(v));
}

void TableReader::integer(const std::string& key, int& out, int min, int max) {
    const toml::value* v = find(key);
    if (!v) return;
    if (!v->is_integer() || v->as_integer() < min || v->as_integer() > max) {
        mismatch(key, *v, "an integer " + std::to_string(min) + ".." + std::to_string(max));
        return;
    }
    out = static_cast<int>(v->as_integer());
}

void TableReader::unsigned_integer(const std::string& key, std::uint64_t& out, std::uint64_t min,
                                   std::uint64_t max) {
    const toml::value* v = find(key);
    if (!v) return;
    if (!v->is_integer() || v->as_integer() < 0 ||
        static_cast<std::uint64_t>(v->as_integer()) < min ||
        static_cast<std::uint64_t>(v->as_integer()) > max) {
        mismatch(key, *v, "an integer " + std::to_string(min) + ".." + std::to_string(max));
        return;
    }
    out = static_cast<std::uint64_t>(v->as_integer());
}

void TableReader::number(const std::string& key, double& out, double min, double max) {
    const toml::value* v = find(key);
    if (!v) return;
    const bool numeric = v->is_integer() || v->is_floating();
    const double value = v->is_integer()    ? static_cast<double>(v->as_integer())
                         : v->is_floating() ? v->as_floating()
                                            : 0.0;
    if (!numeric || !(value >= min && value <= max)) {
        mismatch(
            key, *v,
            "a number " + toml::format(toml::value(min)) + ".." + toml::format(toml::value(max)));
        return;
    }
    out = value;
}

void TableReader::boolean(const std::string& key, bool& out) {
    const toml::value* v = find(key);
    if (!v) return;
    if (!v->is_boolean()) {
        mismatch(key, *v, "true or false");
        return;
    }
    out = v->as_boolean();
}

void TableReader::string(const std::string& key, std::string& out) {
    const toml::value* v = find(key);
    if (!v) return;
    if (!v->is_string()) {
        mismatch(key, *v, "a string");
        return;
    }
    out = v->as_string().str;
}

void TableReader::require(const std::string& key) {
    if (!find(key)) fail(key, "missing (required)");
}

void TableReader::path(const std::string& key, std::filesystem::path& out) {
    const toml::value* v = find(key);
    if (!v) return;
    if (!v->is_string() || v->as_string().str.empty()) {
        mismatch(key, *v, "a non-empty path");
        return;
    }
    out = v->as_string().str;
}

void TableReader::string_list(const std::string& key, std::vector<std::string>& out) {
    const toml::value* v = find(key);
    if (!v) return;
    if (!v->is_array()) {
        mismatch(key, *v, "an array of strings");
        return;
    }
    std::vector<std::string> items;
    for (const toml::value& item : v->as_array()) {
        if (!item.is_string()) {
            fail(key, "expected an array of strings, got an element " + describe_value(item));
            return;
        }
        items.push_back(item.as_string().str);
    }
    out = std::move(items);
}

const toml::value* TableReader::table(const std::string& key) {
    const toml::value* v = find(key);
    if (!v) return nullptr;
    if (!v->is_table()) {
        mismatch(key, *v, "a table");
        return nullptr;
    }
    return v;
}

const toml::array* TableReader::table_array(const std::string& key) {
    const toml::value* v = find(key);
    if (!v) return nullptr;
    bool all_tables =
        v->is_array() && std::all_of(v->as_array().begin(), v->as_array().end(),
                                     [](const toml::value& e) { return e.is_table(); });
    if (!all_tables) {
        mismatch(key, *v, "an array of tables");
        return nullptr;
    }
    return &v->as_array();
}

Status TableReader::finish() const {
    std::vector<std::pair<std::uint_least32_t, std::string>> unknown;
    for (const auto& [key, value] : table_.as_table()) {
        if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
            unknown.emplace_back(value.location().line(), key);
        }
    }
    if (unknown.empty()) return error_ ? Status(*error_) : ok_status();
    std::sort(unknown.begin(), unknown.end());
    std::string prefix = context_.empty() ? "" : context_ + " ";
    return make_error(Stage::config,
                      prefix + "key \"" + unknown.front().second + "\": unknown key (line " +
                          std::to_string(unknown.front().first) + ")",
                      origin_);
}

}  // namespace imgspool
