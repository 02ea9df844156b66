// StoredVariant lists as the JSON kept in images.outputs, images.urls and derivative_cache, and
// a job's placeholders as the JSON its readers show.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "store/job_db.hpp"

namespace imgspool {

// [{"variant","format","key","url","width","height","bytes"[,"frames"]}, ...]; "frames" (>1)
// only for an animated output.
std::string variants_to_json(const std::vector<StoredVariant>& variants);
// The same list as a JSON value, for callers that embed it (and escape odd bytes on output).
nlohmann::json variants_json_value(const std::vector<StoredVariant>& variants);
Result<std::vector<StoredVariant>> variants_from_json(const std::string& json);

// {"small.jpg": url, ...}: "variant.ext" with ext taken from the key (the format if it has none).
std::string variant_urls_json(const std::vector<StoredVariant>& variants);

// {"blurhash": ..., "lqip": ...} with the placeholders a job has (an empty object for none), as
// `imgspool status` and `imgspool process` show them.
nlohmann::json placeholders_json_value(const Placeholders& placeholders);

}  // namespace imgspool
