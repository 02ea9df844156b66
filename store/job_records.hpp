// What the job record holds, as both backends (SQLite, PostgreSQL) read and write it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace imgspool {

// One stored derivative, as recorded in images.urls and derivative_cache.
struct StoredVariant {
    std::string variant;  // "small"
    std::string format;   // "jpeg", "png", "webp", "avif", "gif"
    std::string key;
    std::string url;
    int width = 0;  // of one frame
    int height = 0;
    std::uint64_t bytes = 0;
    int frames = 1;  // an animated output: its frames (recorded as "frames" in outputs)

    bool operator==(const StoredVariant&) const = default;
};

// A job's progressive-loading placeholders (pipeline/placeholder.hpp makes them), as recorded in
// images and derivative_cache; "" is one the profile did not ask for (stored as NULL).
struct Placeholders {
    std::string blurhash;  // "LEHV6nWB2yk8pyo0adR*.7kCMdnj"
    std::string lqip;      // "data:image/webp;base64,...", under 1 KiB

    bool empty() const { return blurhash.empty() && lqip.empty(); }
    bool operator==(const Placeholders&) const = default;
};

// What derivative_cache holds for one source and profile fingerprint.
struct CachedSet {
    std::vector<StoredVariant> outputs;
    Placeholders placeholders;
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
    Placeholders placeholders;           // complete jobs whose profile asked for them
    JobRequest request;                  // request.profile is the same as profile
    std::string node;                    // the node that owns the job (writes its updates)
    std::string adopted_from;            // the node whose death handed it over (last one); ""
};

// Rows of the views the sqlite3 CLI reads too (docs/queries.md).
struct InFlightJob {  // jobs_in_flight
    std::string upload_id;
    std::string spool;
    std::string source_name;
    std::string status;  // pending | processing
    int progress = 0;
    std::string created_at;
    std::string updated_at;
    std::int64_t age_s = 0;  // seconds since created_at
    std::string node;
};

struct DeferredJob {  // jobs_deferred
    std::string upload_id;
    std::string spool;
    std::string source_name;
    int attempts = 0;
    std::string next_attempt_at;
    std::string last_error;
    std::string node;
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
    std::string node;
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

struct NodeRegistration {   // who this process is (nodes table), written by register_node
    std::string host;       // gethostname()
    std::string instance;   // a fresh id per process start (new_upload_id())
    std::string state_dir;  // with host: proves a restart of the same daemon
    std::int64_t pid = 0;
    std::string version;  // IMGSPOOL_VERSION
    int workers = 1;
    int lease_s = 30;         // silence after which other nodes adopt this node's jobs
    std::string cache_scope;  // short hash of key_template + store describe (§5), "" allowed
};

struct NodeCounters {  // what a heartbeat reports
    std::int64_t in_flight = 0;
    std::int64_t queue_depth = 0;
};

struct NodeStatus {                        // node_status view, one row per node
    std::string node, host, state;         // state: alive | lost (alive but heartbeat older
                                           // than lease_s) | stopped
    std::string started_at, heartbeat_at;  // ISO UTC like every other time
    std::int64_t heartbeat_age_s = 0;
    int lease_s = 0, workers = 0;
    std::int64_t in_flight = 0;  // this node's pending+processing rows in upload_jobs
    std::int64_t done_last_hour = 0, failed_last_hour = 0;
    double jobs_per_s = 0;  // completed over the last 5 minutes / 300
    std::string version, cache_scope;
};

// A job adopt_orphans took over: the record as it is now (node = the adopter) and its former
// owner.
struct AdoptedJob {
    JobRecord record;
    std::string from_node;
};

}  // namespace imgspool
