#include "store/pg/pg_job_db.hpp"

#include <algorithm>
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
                         metadata, client_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)
ON CONFLICT (id) DO NOTHING)sql",
                                 11};

constexpr PgStatement kForgetUnclaimed{"imgspool_forget_unclaimed", R"sql(
DELETE FROM upload_jobs WHERE id = $1 AND status = 'pending' AND attempts = 0)sql",
                                       1};

constexpr PgStatement kStatusOf{"imgspool_status_of",
                                "SELECT status FROM upload_jobs WHERE id = $1", 1};

// Every guarded update returns a row when it changed one; none means refusal() says why.
constexpr PgStatement kStartAttempt{"imgspool_start_attempt", R"sql(
UPDATE upload_jobs SET status = 'processing', error = NULL, error_stage = NULL,
       attempts = attempts + 1, next_attempt_at = NULL, updated_at = now()
WHERE id = $1 AND status <> 'complete'
RETURNING 1)sql",
                                    1};

// $3: milliseconds from the caller's now to its next attempt, added to the database's now, so
// a host whose clock is off does not move retries.
constexpr PgStatement kDefer{"imgspool_defer", R"sql(
UPDATE upload_jobs SET status = 'pending', last_error = $2,
       next_attempt_at = now() + make_interval(secs => $3::bigint / 1000.0), updated_at = now()
WHERE id = $1 AND status <> 'complete'
RETURNING 1)sql",
                             3};

constexpr PgStatement kRecordCrash{"imgspool_record_crash", R"sql(
UPDATE upload_jobs SET status = 'pending', crashes = crashes + 1, updated_at = now()
WHERE id = $1 AND status = 'processing'
RETURNING crashes)sql",
                                   1};

constexpr PgStatement kSetProgress{"imgspool_set_progress", R"sql(
UPDATE upload_jobs SET progress = $2::integer, updated_at = now()
WHERE id = $1 AND status <> 'complete'
RETURNING 1)sql",
                                   2};

constexpr PgStatement kSetRequest{"imgspool_set_request", R"sql(
UPDATE upload_jobs SET origin = $2, source_url = $3, user_id = $4, tool = $5, ref = $6,
       metadata = $7::jsonb, client_name = $8, profile = coalesce($9, profile),
       updated_at = now()
WHERE id = $1 AND status <> 'complete'
RETURNING 1)sql",
                                  9};

constexpr PgStatement kSetSource{"imgspool_set_source", R"sql(
UPDATE upload_jobs SET source_hash = $2, original_size = $3::bigint, width = $4::integer,
       height = $5::integer, format = $6, updated_at = now()
WHERE id = $1 AND status <> 'complete'
RETURNING 1)sql",
                                 6};

// The first of complete()'s three statements; returns the source hash the cache row needs.
constexpr PgStatement kComplete{"imgspool_complete", R"sql(
UPDATE upload_jobs SET status = 'complete', progress = 100, error = NULL, error_stage = NULL,
       cache_hit = $2::boolean, duration_ms = $3::bigint, completed_at = now(),
       updated_at = now()
WHERE id = $1 AND status <> 'complete'
RETURNING coalesce(source_hash, ''))sql",
                                3};

constexpr PgStatement kInsertImage{"imgspool_insert_image", R"sql(
INSERT INTO images (upload_id, urls, outputs, total_bytes)
VALUES ($1, $2::jsonb, $3::jsonb, $4::bigint))sql",
                                   4};

// Two nodes that render the same bytes at once: the set stored first stands; the other job's
// outputs stay valid under its own keys.
constexpr PgStatement kInsertCache{"imgspool_insert_cache", R"sql(
INSERT INTO derivative_cache (source_hash, profile_fingerprint, outputs, upload_id)
VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT (source_hash, profile_fingerprint) DO NOTHING)sql",
                                   4};

constexpr PgStatement kFail{"imgspool_fail", R"sql(
UPDATE upload_jobs SET status = 'failed', error = $2, error_stage = $3, updated_at = now()
WHERE id = $1 AND status <> 'complete'
RETURNING 1)sql",
                            3};

constexpr PgStatement kCacheLookup{"imgspool_cache_lookup", R"sql(
SELECT outputs::text FROM derivative_cache WHERE source_hash = $1 AND profile_fingerprint = $2)sql",
                                   2};

// The columns read_job() reads, in its order; outputs are NULL unless the job is complete.
#define IMGSPOOL_SELECT_JOBS                                                                   \
    "SELECT j.id, j.spool, j.source_name, j.source_hash, j.status, j.progress, j.error,\n"     \
    "       j.error_stage, j.original_size, j.width, j.height, j.format, j.profile,\n"         \
    "       imgspool_iso(j.created_at), imgspool_iso(j.updated_at),\n"                         \
    "       imgspool_iso(j.completed_at), j.cache_hit, j.duration_ms, i.outputs::text,\n"      \
    "       j.attempts, j.crashes, imgspool_iso(j.next_attempt_at), j.last_error, j.origin,\n" \
    "       j.source_url, j.user_id, j.tool, j.ref, j.metadata::text, j.client_name\n"         \
    "FROM upload_jobs j LEFT JOIN images i ON i.upload_id = j.id\n"

constexpr PgStatement kFindJob{"imgspool_find_job", IMGSPOOL_SELECT_JOBS "WHERE j.id = $1", 1};

// created_at has microseconds; the id only breaks ties of jobs made in the same instant.
constexpr PgStatement kUnfinished{"imgspool_unfinished",
                                  IMGSPOOL_SELECT_JOBS
                                  "WHERE j.status IN ('pending', 'processing')\n"
                                  "ORDER BY j.created_at, j.id",
                                  0};
#undef IMGSPOOL_SELECT_JOBS

constexpr PgStatement kStatusCounts{"imgspool_status_counts",
                                    "SELECT status, jobs FROM status_counts", 0};

constexpr PgStatement kJobsInFlight{"imgspool_jobs_in_flight", R"sql(
SELECT id, spool, source_name, status, progress, imgspool_iso(created_at),
       imgspool_iso(updated_at), age_s
FROM jobs_in_flight)sql",
                                    0};

constexpr PgStatement kFailuresToday{"imgspool_failures_today", R"sql(
SELECT id, spool, source_name, stage, reason, imgspool_iso(failed_at) FROM failures_today)sql",
                                     0};

constexpr PgStatement kThroughput{"imgspool_throughput_per_hour", R"sql(
SELECT hour, completed, failed, avg_duration_ms FROM throughput_per_hour LIMIT $1::bigint)sql",
                                  1};

constexpr PgStatement kCacheHitRate{"imgspool_cache_hit_rate",
                                    "SELECT hits, misses, hit_rate_pct FROM cache_hit_rate", 0};

constexpr PgStatement kJobsDeferred{"imgspool_jobs_deferred", R"sql(
SELECT id, spool, source_name, attempts, imgspool_iso(next_attempt_at), last_error
FROM jobs_deferred)sql",
                                    0};

constexpr PgStatement kWaitingFiles{"imgspool_waiting_files", R"sql(
SELECT spool, source_name, size, reason, imgspool_iso(since) FROM waiting_files ORDER BY since)sql",
                                    0};

constexpr PgStatement kClearWaitingFiles{"imgspool_clear_waiting_files",
                                         "DELETE FROM waiting_files", 0};

constexpr PgStatement kInsertWaitingFile{"imgspool_insert_waiting_file", R"sql(
INSERT INTO waiting_files (spool, source_name, size, reason, since)
VALUES ($1, $2, $3::bigint, $4, $5::timestamptz)
ON CONFLICT (spool, source_name) DO UPDATE
SET size = excluded.size, reason = excluded.reason, since = excluded.since)sql",
                                         5};

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

// Why an update guarded by its status changed no row, in SqliteJobDb's words.
Error refusal(Connection& conn, const std::string& upload_id, std::string_view what) {
    const std::string prefix = "cannot " + std::string(what) + " for upload " + upload_id + ": ";
    auto status = conn.exec(kStatusOf, Params().text(upload_id));
    if (!status) return status.error();
    if (rows(*status) == 0)
        return make_error(Stage::commit, prefix + "no such job in the database");
    return make_error(Stage::commit, prefix + "the job is already " + value(*status, 0, 0));
}

// Runs a guarded UPDATE … RETURNING on conn: its result, or refusal() when it changed no row.
Result<PgResult> update_unfinished(Connection& conn, const PgStatement& stmt, const Params& params,
                                   const std::string& upload_id, std::string_view what) {
    auto result = conn.exec(stmt, params);
    if (!result) return result.error();
    if (rows(*result) == 0) return refusal(conn, upload_id, what);
    return result;
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

PgJobDb::PgJobDb(std::unique_ptr<ConnectionPool> pool, std::string description)
    : pool_(std::move(pool)), description_(std::move(description)) {}

Result<std::unique_ptr<PgJobDb>> PgJobDb::open(const DatabaseSettings& settings, int pool_size,
                                               std::string node_name) {
    std::string description = "postgresql " + describe_database(settings.url);
    auto pool = ConnectionPool::open(settings, std::max(pool_size, 1), "imgspool/" + node_name);
    if (!pool) return pool.error();
    auto migrated =
        (*pool)->run([&](Connection& conn) -> Status { return migrate(conn, description); });
    if (!migrated) return migrated.error();
    return std::unique_ptr<PgJobDb>(new PgJobDb(std::move(*pool), std::move(description)));
}

std::string PgJobDb::describe() const {
    return description_;
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
    return pool_->run([&](Connection& conn) -> Status {
        auto result = conn.exec(kInsertJob, params);
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::forget_unclaimed(const std::string& upload_id) {
    return pool_->run([&](Connection& conn) -> Status {
        auto result = conn.exec(kForgetUnclaimed, Params().text(upload_id));
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::start_attempt(const std::string& upload_id) {
    return pool_->run([&](Connection& conn) -> Status {
        auto result = update_unfinished(conn, kStartAttempt, Params().text(upload_id), upload_id,
                                        "mark the job processing");
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
        .text(std::string(stage_name(error.stage)) + ": " + printable_name(error.reason))
        .integer(delay_ms);
    return pool_->run([&](Connection& conn) -> Status {
        auto result = update_unfinished(conn, kDefer, params, upload_id, "defer the job");
        if (!result) return result.error();
        return ok_status();
    });
}

Result<int> PgJobDb::record_crash(const std::string& upload_id) {
    return pool_->run([&](Connection& conn) -> Result<int> {
        auto result = update_unfinished(conn, kRecordCrash, Params().text(upload_id), upload_id,
                                        "count the crash");
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
        auto result =
            update_unfinished(conn, kSetProgress, Params().text(upload_id).integer(progress),
                              upload_id, "record progress");
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::set_request(const std::string& upload_id, const JobRequest& request) {
    if (auto st = check_pg_metadata(upload_id, request.metadata_json); !st) return st;
    Params params;
    params.text(upload_id);
    request_params(params, request);
    optional_name(params, request.profile);  // NULL keeps the job's profile
    return pool_->run([&](Connection& conn) -> Status {
        auto result = update_unfinished(conn, kSetRequest, params, upload_id, "record the request");
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::set_source(const std::string& upload_id, const std::string& source_hash,
                           std::uint64_t original_size, int width, int height,
                           const std::string& format) {
    Params params;
    params.text(upload_id)
        .text(source_hash)
        .integer(static_cast<std::int64_t>(original_size))
        .integer(width)
        .integer(height)
        .text(printable_name(format));
    return pool_->run([&](Connection& conn) -> Status {
        auto result = update_unfinished(conn, kSetSource, params, upload_id, "record the source");
        if (!result) return result.error();
        return ok_status();
    });
}

Status PgJobDb::complete(const std::string& upload_id, const std::vector<StoredVariant>& outputs,
                         const std::string& cache_fingerprint, bool cache_hit,
                         std::int64_t duration_ms) {
    const std::string outputs_json = variants_to_json(outputs);
    const std::string urls_json = variant_urls_json(outputs);
    std::uint64_t total_bytes = 0;
    for (const auto& v : outputs) total_bytes += v.bytes;

    return pool_->run([&](Connection& conn) -> Status {
        Transaction tx(conn);
        if (auto st = tx.begin(); !st) return st;
        auto job = update_unfinished(
            conn, kComplete, Params().text(upload_id).boolean(cache_hit).integer(duration_ms),
            upload_id, "record the job complete");
        if (!job) return job.error();
        const std::string source_hash = value(*job, 0, 0);

        auto image = conn.exec(kInsertImage, Params()
                                                 .text(upload_id)
                                                 .text(urls_json)
                                                 .text(outputs_json)
                                                 .integer(static_cast<std::int64_t>(total_bytes)));
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
                                                     .text(upload_id));
            if (!cache) return cache.error();
        }
        return tx.commit();
    });
}

Status PgJobDb::fail(const std::string& upload_id, const Error& error) {
    Params params;
    params.text(upload_id).text(printable_name(error.reason)).text(stage_name(error.stage));
    return pool_->run([&](Connection& conn) -> Status {
        auto result = update_unfinished(conn, kFail, params, upload_id, "record the failure");
        if (!result) return result.error();
        return ok_status();
    });
}

Result<std::optional<std::vector<StoredVariant>>> PgJobDb::cache_lookup(
    const std::string& source_hash, const std::string& fingerprint) {
    using Found = std::optional<std::vector<StoredVariant>>;
    return pool_->run([&](Connection& conn) -> Result<Found> {
        auto result = conn.exec(kCacheLookup, Params().text(source_hash).text(fingerprint));
        if (!result) return result.error();
        if (rows(*result) == 0) return Found{};
        auto variants = variants_from_json(value(*result, 0, 0));
        if (!variants) return variants.error();
        return Found{std::move(*variants)};
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
        auto result = conn.exec(kUnfinished);
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
                                                           int64(r, row, 7)};
                                    });
}

Result<std::vector<FailedJob>> PgJobDb::failures_today() {
    return select_rows<FailedJob>(
        *pool_, "failures_today", kFailuresToday, Params(), [](const PgResult& r, int row) {
            return FailedJob{value(r, row, 0), value(r, row, 1), value(r, row, 2),
                             value(r, row, 3), value(r, row, 4), value(r, row, 5)};
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
                               value(r, row, 4), value(r, row, 5)};
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
        if (auto cleared = conn.exec(kClearWaitingFiles); !cleared) return cleared.error();
        for (const WaitingFile& f : files) {
            auto inserted =
                conn.exec(kInsertWaitingFile, Params()
                                                  .text(printable_name(f.spool))
                                                  .text(printable_name(f.source_name))
                                                  .integer(static_cast<std::int64_t>(f.size))
                                                  .text(printable_name(f.reason))
                                                  .text(f.since));
            if (!inserted) return inserted.error();
        }
        return tx.commit();
    });
}

}  // namespace imgspool::pg
