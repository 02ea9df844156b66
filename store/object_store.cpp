#include "store/object_store.hpp"

#include <array>
#include <string>

namespace imgspool {

namespace {

constexpr std::array<std::string_view, 5> kPlaceholders = {"upload_id", "variant", "ext", "spool",
                                                           "profile"};
constexpr std::array<std::string_view, 3> kRequired = {"upload_id", "variant", "ext"};

bool is_known(std::string_view name) {
    for (auto p : kPlaceholders) {
        if (p == name) return true;
    }
    return false;
}

Error template_error(std::string_view key_template, std::string problem) {
    return make_error(Stage::config,
                      "key template \"" + std::string(key_template) + "\": " + std::move(problem));
}

}  // namespace

std::string expand_key(std::string_view key_template, std::string_view upload_id,
                       std::string_view variant, std::string_view ext, std::string_view spool,
                       std::string_view profile) {
    std::string out;
    size_t pos = 0;
    while (pos < key_template.size()) {
        size_t open = key_template.find('{', pos);
        size_t close = open == std::string_view::npos ? open : key_template.find('}', open);
        if (close == std::string_view::npos) break;
        out += key_template.substr(pos, open - pos);
        std::string_view name = key_template.substr(open + 1, close - open - 1);
        if (name == "upload_id") {
            out += upload_id;
        } else if (name == "variant") {
            out += variant;
        } else if (name == "ext") {
            out += ext;
        } else if (name == "spool") {
            out += spool;
        } else if (name == "profile") {
            out += profile;
        } else {
            out += key_template.substr(open, close - open + 1);  // validate_key_template refuses it
        }
        pos = close + 1;
    }
    out += key_template.substr(std::min(pos, key_template.size()));
    return out;
}

Status validate_key_template(std::string_view key_template) {
    if (key_template.empty()) return template_error(key_template, "is empty");
    if (key_template.front() == '/') {
        return template_error(key_template, "must not start with \"/\" (keys are relative)");
    }
    std::array<bool, kRequired.size()> seen{};
    for (size_t i = 0; i < key_template.size(); ++i) {
        if (key_template[i] == '}') {
            return template_error(key_template,
                                  "unbalanced \"}\" at position " + std::to_string(i + 1));
        }
        if (key_template[i] != '{') continue;
        size_t close = key_template.find_first_of("{}", i + 1);
        if (close == std::string_view::npos || key_template[close] != '}') {
            return template_error(key_template,
                                  "unbalanced \"{\" at position " + std::to_string(i + 1));
        }
        std::string_view name = key_template.substr(i + 1, close - i - 1);
        if (!is_known(name)) {
            return template_error(key_template,
                                  "unknown placeholder {" + std::string(name) +
                                      "}; known: {upload_id} {variant} {ext} {spool} {profile}");
        }
        for (size_t r = 0; r < kRequired.size(); ++r) {
            if (kRequired[r] == name) seen[r] = true;
        }
        i = close;
    }
    for (size_t r = 0; r < kRequired.size(); ++r) {
        if (!seen[r]) {
            return template_error(key_template, "must contain {" + std::string(kRequired[r]) +
                                                    "} so that no two outputs share a key");
        }
    }
    size_t start = 0;
    while (start <= key_template.size()) {
        size_t slash = key_template.find('/', start);
        if (slash == std::string_view::npos) slash = key_template.size();
        if (key_template.substr(start, slash - start) == "..") {
            return template_error(key_template, "must not contain a \"..\" path segment");
        }
        start = slash + 1;
    }
    return ok_status();
}

}  // namespace imgspool
