// What the HTTP drop-in needs from the daemon: the daemon implements it over intake and the job
// database; the tests use a fake. Every call comes from a connection's thread, several at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/validate.hpp"

namespace imgspool::upload {

// An upload or a manifest that passed every check, streamed to a temporary file.
struct PreparedUpload {
    std::filesystem::path temp;  // the streamed file, in the backend's temp_dir()
    std::string extension;       // ".jpg" ".png" ".webp" ".job.json"
    std::uint64_t bytes = 0;
    std::string format;  // images only: "jpeg", "png", "webp"
    int width = 0, height = 0;
    // As the client sent them (checked for length and control characters only); "" = not given:
    // the backend applies its defaults ([http] spool, the spool's profile) and its own checks.
    std::string spool, profile, user_id;
    std::string metadata_json;  // "" or a compact JSON object
    std::string client_name;    // the form's file name: any bytes, never a path
};

struct VariantView {
    std::string variant;  // "small"
    std::string format;   // "webp", "jpeg", "png"
    int width = 0, height = 0;
    std::uint64_t bytes = 0;
    std::string url;
};

// What GET /images/{id} shows of a job.
struct ImageView {
    std::string upload_id;
    std::string status;         // pending | processing | complete | failed
    int progress = 0;           // 0-100
    std::string error;          // failed: "<stage>: <reason>"; "" otherwise
    std::string source;         // the source URL, or the name the file came in under
    std::string metadata_json;  // "" or a JSON object
    std::string user_id, tool, ref;
    std::vector<VariantView> variants;  // complete jobs
    // Complete jobs whose profile asks for placeholders: a BlurHash string, a data: URI.
    std::string blurhash, lqip;
};

class UploadBackend {
  public:
    virtual ~UploadBackend() = default;
    // Why new work cannot be taken now (intake paused, queue full): answered 503 + Retry-After
    // before any body is read. nullopt: open.
    virtual std::optional<std::string> busy_reason() = 0;
    // Where .part files are streamed; on the spool's file system so accept() can rename.
    virtual std::filesystem::path temp_dir() = 0;
    // Whose .part files these are (PartFile::create's owner): daemons that share temp_dir()
    // each remove only their own unfinished uploads at start. "" = named without an owner.
    virtual std::string part_owner() { return {}; }
    // [limits] max_bytes: larger uploads are answered 413.
    virtual std::uint64_t max_bytes() = 0;
    // The header limits an upload is checked against before it is accepted. The default is
    // the built-in Limits with max_bytes(); the daemon overrides it with its [limits].
    virtual Limits limits() {
        Limits l;
        l.max_bytes = max_bytes();
        return l;
    }
    // Takes the temporary file (renames it away) and returns the job's upload_id. A transient
    // error is answered 503, any other 400 with its reason. On error, a temp file still in
    // place is removed by the server.
    virtual Result<std::string> accept(PreparedUpload up) = 0;
    // nullopt: no such job, 404. An error: the record cannot be read now (the database is down),
    // answered 503 + Retry-After when it is transient, else 500; its reason is sent as is.
    virtual Result<std::optional<ImageView>> image(const std::string& upload_id) = 0;
    // POST /jobs: the manifest's JSON; an error is answered 400 with its reason.
    virtual Status check_manifest(std::string_view json) = 0;
};

}  // namespace imgspool::upload
