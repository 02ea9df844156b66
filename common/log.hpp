// Structured logging: one JSON object per line on stderr (journald-friendly).
// The level comes from LOG_LEVEL (debug|info|warn|error, default info).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace imgspool::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// A field value is kept as already-encoded JSON so numbers stay numbers.
struct Field {
    std::string key;
    std::string json;
    Field(std::string k, std::string_view v);
    Field(std::string k, const char* v);
    Field(std::string k, const std::string& v);
    Field(std::string k, long long v);
    Field(std::string k, unsigned long long v);
    Field(std::string k, int v) : Field(std::move(k), static_cast<long long>(v)) {}
    Field(std::string k, long v) : Field(std::move(k), static_cast<long long>(v)) {}
    Field(std::string k, unsigned v) : Field(std::move(k), static_cast<unsigned long long>(v)) {}
    Field(std::string k, unsigned long v)
        : Field(std::move(k), static_cast<unsigned long long>(v)) {}
    Field(std::string k, double v);
    Field(std::string k, bool v);
};

// Reads LOG_LEVEL; returns false (and keeps "info") if it names no level.
bool configure_from_env();
void set_level(Level level);
bool enabled(Level level);

// {"ts":"2026-11-22T03:00:00.123Z","level":"info","msg":"...", fields...}
void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
    write(Level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
    write(Level::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
    write(Level::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
    write(Level::error, m, f);
}

}  // namespace imgspool::log
