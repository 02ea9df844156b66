// load_config / parse_config: parse the TOML, read the sections, apply the environment, check.
#include "daemon/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon/config_parts.hpp"

namespace imgspool {

namespace {

// toml11 reports "[error] toml::parse_key_value_pair: missing key-value separator `=`" followed
// by an annotated excerpt; keep the sentence, the offending line and its number.
std::string syntax_reason(const toml::syntax_error& e) {
    std::string first = e.what();
    first = first.substr(0, first.find('\n'));
    if (first.rfind("[error] ", 0) == 0) first.erase(0, 8);
    if (first.rfind("toml::", 0) == 0) {
        std::size_t colon = first.find(": ");
        if (colon != std::string::npos) first.erase(0, colon + 2);
    }
    std::string reason = "syntax error: " + first;
    std::string line = e.location().line_str();
    line.erase(0, line.find_first_not_of(" \t"));
    if (!line.empty()) reason += " in " + toml_string(line);
    return reason + " (line " + std::to_string(e.location().line()) + ")";
}

Result<Config> build(const std::string& toml_text, const std::string& origin) {
    toml::value root;
    try {
        std::istringstream in(toml_text);
        root = toml::parse(in, origin);
    } catch (const toml::syntax_error& e) {
        return make_error(Stage::config, syntax_reason(e), origin);
    }
    Config config;
    config.file = origin;
    if (Status s = read_sections(root, origin, config); !s) return s.error();
    if (Status s = apply_environment(config); !s) return s.error();
    if (Status s = check_config(config, origin); !s) return s.error();
    return config;
}

}  // namespace

int Config::effective_workers() const {
    if (daemon.workers > 0) return daemon.workers;
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

Result<Config> parse_config(const std::string& toml_text, const std::string& origin) {
    try {
        return build(toml_text, origin);
    } catch (const std::exception& e) {
        return make_error(Stage::config, std::string("cannot read configuration: ") + e.what(),
                          origin);
    }
}

Result<Config> load_config(const std::filesystem::path& file) {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) {
        return make_error(Stage::config, "is a folder, not a configuration file", file.string());
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return make_error(Stage::config, std::string("cannot open: ") + std::strerror(errno),
                          file.string());
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        return make_error(Stage::config, std::string("cannot read: ") + std::strerror(errno),
                          file.string());
    }
    Result<Config> config = parse_config(text.str(), file.string());
    if (config) config->file = std::filesystem::absolute(file, ec).lexically_normal();
    return config;
}

}  // namespace imgspool
