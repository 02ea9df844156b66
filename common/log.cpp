#include "common/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include <nlohmann/json.hpp>

#include "common/printable_name.hpp"

namespace imgspool::log {
namespace {

// The logger's only state: the level threshold and the lock that keeps lines whole.
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_write_mutex;

const char* level_name(Level level) {
    switch (level) {
        case Level::debug:
            return "debug";
        case Level::info:
            return "info";
        case Level::warn:
            return "warn";
        case Level::error:
            return "error";
    }
    return "info";
}

// Lossless for any bytes: what is not valid UTF-8 is written as \xNN (printable_name), so a
// file name in a log line can be told apart from every other name.
std::string quote(std::string_view s) {
    return nlohmann::json(printable_name(s)).dump();
}

std::string timestamp() {
    using namespace std::chrono;
    const auto now = system_clock::now();
    const std::time_t secs = system_clock::to_time_t(now);
    const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

}  // namespace

Field::Field(std::string k, std::string_view v) : key(std::move(k)), json(quote(v)) {}
Field::Field(std::string k, const char* v) : key(std::move(k)), json(quote(v ? v : "")) {}
Field::Field(std::string k, const std::string& v) : key(std::move(k)), json(quote(v)) {}
Field::Field(std::string k, long long v) : key(std::move(k)), json(std::to_string(v)) {}
Field::Field(std::string k, unsigned long long v) : key(std::move(k)), json(std::to_string(v)) {}
Field::Field(std::string k, double v) : key(std::move(k)), json(nlohmann::json(v).dump()) {}
Field::Field(std::string k, bool v) : key(std::move(k)), json(v ? "true" : "false") {}

bool configure_from_env() {
    const char* env = std::getenv("LOG_LEVEL");
    if (!env || !*env) return true;
    const std::string_view v(env);
    if (v == "debug")
        set_level(Level::debug);
    else if (v == "info")
        set_level(Level::info);
    else if (v == "warn" || v == "warning")
        set_level(Level::warn);
    else if (v == "error")
        set_level(Level::error);
    else
        return false;
    return true;
}

void set_level(Level level) {
    g_level = static_cast<int>(level);
}

bool enabled(Level level) {
    return static_cast<int>(level) >= g_level.load();
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
    if (!enabled(level)) return;
    std::string line = "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + level_name(level) +
                       "\",\"msg\":" + quote(msg);
    for (const Field& f : fields) {
        line += ',';
        line += quote(f.key);
        line += ':';
        line += f.json;
    }
    line += "}\n";
    std::lock_guard lock(g_write_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

}  // namespace imgspool::log
