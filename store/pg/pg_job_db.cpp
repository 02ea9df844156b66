#include "store/pg/pg_job_db.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/printable_name.hpp"
#include "store/job_db_common.hpp"
#include "store/pg/database_url.hpp"
#include "store/pg/pg_schema.hpp"
#include "store/variant_json.hpp"

namespace imgspool::pg {

namespace {

// Parameters go as text; the casts say what they become. Timestamps are written with now() (the
// database's clock, one value per transaction) and read back through imgspool_iso().

constexpr PgStatement kInsertJob{"imgspool_insert_job", R"sql(
INSERT INTO upload_jobs (id, spool, source_name, profile, origin, source_url, user_id, tool, ref,
                         metadata, client_name, node)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12)
ON CONFLICT (id) DO NOTHING)sql",
                                 12};

// A row back: this node has the file. None: (spool, claim_key) was claimed already.
constexpr PgStatement kInsertClaim{"imgspool_insert_claim", R"sql(
INSERT INTO upload_jobs (id, spool, source_name, profile, node, claim_key)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (spool, claim_key) WHERE claim_key IS NOT NULL DO NOTHING
RETURNING id)sql",
                                   6};

constexpr PgStatement kForgetUnclaimed{"imgspool_forget_unclaimed", R"sql(
DELETE FROM upload_jobs WHERE id = $1 AND node = $2 AND status = 'pending' AND attempts = 0
RETURNING 1)sql",
                                       2};

constexpr PgStatement kOwnerOf{
    "imgspool_owner_of", "SELECT status, node, adopted_from FROM upload_jobs WHERE id = $1", 1};

// Every guarded update ($1 the job, $2 this node) returns a row when it changed one; none means
// refusal() says why.
constexpr PgStatement kStartAttempt{"imgspool_start_attempt", R"sql(
UPDATE upload_jobs SET status = 'processing', error = NULL, error_stage = NULL,
       attempts = attempts + 1, next_attempt_at = NULL, updated_at = now()
WHERE id = $1 AND node = $2 AND status <> 'complete'
RETURNING 1)sql",
                                    2};

// $4: milliseconds from the caller's now to its next attempt, added to the database's now, so
// a host whose clock is off does not move retries.
constexpr PgStatement kDefer{"imgspool_defer", R"sql(
UPDATE upload_jobs SET status = 'pending', last_error = $3,
       next_attempt_at = now() + make_interval(secs => $4::bigint / 1000.0), updated_at = now()
WHERE id = $1 AND node = $2 AND status <> 'complete'
RETURNING 1)sql",
                             4};

constexpr PgStatement kRecordCrash{"imgspool_record_crash", R"sql(
UPDATE upload_jobs SET status = 'pending', crashes = crashes + 1, updated_at = now()
WHERE id = $1 AND node = $2 AND status = 'processing'
RETURNING crashes)sql",
                                   2};

constexpr PgStatement kSetProgress{"imgspool_set_progress", R"sql(
UPDATE upload_jobs SET progress = $3::integer, updated_at = now()
WHERE id = $1 AND node = $2 AND status <> 'complete'
RETURNING 1)sql",
                                   3};

constexpr PgStatement kSetRequest{"imgspool_set_request", R"sql(
UPDATE upload_jobs SET origin = $3, source_url = $4, user_id = $5, tool = $6, ref = $7,
       metadata = $8::jsonb, client_name = $9, profile = coalesce($10, profile),
       updated_at = now()
WHERE id = $1 AND node = $2 AND status <> 'complete'
RETURNING 1)sql",
                                  10};

constexpr PgStatement kSetSource{"imgspool_set_source", R"sql(
UPDATE upload_jobs SET source_hash = $3, original_size = $4::bigint, width = $5::integer,
       height = $6::integer, format = $7, updated_at = now()
WHERE id = $1 AND node = $2 AND status <> 'complete'
RETURNING 1)sql",
                                 7};

// The first of complete()'s three statements; returns the source hash the cache row needs.
constexpr PgStatement kComplete{"imgspool_complete", R"sql(
UPDATE upload_jobs SET status = 'complete', progress = 100, error = NULL, error_stage = NULL,
       cache_hit = $3::boolean, duration_ms = $4::bigint, completed_at = now(),
       updated_at = now()
WHERE id = $1 AND node = $2 AND status <> 'complete'
RETURNING coalesce(source_hash, ''))sql",
                                4};

constexpr PgStatement kInsertImage{"imgspool_insert_image", R"sql(
INSERT INTO images (upload_id, urls, outputs, total_bytes, blurhash, lqip)
VALUES ($1, $2::jsonb, $3::jsonb, $4::bigint, $5, $6))sql",
                                   6};

// Two nodes that render the same bytes at once: the set stored first stands; the other job's
// outputs stay valid under its own keys.
constexpr PgStatement kInsertCache{"imgspool_insert_cache", R"sql(
INSERT INTO derivative_cache (source_hash, profile_fingerprint, outputs, upload_id, blurhash,
                              lqip)
VALUES ($1, $2, $3::jsonb, $4, $5, $6)
ON CONFLICT (source_hash, profile_fingerprint) DO NOTHING)sql",
                                   6};

constexpr PgStatement kFail{"imgspool_fail", R"sql(
UPDATE upload_jobs SET status = 'failed', error = $3, error_stage = $4, updated_at = now()
WHERE id = $1 AND node = $2 AND status <> 'complete'
RETURNING 1)sql",
                            4};

constexpr PgStatement kCacheLookup{"imgspool_cache_lookup", R"sql(
SELECT outputs::text, blurhash, lqip FROM derivative_cache
WHERE source_hash = $1 AND profile_fingerprint = $2)sql",
                                   2};

// The columns read_job() reads, in its order; outputs are NULL unless the job is complete.
#define IMGSPOOL_SELECT_JOBS                                                                   \
    "SELECT j.id, j.spool, j.source_name, j.source_hash, j.status, j.progress, j.error,\n"     \
    "       j.error_stage, j.original_size, j.width, j.height, j.format, j.profile,\n"         \
    "       imgspool_iso(j.created_at), imgspool_iso(j.updated_at),\n"                         \
    "       imgspool_iso(j.completed_at), j.cache_hit, j.duration_ms, i.outputs::text,\n"      \
    "       j.attempts, j.crashes, imgspool_iso(j.next_attempt_at), j.last_error, j.origin,\n" \
    "       j.source_url, j.user_id, j.tool, j.ref, j.metadata::text, j.client_name,\n"        \
    "       j.node, j.adopted_from, i.blurhash, i.lqip\n"                                      \
    "FROM upload_jobs j LEFT JOIN images i ON i.upload_id = j.id\n"

constexpr PgStatement kFindJob{"imgspool_find_job", IMGSPOOL_SELECT_JOBS "WHERE j.id = $1", 1};

// created_at has microseconds; the id only breaks ties of jobs made in the same instant.
constexpr PgStatement kUnfinished{"imgspool_unfinished",
                                  IMGSPOOL_SELECT_JOBS
                                  "WHERE j.node = $1 AND j.status IN ('pending', 'processing')\n"
                                  "ORDER BY j.created_at, j.id",
                                  1};
#undef IMGSPOOL_SELECT_JOBS

// Design §4.4: the unfinished jobs of nodes that stopped or are silent past their lease, oldest
// first, of the spools in the JSON array $4, locked with SKIP LOCKED so two adopters take disjoint
// sets. After a server restart every
// heartbeat is old: no node counts as silent until the server has been up for its lease_s plus
// $3 seconds, the longest a live node's pool may wait before it tries the server again (its
// reconnect backoff): time in which the live ones heart-beat again. The columns are read_job()'s
// (an unfinished job has no images row: outputs NULL).
constexpr PgStatement kAdoptOrphans{"imgspool_adopt_orphans", R"sql(
WITH dead AS (
    SELECT n.node FROM nodes n
    WHERE n.node <> $1
      AND (n.state = 'stopped'
           OR (n.heartbeat_at < now() - make_interval(secs => n.lease_s)
               AND pg_postmaster_start_time() < now() - make_interval(secs => n.lease_s + $3)))
), picked AS (
    SELECT j.id, j.node AS from_node FROM upload_jobs j JOIN dead d ON d.node = j.node
    WHERE j.status IN ('pending', 'processing')
      AND j.spool IN (SELECT jsonb_array_elements_text($4::jsonb))
    ORDER BY j.created_at, j.id
    LIMIT $2::integer
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE upload_jobs j
SET adopted_from = picked.from_node, node = $1,
    crashes = j.crashes + CASE WHEN j.status = 'processing' THEN 1 ELSE 0 END,
    status = 'pending', updated_at = now()
FROM picked WHERE j.id = picked.id
RETURNING j.id, j.spool, j.source_name, j.source_hash, j.status, j.progress, j.error,
          j.error_stage, j.original_size, j.width, j.height, j.format, j.profile,
          imgspool_iso(j.created_at), imgspool_iso(j.updated_at), imgspool_iso(j.completed_at),
          j.cache_hit, j.duration_ms, NULL::text, j.attempts, j.crashes,
          imgspool_iso(j.next_attempt_at), j.last_error, j.origin, j.source_url, j.user_id,
          j.tool, j.ref, j.metadata::text, j.client_name, j.node, j.adopted_from, NULL::text,
          NULL::text)sql",
                                    4};

// Who holds a node name, judged on the database clock; locked until register_node commits.
constexpr PgStatement kNodeHolder{"imgspool_node_holder", R"sql(
SELECT host, state_dir, state, pid, heartbeat_at < now() - make_interval(secs => lease_s),
       CAST(round(extract(epoch FROM now() - heartbeat_at)) AS bigint)
FROM nodes WHERE node = $1
FOR UPDATE)sql",
                                  1};

// $1 node, $2 host, $3 state_dir, $4 instance, $5 pid, $6 version, $7 workers, $8 lease_s,
// $9 cache_scope. A row back: the name was free and is now this process's.
constexpr PgStatement kInsertNode{"imgspool_insert_node", R"sql(
INSERT INTO nodes (node, host, state_dir, instance, pid, version, workers, lease_s, state,
                   cache_scope)
VALUES ($1, $2, $3, $4, $5::bigint, $6, $7::integer, $8::integer, 'alive', $9)
ON CONFLICT (node) DO NOTHING
RETURNING 1)sql",
                                  9};

constexpr PgStatement kTakeNode{"imgspool_take_node", R"sql(
UPDATE nodes SET host = $2, state_dir = $3, instance = $4, pid = $5::bigint, version = $6,
       workers = $7::integer, lease_s = $8::integer, state = 'alive', cache_scope = $9,
       started_at = now(), heartbeat_at = now(), in_flight = 0, queue_depth = 0
WHERE node = $1)sql",
                                9};

constexpr PgStatement kHeartbeat{"imgspool_heartbeat", R"sql(
UPDATE nodes SET heartbeat_at = now(), in_flight = $3::integer, queue_depth = $4::integer
WHERE node = $1 AND instance = $2
RETURNING 1)sql",
                                 4};

constexpr PgStatement kLeave{"imgspool_leave", R"sql(
UPDATE nodes SET state = 'stopped', heartbeat_at = now(), in_flight = 0, queue_depth = 0
WHERE node = $1 AND instance = $2
RETURNING 1)sql",
                             2};

constexpr PgStatement kNodeInstance{"imgspool_node_instance",
                                    "SELECT instance, host, pid FROM nodes WHERE node = $1", 1};

constexpr PgStatement kNodeStatus{"imgspool_node_status", R"sql(
SELECT node, host, state, imgspool_iso(started_at), imgspool_iso(heartbeat_at), heartbeat_age_s,
       lease_s, workers, in_flight, done_last_hour, failed_last_hour, jobs_per_s, version,
       cache_scope
FROM node_status)sql",
                                  0};

constexpr PgStatement kStatusCounts{"imgspool_status_counts",
                                    "SELECT status, jobs FROM status_counts", 0};

constexpr PgStatement kJobsInFlight{"imgspool_jobs_in_flight", R"sql(
SELECT id, spool, source_name, status, progress, imgspool_iso(created_at),
       imgspool_iso(updated_at), age_s, node
FROM jobs_in_flight)sql",
                                    0};

constexpr PgStatement kFailuresToday{"imgspool_failures_today", R"sql(
SELECT id, spool, source_name, stage, reason, imgspool_iso(failed_at), node
FROM failures_today)sql",
                                     0};

constexpr PgStatement kThroughput{"imgspool_throughput_per_hour", R"sql(
SELECT hour, completed, failed, avg_duration_ms FROM throughput_per_hour LIMIT $1::bigint)sql",
                                  1};

constexpr PgStatement kCacheHitRate{"imgspool_cache_hit_rate",
                                    "SELECT hits, misses, hit_rate_pct FROM cache_hit_rate", 0};

constexpr PgStatement kJobsDeferred{"imgspool_jobs_deferred", R"sql(
SELECT id, spool, source_name, attempts, imgspool_iso(next_attempt_at), last_error, node
FROM jobs_deferred)sql",
                                    0};

// A file every node sees is listed once, as the node that has watched it longest sees it.
constexpr PgStatement kWaitingFiles{"imgspool_waiting_files", R"sql(
SELECT spool, source_name, size, reason, imgspool_iso(since) FROM (
    SELECT DISTINCT ON (spool, source_name) spool, source_name, size, reason, since
    FROM waiting_files ORDER BY spool, source_name, since) w
ORDER BY since)sql",
                                    0};

constexpr PgStatement kClearWaitingFiles{"imgspool_clear_waiting_files",
                                         "DELETE FROM waiting_files WHERE node = $1", 1};

constexpr PgStatement kInsertWaitingFile{"imgspool_insert_waiting_file", R"sql(
INSERT INTO waiting_files (spool, source_name, size, reason, since, node)
VALUES ($1, $2, $3::bigint, $4, $5::timestamptz, $6)
ON CONFLICT (node, spool, source_name) DO UPDATE
SET size = excluded.size, reason = excluded.reason, since = excluded.since)sql",
                                         6};

// Names and reasons are printable_name() text already where they come from the file system;
// PostgreSQL refuses bytes that are not UTF-8, so anything else is made so here too (a no-op
// for valid UTF-8). "" is NULL, as in SqliteJobDb.
Params& optional_name(Params& p, std::string_view text) {
    return p.optional_text(printable_name(text));
}

// origin, source_url, user_id, tool, ref, metadata, client_name.
Params& request_params(Params& p, const JobRequest& request) {
    p.text(request.origin);
    optional_name(p, request.source_url);
    optional_name(p, request.user_id);
    optional_name(p, request.tool);
    optional_name(p, request.ref);
    p.optional_text(request.metadata_json);  // checked JSON: valid UTF-8 already
    return optional_name(p, request.client_name);
}

// jsonb cannot hold U+0000 in a string (SQLite's text can), so such metadata is refused like
// metadata that is no object, before it could fail the job at the database.
bool holds_nul(const nlohmann::json& value) {
    if (value.is_string())
        return value.get_ref<const std::string&>().find('\0') != std::string::npos;
    if (!value.is_structured()) return false;
    for (const auto& [key, item] : value.items()) {
        if (key.find('\0') != std::string::npos || holds_nul(item)) return true;
    }
    return false;
}

Status check_pg_metadata(const std::string& upload_id, const std::string& metadata_json) {
    if (auto st = check_metadata(upload_id, metadata_json); !st) return st;
    if (metadata_json.find("\\u0000") == std::string::npos) return ok_status();
    if (holds_nul(nlohmann::json::parse(metadata_json, nullptr, /*allow_exceptions=*/false))) {
        return make_error(Stage::validate, "metadata of upload " + upload_id +
                                               " must not contain \\u0000 (PostgreSQL cannot "
                                               "store it)");
    }
    return ok_status();
}

std::int64_t int_or_zero(const PgResult& r, int row, int col) {
    return is_null(r, row, col) ? 0 : int64(r, row, col);
}

// jsonb keeps neither key order nor spacing: give the compact form (keys sorted) that every
// caller writes, so a request reads back as it was recorded.
std::string compact_json(const std::string& text) {
    if (text.empty()) return text;
    auto value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) return text;
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<JobRecord> read_job(const PgResult& r, int row) {
    JobRecord job;
    job.upload_id = value(r, row, 0);
    job.spool = value(r, row, 1);
    job.source_name = value(r, row, 2);
    job.source_hash = value(r, row, 3);
    job.status = value(r, row, 4);
    job.progress = static_cast<int>(int_or_zero(r, row, 5));
    job.error = value(r, row, 6);
    job.error_stage = value(r, row, 7);
    job.original_size = static_cast<std::uint64_t>(int_or_zero(r, row, 8));
    job.width = static_cast<int>(int_or_zero(r, row, 9));
    job.height = static_cast<int>(int_or_zero(r, row, 10));
    job.format = value(r, row, 11);
    job.profile = value(r, row, 12);
    job.created_at = value(r, row, 13);
    job.updated_at = value(r, row, 14);
    job.completed_at = value(r, row, 15);
    job.cache_hit = boolean(r, row, 16);
    job.duration_ms = int_or_zero(r, row, 17);
    job.attempts = static_cast<int>(int_or_zero(r, row, 19));
    job.crashes = static_cast<int>(int_or_zero(r, row, 20));
    job.next_attempt_at = value(r, row, 21);
    job.last_error = value(r, row, 22);
    job.request.origin = value(r, row, 23);
    job.request.source_url = value(r, row, 24);
    job.request.user_id = value(r, row, 25);
    job.request.tool = value(r, row, 26);
    job.request.ref = value(r, row, 27);
    job.request.metadata_json = compact_json(value(r, row, 28));
    job.request.client_name = value(r, row, 29);
    job.request.profile = job.profile;
    job.node = value(r, row, 30);
    job.adopted_from = value(r, row, 31);
    job.placeholders = {value(r, row, 32), value(r, row, 33)};
    if (!is_null(r, row, 18)) {
        auto variants = variants_from_json(value(r, row, 18));
        if (!variants) return variants.error();
        job.outputs = std::move(*variants);
    }
    return job;
}

Result<std::vector<JobRecord>> read_jobs(const PgResult& r) {
    std::vector<JobRecord> jobs;
    for (int row = 0; row < rows(r); ++row) {
        auto job = read_job(r, row);
        if (!job) return job.error();
        jobs.push_back(std::move(*job));
    }
    return jobs;
}

// Why an update guarded by "node = me AND status ..." changed no row, in SqliteJobDb's words:
// the job is another node's (checked first, whatever its status), unknown, or finished.
Error refusal(Connection& conn, const std::string& node, const std::string& upload_id,
              std::string_view what) {
    const std::string prefix = "cannot " + std::string(what) + " for upload " + upload_id + ": ";
    auto owner = conn.exec(kOwnerOf, Params().text(upload_id));
    if (!owner) return owner.error();
    if (rows(*owner) == 0) return make_error(Stage::commit, prefix + "no such job in the database");
    if (value(*owner, 0, 1) != node) {
        return make_error(Stage::lease,
                          prefix + owned_by(value(*owner, 0, 1), value(*owner, 0, 2)));
    }
    return make_error(Stage::commit, prefix + "the job is already " + value(*owner, 0, 0));
}

// Runs a guarded UPDATE … RETURNING ($1 the job, $2 this node) on conn: its result, or
// refusal() when it changed no row.
Result<PgResult> update_unfinished(Connection& conn, const PgStatement& stmt, const Params& params,
                                   const std::string& node, const std::string& upload_id,
                                   std::string_view what) {
    auto result = conn.exec(stmt, params);
    if (!result) return result.error();
    if (rows(*result) == 0) return refusal(conn, node, upload_id, what);
    return result;
}

NodeStatus read_node(const PgResult& r, int row) {
    NodeStatus n;
    n.node = value(r, row, 0);
    n.host = value(r, row, 1);
    n.state = value(r, row, 2);
    n.started_at = value(r, row, 3);
    n.heartbeat_at = value(r, row, 4);
    n.heartbeat_age_s = int64(r, row, 5);
    n.lease_s = static_cast<int>(int64(r, row, 6));
    n.workers = static_cast<int>(int64(r, row, 7));
    n.in_flight = int64(r, row, 8);
    n.done_last_hour = int64(r, row, 9);
    n.failed_last_hour = int64(r, row, 10);
    n.jobs_per_s = std::stod(value(r, row, 11));
    n.version = value(r, row, 12);
    n.cache_scope = value(r, row, 13);
    return n;
}

// The parameters of kInsertNode and kTakeNode.
Params node_params(const std::string& node, const NodeRegistration& me) {
    Params p;
    p.text(node)
        .text(printable_name(me.host))
        .text(printable_name(me.state_dir))
        .text(me.instance)
        .integer(me.pid)
        .text(printable_name(me.version))
        .integer(me.workers)
        .integer(std::max(me.lease_s, 1))
        .text(printable_name(me.cache_scope));
    return p;
}

// An error of a view reader names the view, and stays transient when it was.
Error reading(std::string_view view, Error error) {
    error.reason = "reading " + std::string(view) + ": " + error.reason;
    return error;
}

// Runs a view's SELECT and turns each row into a T.
template <typename T, typename Read>
Result<std::vector<T>> select_rows(ConnectionPool& pool, std::string_view view,
                                   const PgStatement& stmt, const Params& params, Read read) {
    auto read_all = pool.run([&](Connection& conn) -> Result<std::vector<T>> {
        auto result = conn.exec(stmt, params);
        if (!result) return result.error();
        std::vector<T> out;
        for (int row = 0; row < rows(*result); ++row) out.push_back(read(*result, row));
        return out;
    });
    if (!read_all) return reading(view, read_all.error());
    return read_all;
}

}  // namespace

PgJobDb::PgJobDb(std::unique_ptr<ConnectionPool> pool, std::string description, std::string node)
    : pool_(std::move(pool)), description_(std::move(description)), node_(std::move(node)) {}

Result<std::unique_ptr<PgJobDb>> PgJobDb::open(const DatabaseSettings& settings, int pool_size,
                                               std::string node_name) {
    std::string description = "postgresql " + describe_database(settings.url);
    auto pool = ConnectionPool::open(settings, std::max(pool_size, 1), "imgspool/" + node_name);
    if (!pool) return pool.error();
    auto migrated = (*pool)->run(
        [&](Connection& conn) -> Status { return migrate(conn, description, node_name); });
    if (!migrated) return migrated.error();
    return std::unique_ptr<PgJobDb>(
        new PgJobDb(std::move(*pool), std::move(description), std::move(node_name)));
}

std::string PgJobDb::describe() const {
    return description_;
}

const std::string& PgJobDb::node() const {
    return node_;
}

void PgJobDb::on_recovered(std::function<void()> callback) {
    pool_->on_recovered(std::move(callback));
}

std::uint64_t PgJobDb::reconnects() const {
    return pool_->reconnects();
}

Status PgJobDb::insert_job(const std::string& upload_id, const std::string& spool,
                           const std::string& source_name, const std::string& profile,
                           const JobRequest& request) {
    if (auto st = check_pg_metadata(upload_id, request.metadata_json); !st) return st;
    Params params;
    params.text(upload_id).text(printable_name(spool)).text(printable_name(source_name));
    params.text(printable_name(request.profile.empty() ? profile : request.profile));
    request_params(params, request);
    params.text(node_);
    return pool_->run([&](Connection& conn) -> Status {
        auto result = conn.exec(kInsertJob, params);
        if (!result) return result.error();
        return ok_status();
    });
}

Result<bool> PgJobDb::insert_claim(const std::string& upload_id, const std::string& spool,
                                   const std::string& source_name, const std::string& profile,
                                   const std::string& claim_key) {
    Params params;
    params.text(upload_id)
        .text(printable_name(spool))
        .text(printable_name(source_name))
        .text(printable_name(profile))
        .text(node_)
        .text(printable_name(claim_key));
    return pool_->run([&](Connection& conn) -> Result<bool> {
        auto result = conn.exec(kInsertClaim, params);
        if (!result) return result.error();
        return rows(*result) == 1;
    });
}

Status PgJobDb::forget_unclaimed(const std::string& upload_id) {
    return pool_->run([&](Connection& conn) -> Status {
        auto result = conn.exec(kForgetUnclaimed, Params().text(upload_id).text(node_));
        if (!result) return result.error();
        if (rows(*result) == 1) return ok_status();
        // Nothing to forget: gone or started is fine, another node's claim is not ours to drop.
        auto owner = conn.exec(kOwnerOf, Params().text(upload_id));
        if (!owner) return owner.error();
        if (rows(*owner) == 1 && value(*owner, 0, 1) != node_) {
            return make_error(Stage::lease, "cannot forget the unclaimed job " + upload_id + ": " +
                                                owned_by(value(*owner, 0, 1), value(*owner, 0, 2)));
        }
        return ok_status();
    });
}

Status PgJobDb::start_attempt(const std::string& upload_id) {
    return pool_->run([&](Connection& conn) -> Status {
        auto result = update_unfinished(conn, kStartAttempt, Params().text(upload_id).text(node_),
                                        node_, upload_id, "mark the job processing");
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::defer(const std::string& upload_id, const Error& error,
                      std::chrono::system_clock::time_point next_attempt) {
    using namespace std::chrono;
    const auto delay_ms = duration_cast<milliseconds>(next_attempt - system_clock::now()).count();
    Params params;
    params.text(upload_id)
        .text(node_)
        .text(std::string(stage_name(error.stage)) + ": " + printable_name(error.reason))
        .integer(delay_ms);
    return pool_->run([&](Connection& conn) -> Status {
        auto result = update_unfinished(conn, kDefer, params, node_, upload_id, "defer the job");
        if (!result) return result.error();
        return ok_status();
    });
}

Result<int> PgJobDb::record_crash(const std::string& upload_id) {
    return pool_->run([&](Connection& conn) -> Result<int> {
        auto result = update_unfinished(conn, kRecordCrash, Params().text(upload_id).text(node_),
                                        node_, upload_id, "count the crash");
        if (!result) return result.error();
        return static_cast<int>(int64(*result, 0, 0));
    });
}

Status PgJobDb::set_progress(const std::string& upload_id, int progress) {
    if (progress < 0 || progress > 100) {
        return make_error(Stage::commit, "progress of upload " + upload_id +
                                             " must be 0-100, not " + std::to_string(progress));
    }
    return pool_->run([&](Connection& conn) -> Status {
        auto result = update_unfinished(conn, kSetProgress,
                                        Params().text(upload_id).text(node_).integer(progress),
                                        node_, upload_id, "record progress");
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::set_request(const std::string& upload_id, const JobRequest& request) {
    if (auto st = check_pg_metadata(upload_id, request.metadata_json); !st) return st;
    Params params;
    params.text(upload_id).text(node_);
    request_params(params, request);
    optional_name(params, request.profile);  // NULL keeps the job's profile
    return pool_->run([&](Connection& conn) -> Status {
        auto result =
            update_unfinished(conn, kSetRequest, params, node_, upload_id, "record the request");
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::set_source(const std::string& upload_id, const std::string& source_hash,
                           std::uint64_t original_size, int width, int height,
                           const std::string& format) {
    Params params;
    params.text(upload_id)
        .text(node_)
        .text(source_hash)
        .integer(static_cast<std::int64_t>(original_size))
        .integer(width)
        .integer(height)
        .text(printable_name(format));
    return pool_->run([&](Connection& conn) -> Status {
        auto result =
            update_unfinished(conn, kSetSource, params, node_, upload_id, "record the source");
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::complete(const std::string& upload_id, const std::vector<StoredVariant>& outputs,
                         const std::string& cache_fingerprint, bool cache_hit,
                         std::int64_t duration_ms, const Placeholders& placeholders) {
    const std::string outputs_json = variants_to_json(outputs);
    const std::string urls_json = variant_urls_json(outputs);
    std::uint64_t total_bytes = 0;
    for (const auto& v : outputs) total_bytes += v.bytes;

    return pool_->run([&](Connection& conn) -> Status {
        Transaction tx(conn);
        if (auto st = tx.begin(); !st) return st;
        auto job = update_unfinished(
            conn, kComplete,
            Params().text(upload_id).text(node_).boolean(cache_hit).integer(duration_ms), node_,
            upload_id, "record the job complete");
        if (!job) return job.error();
        const std::string source_hash = value(*job, 0, 0);

        auto image = conn.exec(kInsertImage, Params()
                                                 .text(upload_id)
                                                 .text(urls_json)
                                                 .text(outputs_json)
                                                 .integer(static_cast<std::int64_t>(total_bytes))
                                                 .optional_text(placeholders.blurhash)
                                                 .optional_text(placeholders.lqip));
        if (!image) return image.error();

        if (!cache_fingerprint.empty() && !cache_hit) {
            if (source_hash.empty()) {
                return make_error(Stage::commit, "cannot cache the outputs of upload " + upload_id +
                                                     ": its source hash was never recorded");
            }
            auto cache = conn.exec(kInsertCache, Params()
                                                     .text(source_hash)
                                                     .text(cache_fingerprint)
                                                     .text(outputs_json)
                                                     .text(upload_id)
                                                     .optional_text(placeholders.blurhash)
                                                     .optional_text(placeholders.lqip));
            if (!cache) return cache.error();
        }
        return tx.commit();
    });
}

Status PgJobDb::fail(const std::string& upload_id, const Error& error) {
    Params params;
    params.text(upload_id)
        .text(node_)
        .text(printable_name(error.reason))
        .text(stage_name(error.stage));
    return pool_->run([&](Connection& conn) -> Status {
        auto result =
            update_unfinished(conn, kFail, params, node_, upload_id, "record the failure");
        if (!result) return result.error();
        return ok_status();
    });
}

Result<std::optional<CachedSet>> PgJobDb::cache_lookup(const std::string& source_hash,
                                                       const std::string& fingerprint) {
    using Found = std::optional<CachedSet>;
    return pool_->run([&](Connection& conn) -> Result<Found> {
        auto result = conn.exec(kCacheLookup, Params().text(source_hash).text(fingerprint));
        if (!result) return result.error();
        if (rows(*result) == 0) return Found{};
        auto variants = variants_from_json(value(*result, 0, 0));
        if (!variants) return variants.error();
        return Found{CachedSet{std::move(*variants), {value(*result, 0, 1), value(*result, 0, 2)}}};
    });
}

Result<std::optional<JobRecord>> PgJobDb::find(const std::string& upload_id) {
    return pool_->run([&](Connection& conn) -> Result<std::optional<JobRecord>> {
        auto result = conn.exec(kFindJob, Params().text(upload_id));
        if (!result) return result.error();
        if (rows(*result) == 0) return std::optional<JobRecord>{};
        auto job = read_job(*result, 0);
        if (!job) return job.error();
        return std::optional<JobRecord>{std::move(*job)};
    });
}

Result<std::map<std::string, std::int64_t>> PgJobDb::counts_by_status() {
    using Counts = std::map<std::string, std::int64_t>;
    return pool_->run([&](Connection& conn) -> Result<Counts> {
        auto result = conn.exec(kStatusCounts);
        if (!result) return result.error();
        Counts counts;
        for (int row = 0; row < rows(*result); ++row) {
            counts[value(*result, row, 0)] = int64(*result, row, 1);
        }
        return counts;
    });
}

Result<std::vector<JobRecord>> PgJobDb::unfinished() {
    return pool_->run([&](Connection& conn) -> Result<std::vector<JobRecord>> {
        auto result = conn.exec(kUnfinished, Params().text(node_));
        if (!result) return result.error();
        return read_jobs(*result);
    });
}

Result<std::vector<InFlightJob>> PgJobDb::jobs_in_flight() {
    return select_rows<InFlightJob>(*pool_, "jobs_in_flight", kJobsInFlight, Params(),
                                    [](const PgResult& r, int row) {
                                        return InFlightJob{value(r, row, 0),
                                                           value(r, row, 1),
                                                           value(r, row, 2),
                                                           value(r, row, 3),
                                                           static_cast<int>(int64(r, row, 4)),
                                                           value(r, row, 5),
                                                           value(r, row, 6),
                                                           int64(r, row, 7),
                                                           value(r, row, 8)};
                                    });
}

Result<std::vector<FailedJob>> PgJobDb::failures_today() {
    return select_rows<FailedJob>(
        *pool_, "failures_today", kFailuresToday, Params(), [](const PgResult& r, int row) {
            return FailedJob{value(r, row, 0), value(r, row, 1), value(r, row, 2), value(r, row, 3),
                             value(r, row, 4), value(r, row, 5), value(r, row, 6)};
        });
}

Result<std::vector<HourThroughput>> PgJobDb::throughput_per_hour(int hours) {
    return select_rows<HourThroughput>(
        *pool_, "throughput_per_hour", kThroughput, Params().integer(std::max(hours, 0)),
        [](const PgResult& r, int row) {
            HourThroughput h{value(r, row, 0), int64(r, row, 1), int64(r, row, 2), std::nullopt};
            if (!is_null(r, row, 3)) h.avg_duration_ms = int64(r, row, 3);
            return h;
        });
}

Result<CacheHitRate> PgJobDb::cache_hit_rate() {
    auto read = select_rows<CacheHitRate>(
        *pool_, "cache_hit_rate", kCacheHitRate, Params(), [](const PgResult& r, int row) {
            return CacheHitRate{int64(r, row, 0), int64(r, row, 1), std::stod(value(r, row, 2))};
        });
    if (!read) return read.error();
    if (read->size() != 1) return make_error(Stage::commit, "reading cache_hit_rate: no row");
    return read->front();
}

Result<std::vector<DeferredJob>> PgJobDb::jobs_deferred() {
    return select_rows<DeferredJob>(
        *pool_, "jobs_deferred", kJobsDeferred, Params(), [](const PgResult& r, int row) {
            return DeferredJob{value(r, row, 0), value(r, row, 1),
                               value(r, row, 2), static_cast<int>(int64(r, row, 3)),
                               value(r, row, 4), value(r, row, 5),
                               value(r, row, 6)};
        });
}

Result<std::vector<WaitingFile>> PgJobDb::waiting_files() {
    return select_rows<WaitingFile>(
        *pool_, "waiting_files", kWaitingFiles, Params(), [](const PgResult& r, int row) {
            return WaitingFile{value(r, row, 0), value(r, row, 1),
                               static_cast<std::uint64_t>(int64(r, row, 2)), value(r, row, 3),
                               value(r, row, 4)};
        });
}

Status PgJobDb::replace_waiting_files(const std::vector<WaitingFile>& files) {
    return pool_->run([&](Connection& conn) -> Status {
        Transaction tx(conn);
        if (auto st = tx.begin(); !st) return st;
        if (auto cleared = conn.exec(kClearWaitingFiles, Params().text(node_)); !cleared) {
            return cleared.error();
        }
        for (const WaitingFile& f : files) {
            auto inserted =
                conn.exec(kInsertWaitingFile, Params()
                                                  .text(printable_name(f.spool))
                                                  .text(printable_name(f.source_name))
                                                  .integer(static_cast<std::int64_t>(f.size))
                                                  .text(printable_name(f.reason))
                                                  .text(f.since)
                                                  .text(node_));
            if (!inserted) return inserted.error();
        }
        return tx.commit();
    });
}

Status PgJobDb::register_node(const NodeRegistration& me) {
    auto taken = pool_->run([&](Connection& conn) -> Status {
        Transaction tx(conn);
        if (auto st = tx.begin(); !st) return st;
        const Params params = node_params(node_, me);
        // A free name is taken at once; a concurrent first start waits here for the other's
        // commit and then finds its row below.
        auto inserted = conn.exec(kInsertNode, params);
        if (!inserted) return inserted.error();
        if (rows(*inserted) == 0) {
            auto held = conn.exec(kNodeHolder, Params().text(node_));
            if (!held) return held.error();
            if (rows(*held) == 1) {
                const NodeHolder holder{value(*held, 0, 0),   value(*held, 0, 1),
                                        value(*held, 0, 2),   int64(*held, 0, 3),
                                        boolean(*held, 0, 4), int64(*held, 0, 5)};
                if (auto st = may_take_node(node_, holder, me); !st) return st;
            }
            if (auto st = conn.exec(kTakeNode, params); !st) return st.error();
        }
        return tx.commit();
    });
    if (!taken) return taken;
    std::lock_guard lock(instance_mutex_);
    instance_ = me.instance;
    return ok_status();
}

std::string PgJobDb::instance() const {
    std::lock_guard lock(instance_mutex_);
    return instance_;
}

// The Stage::lease error of a nodes write (guarded by this instance) that changed no row.
Error PgJobDb::taken_over(Connection& conn, const std::string& instance, std::string_view what) {
    const std::string prefix = "cannot " + std::string(what) + " of node \"" + node_ + "\": ";
    auto holder = conn.exec(kNodeInstance, Params().text(node_));
    if (!holder) return holder.error();
    if (rows(*holder) == 0 || instance.empty()) {
        return make_error(Stage::lease, prefix + "this process never registered it");
    }
    return make_error(Stage::lease, prefix + "instance " + value(*holder, 0, 0) + " on host " +
                                        value(*holder, 0, 1) + " (pid " + value(*holder, 0, 2) +
                                        ") took it over");
}

Status PgJobDb::heartbeat(const NodeCounters& counters) {
    const std::string mine = instance();
    return pool_->run([&](Connection& conn) -> Status {
        auto beat = conn.exec(kHeartbeat, Params()
                                              .text(node_)
                                              .text(mine)
                                              .integer(counters.in_flight)
                                              .integer(counters.queue_depth));
        if (!beat) return beat.error();
        if (rows(*beat) == 0) return taken_over(conn, mine, "record the heartbeat");
        return ok_status();
    });
}

Status PgJobDb::leave() {
    const std::string mine = instance();
    return pool_->run([&](Connection& conn) -> Status {
        auto left = conn.exec(kLeave, Params().text(node_).text(mine));
        if (!left) return left.error();
        if (rows(*left) == 0) return taken_over(conn, mine, "record the stop");
        return ok_status();
    });
}

Result<std::vector<AdoptedJob>> PgJobDb::adopt_orphans(int limit,
                                                       const std::vector<std::string>& spools) {
    using Adopted = std::vector<AdoptedJob>;
    if (limit <= 0 || spools.empty()) return Adopted{};
    return pool_->run([&](Connection& conn) -> Result<Adopted> {
        const auto reconnect_s =
            std::chrono::ceil<std::chrono::seconds>(ConnectionPool::kLongestReconnectWait);
        auto result = conn.exec(kAdoptOrphans, Params()
                                                   .text(node_)
                                                   .integer(limit)
                                                   .integer(reconnect_s.count())
                                                   .text(nlohmann::json(spools).dump()));
        if (!result) return result.error();
        auto jobs = read_jobs(*result);
        if (!jobs) return jobs.error();
        // RETURNING keeps no order: oldest first, as they were picked.
        std::sort(jobs->begin(), jobs->end(), [](const JobRecord& a, const JobRecord& b) {
            return std::tie(a.created_at, a.upload_id) < std::tie(b.created_at, b.upload_id);
        });
        Adopted adopted;
        for (JobRecord& job : *jobs) {
            std::string from = job.adopted_from;
            adopted.push_back(AdoptedJob{std::move(job), std::move(from)});
        }
        return adopted;
    });
}

Result<std::vector<NodeStatus>> PgJobDb::nodes() {
    return select_rows<NodeStatus>(*pool_, "node_status", kNodeStatus, Params(), read_node);
}

}  // namespace imgspool::pg
