// JSON text from values that may hold any bytes (file names, reasons that quote a path, rows
// read back from the database): every string and every key goes through printable_name()
// before it is written, so the text is valid JSON and writing it never throws.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace imgspool {

nlohmann::json printable_json(const nlohmann::json& value);

// printable_json(value).dump(indent).
std::string dump_printable(const nlohmann::json& value, int indent = -1);

}  // namespace imgspool
