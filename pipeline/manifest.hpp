// Job manifests: a `*.job.json` file (or a POST /jobs body) that names where a job's pixels are
// and who asked for them, instead of carrying the pixels:
//   {"source": "https://..." | "http://..." | "s3://bucket/key", "profile": "dall-e",
//    "user_id": "...", "tool": "dall-e", "metadata": {"prompt": "..."}, "ref": "client id"}
// Only "source" is required. parse_manifest checks the shape; the source URL itself is checked
// in full where it is fetched (fetch/source_url), the profile name where profiles are known.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool {

constexpr std::size_t kMaxManifestBytes = 64 * 1024;          // the whole file
constexpr std::size_t kMaxManifestStringBytes = 1024;         // each of the string fields
constexpr std::size_t kMaxManifestMetadataBytes = 16 * 1024;  // metadata, serialised compact
constexpr int kMaxManifestDepth = 32;  // arrays and objects inside each other

// The file name (the last part of the path relative to the inbox) ends in ".job.json",
// compared byte by byte, ASCII letters in any case, and has something before it.
bool is_manifest_name(const std::filesystem::path& relative);

struct JobManifest {
    std::string source;   // starts with http://, https:// or s3://
    std::string profile;  // "" = the spool's
    std::string user_id;
    std::string tool;
    std::string ref;            // the client's own id for the job
    std::string metadata_json;  // "" or a JSON object, compact

    bool operator==(const JobManifest&) const = default;
};

// Stage::validate errors (never transient: the same bytes fail the same way), each reason
// starting "manifest: ": not JSON (with the parser's position), not an object, too large or
// too deep, an unknown key (named), "source" missing or with another scheme, a field of the
// wrong type or longer than its limit. A key given as null is the same as a key left out.
Result<JobManifest> parse_manifest(std::string_view bytes);

}  // namespace imgspool
