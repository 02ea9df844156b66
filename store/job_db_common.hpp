// Helpers both job record backends share: the ISO timestamps every timestamp column holds,
// and the checks made before a request is written.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/error.hpp"

namespace imgspool {

// Timestamps as every timestamp column holds them: "2026-11-22T03:04:05.123Z" (UTC).
std::string iso_utc(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_iso_utc(const std::string& text);

// The metadata column holds a JSON object or nothing; checked before writing so the reason says
// which job and what was wrong (Stage::validate).
Status check_metadata(const std::string& upload_id, const std::string& metadata_json);

}  // namespace imgspool
