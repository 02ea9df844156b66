// The job record: SQLite at <state_dir>/imgspool.db, WAL mode, safe to read with the sqlite3 CLI
// while the daemon runs. All methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

struct sqlite3;

namespace imgspool {

// One stored derivative, as recorded in images.urls and derivative_cache.
struct StoredVariant {
    std::string variant;  // "small"
    std::string format;   // "jpeg", "png", "webp"
    std::string key;
    std::string url;
    int width = 0;
    int height = 0;
    std::uint64_t bytes = 0;

    bool operator==(const StoredVariant&) const = default;
};

// What a manifest or an upload form says about a job; everything but origin is optional, and
// "" is stored as NULL.
struct JobRequest {
    std::string origin = "drop";  // "drop" | "manifest" | "http"
    std::string source_url;       // https://... | s3://bucket/key
    std::string user_id;
    std::string tool;
    std::string ref;            // the client's own id for the job
    std::string client_name;    // HTTP: the form's file name
    std::string metadata_json;  // "" or a JSON object, compact
    std::string profile;        // "" = the spool's
    bool operator==(const JobRequest&) const = default;
};

struct JobRecord {
    std::string upload_id;
    std::string spool;
    std::string source_name;  // path relative to inbox/
    std::string source_hash;  // empty until hashed
    std::string status;       // pending | processing | complete | failed
    int progress = 0;         // 0-100
    std::string error;        // failed: the reason
    std::string error_stage;  // failed: the stage
    std::uint64_t original_size = 0;
    int width = 0;
    int height = 0;
    std::string format;
    std::string profile;
    std::string created_at;  // ISO 8601 UTC with milliseconds: "2026-11-22T03:04:05.123Z"
    std::string updated_at;
    std::string completed_at;            // empty until complete
    bool cache_hit = false;              // complete: outputs came from derivative_cache
    std::int64_t duration_ms = 0;        // complete: time the pipeline spent on the job
    int attempts = 0;                    // runs started (start_attempt)
    int crashes = 0;                     // runs cut short by the daemon's death
    std::string next_attempt_at;         // deferred: when it is tried again
    std::string last_error;              // deferred: why the last run could not finish
    std::vector<StoredVariant> outputs;  // filled by find() for complete jobs
    JobRequest request;                  // request.profile is the same as profile
};

// Rows of the views the sqlite3 CLI reads too (docs/sqlite-queries.md).
struct InFlightJob {  // jobs_in_flight
    std::string upload_id;
    std::string spool;
    std::string source_name;
    std::string status;  // pending | processing
    int progress = 0;
    std::string created_at;
    std::string updated_at;
    std::int64_t age_s = 0;  // seconds since created_at
};

struct DeferredJob {  // jobs_deferred
    std::string upload_id;
    std::string spool;
    std::string source_name;
    int attempts = 0;
    std::string next_attempt_at;
    std::string last_error;
};

// A file in an inbox that is not whole yet (waiting_files).
struct WaitingFile {
    std::string spool;
    std::string source_name;
    std::uint64_t size = 0;
    std::string reason;  // "incomplete JPEG: no end-of-image marker", "open for writing by ..."
    std::string since;   // ISO 8601 UTC: unchanged since then
};

struct FailedJob {  // failures_today
    std::string upload_id;
    std::string spool;
    std::string source_name;
    std::string stage;
    std::string reason;
    std::string failed_at;
};

struct HourThroughput {  // throughput_per_hour
    std::string hour;    // "2026-11-22T03:00Z" (UTC)
    std::int64_t completed = 0;
    std::int64_t failed = 0;
    std::optional<std::int64_t> avg_duration_ms;  // of the completed ones; none when 0 completed
};

struct CacheHitRate {  // cache_hit_rate, over all complete jobs
    std::int64_t hits = 0;
    std::int64_t misses = 0;
    double hit_rate_pct = 0;  // rounded to 0.1
};

// Timestamps as every timestamp column holds them: "2026-11-22T03:04:05.123Z" (UTC).
std::string iso_utc(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_iso_utc(const std::string& text);

class JobDb {
  public:
    // Opens or creates the database and its schema; WAL mode, busy timeout.
    static Result<std::unique_ptr<JobDb>> open(const std::filesystem::path& file);
    ~JobDb();
    JobDb(const JobDb&) = delete;
    JobDb& operator=(const JobDb&) = delete;

    // pending row; a second insert of the same upload_id is a no-op (recovery re-inserts).
    // request: what an HTTP upload's form said, recorded at accept time; drops leave it
    // empty. A non-empty request.profile is the job's profile instead of `profile`, as in
    // set_request. Metadata that is not a JSON object is refused (Stage::validate).
    Status insert_job(const std::string& upload_id, const std::string& spool,
                      const std::string& source_name, const std::string& profile,
                      const JobRequest& request = {});
    // Removes the row of a job whose file could not be claimed after all (never started).
    Status forget_unclaimed(const std::string& upload_id);
    // The updates below are refused (Stage::commit error) for an unknown or a complete job.
    // status processing and attempts + 1: counted before the run, so a run that kills the
    // daemon is known at the next start.
    Status start_attempt(const std::string& upload_id);
    // Back to pending after a fault that passes: last_error, next_attempt_at (UTC).
    Status defer(const std::string& upload_id, const Error& error,
                 std::chrono::system_clock::time_point next_attempt);
    // A run found cut short at start-up (status processing): crashes + 1, status pending.
    // Returns the new number of crashes.
    Result<int> record_crash(const std::string& upload_id);
    Status set_progress(const std::string& upload_id, int progress);  // 0-100
    // What a manifest asked for, once it is read: replaces every request column, and the
    // profile too when request.profile is non-empty. Refused like the updates above, and
    // (Stage::validate) for metadata that is not a JSON object.
    Status set_request(const std::string& upload_id, const JobRequest& request);
    Status set_source(const std::string& upload_id, const std::string& source_hash,
                      std::uint64_t original_size, int width, int height,
                      const std::string& format);

    // One transaction: images row with the URLs, status complete, progress 100, and (when
    // cache_fingerprint is non-empty and this was no cache hit) the derivative_cache row for
    // (source_hash, fingerprint), naming this job as the one that rendered the outputs.
    // A job that is already complete is refused (the first record stands).
    Status complete(const std::string& upload_id, const std::vector<StoredVariant>& outputs,
                    const std::string& cache_fingerprint, bool cache_hit = false,
                    std::int64_t duration_ms = 0);
    // status failed with error.reason and stage_name(error.stage); refused for a complete job.
    Status fail(const std::string& upload_id, const Error& error);

    // Variants stored earlier for these bytes and profile settings.
    std::optional<std::vector<StoredVariant>> cache_lookup(const std::string& source_hash,
                                                           const std::string& fingerprint);

    std::optional<JobRecord> find(const std::string& upload_id);
    std::map<std::string, std::int64_t> counts_by_status();
    std::vector<JobRecord> unfinished();  // pending or processing, oldest first

    // The views, as `imgspool status` shows them; errors name the view.
    Result<std::vector<InFlightJob>> jobs_in_flight();  // oldest first
    Result<std::vector<FailedJob>> failures_today();    // since midnight UTC, newest first
    Result<std::vector<HourThroughput>> throughput_per_hour(int hours);  // newest first
    Result<CacheHitRate> cache_hit_rate();
    Result<std::vector<DeferredJob>> jobs_deferred();  // soonest first
    Result<std::vector<WaitingFile>> waiting_files();  // oldest first

    // Replaces the whole waiting_files table with `files` (one transaction).
    Status replace_waiting_files(const std::vector<WaitingFile>& files);

    // PRAGMA user_version written by this build; open() migrates older files up to it.
    static constexpr int schema_version = 3;

  private:
    struct Closer {
        void operator()(sqlite3* db) const;
    };
    using Handle = std::unique_ptr<sqlite3, Closer>;

    explicit JobDb(Handle db);
    Handle db_;
    std::mutex mutex_;
};

}  // namespace imgspool
