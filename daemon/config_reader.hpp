// Reads typed keys out of one TOML table. Every key read is remembered, so whatever is left
// over is reported as an unknown key; the first problem found becomes the table's Error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <toml.hpp>
#include <vector>

#include "common/error.hpp"

namespace imgspool {

class TableReader {
  public:
    // `context` prefixes every message: "[daemon]", "[[spool]] #2", "" for the top level.
    TableReader(const toml::value& table, std::string context, std::string origin);

    // Each reader leaves `out` untouched when the key is absent.
    void integer(const std::string& key, int& out, int min, int max);
    void unsigned_integer(const std::string& key, std::uint64_t& out, std::uint64_t min,
                          std::uint64_t max);
    // An integer or a float (TOML's 1 and 1.0 alike) within min..max.
    void number(const std::string& key, double& out, double min, double max);
    void boolean(const std::string& key, bool& out);
    void string(const std::string& key, std::string& out);
    void path(const std::string& key, std::filesystem::path& out);
    void string_list(const std::string& key, std::vector<std::string>& out);

    // Sub-tables: nullptr when absent or of the wrong type (which is recorded as an error).
    const toml::value* table(const std::string& key);
    const toml::array* table_array(const std::string& key);

    // Records "missing (required)" when `key` is absent.
    void require(const std::string& key);

    // Records a problem with `key` found by the caller ("expected ..., got ..." or a sentence).
    void fail(const std::string& key, const std::string& problem);

    bool failed() const { return error_.has_value(); }

    // The first unknown key (in file order: a typo usually explains the other problems), else
    // the first recorded problem, else ok.
    Status finish() const;

  private:
    const toml::value* find(const std::string& key);
    void mismatch(const std::string& key, const toml::value& v, const std::string& expected);
    void record(std::string reason, const toml::value& at);

    const toml::value& table_;
    std::string context_;
    std::string origin_;
    std::vector<std::string> known_;
    std::optional<Error> error_;
};

// How a value is shown after "got": strings quoted, scalars as written, "an array", "a table".
std::string describe_value(const toml::value& v);

// A one-line TOML string literal for `s` (quoted and escaped), as toml11 writes it.
std::string toml_string(const std::string& s);

}  // namespace imgspool
