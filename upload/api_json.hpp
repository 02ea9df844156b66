// The JSON bodies of the HTTP drop-in's answers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "upload/upload_backend.hpp"

namespace imgspool::upload {

// "/images/<id>": where a client asks after its job.
std::string status_url(std::string_view upload_id);

// {"error": "<reason>"}
std::string error_json(std::string_view reason);

// 202 for an image: {"uploadId","originalSize","dimensions":{"width","height"},"format",
// "statusUrl"}.
std::string accepted_image_json(std::string_view upload_id, const PreparedUpload& up);

// 202 for a manifest: {"uploadId","statusUrl"}.
std::string accepted_job_json(std::string_view upload_id);

// GET /images/{id}: {"uploadId","status","progress","error","source","metadata","userId","tool",
// "ref","urls":{"small.webp": url},"variants":[{"variant","format","width","height","bytes",
// "url"}],"placeholders":{"blurhash","lqip"}} (only those the job has: {} when none).
// "error" and "metadata" are null when there are none; metadata that does not parse as JSON is
// shown as a string rather than dropped.
std::string image_json(const ImageView& view);

}  // namespace imgspool::upload
