#include "store/sqlite_job_db.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <string_view>

#include "common/fs.hpp"
#include "common/printable_name.hpp"
#include "store/sqlite_handles.hpp"
#include "store/sqlite_job_db_schema.hpp"
#include "store/variant_json.hpp"

namespace imgspool {

namespace {

using sqlite::Statement;

// Every row of upload_jobs with the outputs of its images row (NULL unless complete).
constexpr std::string_view kSelectJobs = R"sql(
SELECT j.id, j.spool, j.source_name, j.source_hash, j.status, j.progress, j.error,
       j.error_stage, j.original_size, j.width, j.height, j.format, j.profile, j.created_at,
       j.updated_at, j.completed_at, j.cache_hit, j.duration_ms, i.outputs, j.attempts,
       j.crashes, j.next_attempt_at, j.last_error, j.origin, j.source_url, j.user_id, j.tool,
       j.ref, j.metadata, j.client_name
FROM upload_jobs j LEFT JOIN images i ON i.upload_id = j.id
)sql";

Result<JobRecord> read_job(const Statement& row) {
    JobRecord job;
    job.upload_id = row.text(0);
    job.spool = row.text(1);
    job.source_name = row.text(2);
    job.source_hash = row.text(3);
    job.status = row.text(4);
    job.progress = static_cast<int>(row.int64(5));
    job.error = row.text(6);
    job.error_stage = row.text(7);
    job.original_size = static_cast<std::uint64_t>(row.int64(8));
    job.width = static_cast<int>(row.int64(9));
    job.height = static_cast<int>(row.int64(10));
    job.format = row.text(11);
    job.profile = row.text(12);
    job.created_at = row.text(13);
    job.updated_at = row.text(14);
    job.completed_at = row.text(15);
    job.cache_hit = row.int64(16) != 0;
    job.duration_ms = row.int64(17);
    job.attempts = static_cast<int>(row.int64(19));
    job.crashes = static_cast<int>(row.int64(20));
    job.next_attempt_at = row.text(21);
    job.last_error = row.text(22);
    job.request.origin = row.text(23);
    job.request.source_url = row.text(24);
    job.request.user_id = row.text(25);
    job.request.tool = row.text(26);
    job.request.ref = row.text(27);
    job.request.metadata_json = row.text(28);
    job.request.client_name = row.text(29);
    job.request.profile = job.profile;
    if (std::string outputs = row.text(18); !outputs.empty()) {
        auto variants = variants_from_json(outputs);
        if (!variants) return variants.error();
        job.outputs = std::move(*variants);
    }
    return job;
}

Result<std::vector<JobRecord>> select_jobs(sqlite3* db, std::string_view where,
                                           const std::function<void(Statement&)>& bind) {
    auto stmt = Statement::prepare(db, std::string(kSelectJobs) + std::string(where));
    if (!stmt) return stmt.error();
    bind(*stmt);
    std::vector<JobRecord> jobs;
    for (;;) {
        auto row = stmt->step();
        if (!row) return row.error();
        if (!*row) return jobs;
        auto job = read_job(*stmt);
        if (!job) return job.error();
        jobs.push_back(std::move(*job));
    }
}

// "" is NULL: a drop has no source URL, a manifest need not name a user.
void bind_optional(Statement& stmt, int index, std::string_view text) {
    if (text.empty())
        stmt.bind_null(index);
    else
        stmt.bind(index, printable_name(text));
}

// Binds ?first.. ?first+6 to origin, source_url, user_id, tool, ref, metadata, client_name.
void bind_request(Statement& stmt, int first, const JobRequest& request) {
    stmt.bind(first, request.origin);
    bind_optional(stmt, first + 1, request.source_url);
    bind_optional(stmt, first + 2, request.user_id);
    bind_optional(stmt, first + 3, request.tool);
    bind_optional(stmt, first + 4, request.ref);
    if (request.metadata_json.empty())
        stmt.bind_null(first + 5);
    else
        stmt.bind(first + 5, request.metadata_json);  // checked JSON: no byte to replace
    bind_optional(stmt, first + 6, request.client_name);
}

// Why an update guarded by "status <> 'complete'" changed no row.
Error refusal(sqlite3* db, const std::string& upload_id, std::string_view what) {
    std::string prefix = "cannot " + std::string(what) + " for upload " + upload_id + ": ";
    auto stmt = Statement::prepare(db, "SELECT status FROM upload_jobs WHERE id = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return make_error(Stage::commit, prefix + "no such job in the database");
    return make_error(Stage::commit, prefix + "the job is already " + stmt->text(0));
}

// Runs an UPDATE whose ?1 is the upload id and whose WHERE refuses complete jobs.
Status update_unfinished(sqlite3* db, std::string_view sql, const std::string& upload_id,
                         std::string_view what, const std::function<void(Statement&)>& bind) {
    auto stmt = Statement::prepare(db, sql);
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    bind(*stmt);
    if (auto st = stmt->run(); !st) return st;
    if (stmt->changes() == 0) return refusal(db, upload_id, what);
    return ok_status();
}

Status migrate(sqlite3* db, const std::filesystem::path& file) {
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    auto stmt = Statement::prepare(db, "PRAGMA user_version");
    if (!stmt) return stmt.error();
    auto row = stmt->step();
    if (!row) return row.error();
    auto version = static_cast<int>(stmt->int64(0));
    auto migrations = sqlite_job_db_migrations();
    if (version > static_cast<int>(migrations.size())) {
        return make_error(Stage::commit,
                          "database schema version " + std::to_string(version) +
                              " is newer than this imgspool understands (" +
                              std::to_string(migrations.size()) + "); upgrade imgspool",
                          file.string());
    }
    for (auto v = static_cast<size_t>(version); v < migrations.size(); ++v) {
        if (auto st = sqlite::exec(db, migrations[v]); !st) return st;
        // The version is ours, not user input: a pragma takes no bound parameters.
        std::string set = "PRAGMA user_version = " + std::to_string(v + 1);
        if (auto st = sqlite::exec(db, set.c_str()); !st) return st;
    }
    return tx->commit();
}

Status configure(sqlite3* db) {
    if (sqlite3_extended_result_codes(db, 1) != SQLITE_OK ||
        sqlite3_busy_timeout(db, 5000) != SQLITE_OK) {
        return sqlite::error(db, "configuring the connection");
    }
    auto mode = Statement::prepare(db, "PRAGMA journal_mode = WAL");
    if (!mode) return mode.error();
    auto row = mode->step();
    if (!row) return row.error();
    if (!*row || mode->text(0) != "wal") {
        return make_error(Stage::commit, "database refused WAL mode (journal_mode is " +
                                             mode->text(0) +
                                             "); put the state directory on a local file system");
    }
    if (auto st = sqlite::exec(db, "PRAGMA synchronous = NORMAL"); !st) return st;
    return sqlite::exec(db, "PRAGMA foreign_keys = ON");
}

// Runs a SELECT and turns each row into a T; an error names the view it read.
template <typename T>
Result<std::vector<T>> select_rows(sqlite3* db, std::string_view view, std::string_view sql,
                                   const std::function<T(const Statement&)>& read) {
    auto stmt = Statement::prepare(db, sql);
    if (!stmt)
        return make_error(Stage::commit,
                          "reading " + std::string(view) + ": " + stmt.error().reason);
    std::vector<T> rows;
    for (;;) {
        auto row = stmt->step();
        if (!row) {
            return make_error(Stage::commit,
                              "reading " + std::string(view) + ": " + row.error().reason);
        }
        if (!*row) return rows;
        rows.push_back(read(*stmt));
    }
}

}  // namespace

void SqliteJobDb::Closer::operator()(sqlite3* db) const {
    sqlite3_close(db);
}

SqliteJobDb::SqliteJobDb(Handle db, std::filesystem::path file)
    : db_(std::move(db)), file_(std::move(file)) {}

SqliteJobDb::~SqliteJobDb() = default;

std::string SqliteJobDb::describe() const {
    return "sqlite " + file_.string();
}

Result<std::unique_ptr<SqliteJobDb>> SqliteJobDb::open(const std::filesystem::path& file) {
    if (file.has_parent_path()) {
        if (auto st = fs::make_dirs(file.parent_path()); !st) return st.error();
    }
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    Handle db(raw);  // sqlite3_open_v2 may hand out a handle even when it fails
    if (rc != SQLITE_OK) {
        std::string reason = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
        return make_error(Stage::commit, "cannot open database: " + reason, file.string());
    }
    if (auto st = configure(db.get()); !st) {
        return make_error(Stage::commit, st.error().reason, file.string());
    }
    if (auto st = migrate(db.get(), file); !st) return st.error();
    return std::unique_ptr<SqliteJobDb>(new SqliteJobDb(std::move(db), file));
}

Status SqliteJobDb::insert_job(const std::string& upload_id, const std::string& spool,
                               const std::string& source_name, const std::string& profile,
                               const JobRequest& request) {
    if (auto st = check_metadata(upload_id, request.metadata_json); !st) return st;
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        INSERT INTO upload_jobs (id, spool, source_name, profile, origin, source_url, user_id,
                                 tool, ref, metadata, client_name)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
        ON CONFLICT (id) DO NOTHING)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    stmt->bind(2, spool);
    stmt->bind(3, source_name);
    stmt->bind(4, request.profile.empty() ? profile : request.profile);
    bind_request(*stmt, 5, request);
    return stmt->run();
}

Status SqliteJobDb::forget_unclaimed(const std::string& upload_id) {
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        DELETE FROM upload_jobs WHERE id = ?1 AND status = 'pending' AND attempts = 0)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    return stmt->run();
}

Status SqliteJobDb::start_attempt(const std::string& upload_id) {
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), R"sql(
        UPDATE upload_jobs SET status = 'processing', error = NULL, error_stage = NULL,
               attempts = attempts + 1, next_attempt_at = NULL,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND status <> 'complete')sql",
                             upload_id, "mark the job processing", [](Statement&) {});
}

Status SqliteJobDb::defer(const std::string& upload_id, const Error& error,
                          std::chrono::system_clock::time_point next_attempt) {
    std::lock_guard lock(mutex_);
    return update_unfinished(
        db_.get(), R"sql(
        UPDATE upload_jobs SET status = 'pending', last_error = ?2, next_attempt_at = ?3,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND status <> 'complete')sql",
        upload_id, "defer the job", [&](Statement& s) {
            s.bind(2, std::string(stage_name(error.stage)) + ": " + printable_name(error.reason));
            s.bind(3, iso_utc(next_attempt));
        });
}

Result<int> SqliteJobDb::record_crash(const std::string& upload_id) {
    std::lock_guard lock(mutex_);
    auto st = update_unfinished(db_.get(), R"sql(
        UPDATE upload_jobs SET status = 'pending', crashes = crashes + 1,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND status = 'processing')sql",
                                upload_id, "count the crash", [](Statement&) {});
    if (!st) return st.error();
    auto stmt = Statement::prepare(db_.get(), "SELECT crashes FROM upload_jobs WHERE id = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    auto row = stmt->step();
    if (!row) return row.error();
    return static_cast<int>(stmt->int64(0));
}

Status SqliteJobDb::set_progress(const std::string& upload_id, int progress) {
    if (progress < 0 || progress > 100) {
        return make_error(Stage::commit, "progress of upload " + upload_id +
                                             " must be 0-100, not " + std::to_string(progress));
    }
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), R"sql(
        UPDATE upload_jobs SET progress = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND status <> 'complete')sql",
                             upload_id, "record progress",
                             [&](Statement& s) { s.bind(2, std::int64_t{progress}); });
}

Status SqliteJobDb::set_request(const std::string& upload_id, const JobRequest& request) {
    if (auto st = check_metadata(upload_id, request.metadata_json); !st) return st;
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), R"sql(
        UPDATE upload_jobs SET origin = ?2, source_url = ?3, user_id = ?4, tool = ?5, ref = ?6,
               metadata = ?7, client_name = ?8, profile = coalesce(?9, profile),
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND status <> 'complete')sql",
                             upload_id, "record the request", [&](Statement& s) {
                                 bind_request(s, 2, request);
                                 if (request.profile.empty())
                                     s.bind_null(9);
                                 else
                                     s.bind(9, request.profile);
                             });
}

Status SqliteJobDb::set_source(const std::string& upload_id, const std::string& source_hash,
                               std::uint64_t original_size, int width, int height,
                               const std::string& format) {
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), R"sql(
        UPDATE upload_jobs SET source_hash = ?2, original_size = ?3, width = ?4, height = ?5,
               format = ?6, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND status <> 'complete')sql",
                             upload_id, "record the source", [&](Statement& s) {
                                 s.bind(2, source_hash);
                                 s.bind(3, static_cast<std::int64_t>(original_size));
                                 s.bind(4, std::int64_t{width});
                                 s.bind(5, std::int64_t{height});
                                 s.bind(6, format);
                             });
}

Status SqliteJobDb::complete(const std::string& upload_id,
                             const std::vector<StoredVariant>& outputs,
                             const std::string& cache_fingerprint, bool cache_hit,
                             std::int64_t duration_ms) {
    std::string outputs_json = variants_to_json(outputs);
    std::uint64_t total_bytes = 0;
    for (const auto& v : outputs) total_bytes += v.bytes;

    std::lock_guard lock(mutex_);
    sqlite3* db = db_.get();
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    auto st = update_unfinished(db, R"sql(
        UPDATE upload_jobs SET status = 'complete', progress = 100, error = NULL,
               error_stage = NULL, cache_hit = ?2, duration_ms = ?3,
               completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND status <> 'complete')sql",
                                upload_id, "record the job complete", [&](Statement& s) {
                                    s.bind(2, std::int64_t{cache_hit ? 1 : 0});
                                    s.bind(3, duration_ms);
                                });
    if (!st) return st;

    auto image = Statement::prepare(db, R"sql(
        INSERT INTO images (upload_id, urls, outputs, total_bytes) VALUES (?1, ?2, ?3, ?4))sql");
    if (!image) return image.error();
    image->bind(1, upload_id);
    image->bind(2, variant_urls_json(outputs));
    image->bind(3, outputs_json);
    image->bind(4, static_cast<std::int64_t>(total_bytes));
    if (auto ran = image->run(); !ran) return ran;

    if (!cache_fingerprint.empty() && !cache_hit) {
        // The source hash is checked first: a row that is already there (the same bytes
        // rendered by another job meanwhile) also changes nothing, and then the first set
        // stored stands, as on PostgreSQL.
        auto hashed = Statement::prepare(db, R"sql(
            SELECT 1 FROM upload_jobs WHERE id = ?1 AND coalesce(source_hash, '') <> '')sql");
        if (!hashed) return hashed.error();
        hashed->bind(1, upload_id);
        auto row = hashed->step();
        if (!row) return row.error();
        if (!*row) {
            return make_error(Stage::commit, "cannot cache the outputs of upload " + upload_id +
                                                 ": its source hash was never recorded");
        }
        auto cache = Statement::prepare(db, R"sql(
            INSERT INTO derivative_cache (source_hash, profile_fingerprint, outputs, upload_id)
            SELECT source_hash, ?2, ?3, id FROM upload_jobs WHERE id = ?1
            ON CONFLICT (source_hash, profile_fingerprint) DO NOTHING)sql");
        if (!cache) return cache.error();
        cache->bind(1, upload_id);
        cache->bind(2, cache_fingerprint);
        cache->bind(3, outputs_json);
        if (auto ran = cache->run(); !ran) return ran;
    }
    return tx->commit();
}

Status SqliteJobDb::fail(const std::string& upload_id, const Error& error) {
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), R"sql(
        UPDATE upload_jobs SET status = 'failed', error = ?2, error_stage = ?3,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND status <> 'complete')sql",
                             upload_id, "record the failure", [&](Statement& s) {
                                 s.bind(2, printable_name(error.reason));
                                 s.bind(3, std::string_view(stage_name(error.stage)));
                             });
}

Result<std::optional<std::vector<StoredVariant>>> SqliteJobDb::cache_lookup(
    const std::string& source_hash, const std::string& fingerprint) {
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        SELECT outputs FROM derivative_cache
        WHERE source_hash = ?1 AND profile_fingerprint = ?2)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, source_hash);
    stmt->bind(2, fingerprint);
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return std::optional<std::vector<StoredVariant>>();
    auto variants = variants_from_json(stmt->text(0));
    if (!variants) return variants.error();
    return std::optional(std::move(*variants));
}

Result<std::optional<JobRecord>> SqliteJobDb::find(const std::string& upload_id) {
    std::lock_guard lock(mutex_);
    auto jobs =
        select_jobs(db_.get(), "WHERE j.id = ?1", [&](Statement& s) { s.bind(1, upload_id); });
    if (!jobs) return jobs.error();
    if (jobs->empty()) return std::optional<JobRecord>();
    return std::optional(std::move(jobs->front()));
}

Result<std::map<std::string, std::int64_t>> SqliteJobDb::counts_by_status() {
    std::map<std::string, std::int64_t> counts{
        {"waiting", 0}, {"pending", 0}, {"processing", 0}, {"complete", 0}, {"failed", 0}};
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), "SELECT status, jobs FROM status_counts");
    if (!stmt) return stmt.error();
    for (;;) {
        auto row = stmt->step();
        if (!row) return row.error();
        if (!*row) return counts;
        counts[stmt->text(0)] = stmt->int64(1);
    }
}

Result<std::vector<JobRecord>> SqliteJobDb::unfinished() {
    std::lock_guard lock(mutex_);
    return select_jobs(db_.get(),
                       "WHERE j.status IN ('pending', 'processing') "
                       "ORDER BY j.created_at, j.rowid",
                       [](Statement&) {});
}

Result<std::vector<InFlightJob>> SqliteJobDb::jobs_in_flight() {
    std::lock_guard lock(mutex_);
    return select_rows<InFlightJob>(
        db_.get(), "jobs_in_flight",
        "SELECT id, spool, source_name, status, progress, created_at, updated_at, age_s "
        "FROM jobs_in_flight",
        [](const Statement& s) {
            return InFlightJob{
                s.text(0), s.text(1), s.text(2), s.text(3), static_cast<int>(s.int64(4)),
                s.text(5), s.text(6), s.int64(7)};
        });
}

Result<std::vector<FailedJob>> SqliteJobDb::failures_today() {
    std::lock_guard lock(mutex_);
    return select_rows<FailedJob>(
        db_.get(), "failures_today",
        "SELECT id, spool, source_name, stage, reason, failed_at FROM failures_today",
        [](const Statement& s) {
            return FailedJob{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5)};
        });
}

Result<std::vector<HourThroughput>> SqliteJobDb::throughput_per_hour(int hours) {
    std::lock_guard lock(mutex_);
    return select_rows<HourThroughput>(
        db_.get(), "throughput_per_hour",
        "SELECT hour, completed, failed, avg_duration_ms FROM throughput_per_hour LIMIT " +
            std::to_string(std::max(hours, 0)),
        [](const Statement& s) {
            HourThroughput h{s.text(0), s.int64(1), s.int64(2), std::nullopt};
            if (!s.text(3).empty()) h.avg_duration_ms = s.int64(3);  // NULL reads as ""
            return h;
        });
}

Result<std::vector<DeferredJob>> SqliteJobDb::jobs_deferred() {
    std::lock_guard lock(mutex_);
    return select_rows<DeferredJob>(
        db_.get(), "jobs_deferred",
        "SELECT id, spool, source_name, attempts, next_attempt_at, last_error FROM jobs_deferred",
        [](const Statement& s) {
            return DeferredJob{s.text(0), s.text(1), s.text(2), static_cast<int>(s.int64(3)),
                               s.text(4), s.text(5)};
        });
}

Result<std::vector<WaitingFile>> SqliteJobDb::waiting_files() {
    std::lock_guard lock(mutex_);
    return select_rows<WaitingFile>(
        db_.get(), "waiting_files",
        "SELECT spool, source_name, size, reason, since FROM waiting_files ORDER BY since",
        [](const Statement& s) {
            return WaitingFile{s.text(0), s.text(1), static_cast<std::uint64_t>(s.int64(2)),
                               s.text(3), s.text(4)};
        });
}

Status SqliteJobDb::replace_waiting_files(const std::vector<WaitingFile>& files) {
    std::lock_guard lock(mutex_);
    sqlite3* db = db_.get();
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    if (auto st = sqlite::exec(db, "DELETE FROM waiting_files"); !st) return st;
    for (const WaitingFile& f : files) {
        auto stmt = Statement::prepare(db, R"sql(
            INSERT OR REPLACE INTO waiting_files (spool, source_name, size, reason, since)
            VALUES (?1, ?2, ?3, ?4, ?5))sql");
        if (!stmt) return stmt.error();
        stmt->bind(1, f.spool);
        stmt->bind(2, f.source_name);
        stmt->bind(3, static_cast<std::int64_t>(f.size));
        stmt->bind(4, f.reason);
        stmt->bind(5, f.since);
        if (auto st = stmt->run(); !st) return st;
    }
    return tx->commit();
}

Result<CacheHitRate> SqliteJobDb::cache_hit_rate() {
    std::lock_guard lock(mutex_);
    auto rows = select_rows<CacheHitRate>(
        db_.get(), "cache_hit_rate", "SELECT hits, misses, hit_rate_pct FROM cache_hit_rate",
        [](const Statement& s) {
            return CacheHitRate{s.int64(0), s.int64(1), std::stod(s.text(2))};
        });
    if (!rows) return rows.error();
    if (rows->size() != 1) return make_error(Stage::commit, "reading cache_hit_rate: no row");
    return rows->front();
}

}  // namespace imgspool
