#include "store/sqlite_job_db.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

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
       j.ref, j.metadata, j.client_name, j.node, j.adopted_from, i.blurhash, i.lqip
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
    job.node = row.text(30);
    job.adopted_from = row.text(31);
    job.placeholders = {row.text(32), row.text(33)};
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

// Who owns a job, when it exists.
struct Owner {
    std::string status, node, adopted_from;
};

Result<std::optional<Owner>> owner_of(sqlite3* db, const std::string& upload_id) {
    auto stmt =
        Statement::prepare(db, "SELECT status, node, adopted_from FROM upload_jobs WHERE id = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return std::optional<Owner>();
    return std::optional(Owner{stmt->text(0), stmt->text(1), stmt->text(2)});
}

// Why an update guarded by "node = me AND status <> 'complete'" changed no row: the job is
// another node's (checked first, whatever its status), unknown, or finished.
Error refusal(sqlite3* db, const std::string& node, const std::string& upload_id,
              std::string_view what) {
    std::string prefix = "cannot " + std::string(what) + " for upload " + upload_id + ": ";
    auto owner = owner_of(db, upload_id);
    if (!owner) return owner.error();
    if (!*owner) return make_error(Stage::commit, prefix + "no such job in the database");
    if ((*owner)->node != node) {
        return make_error(Stage::lease, prefix + owned_by((*owner)->node, (*owner)->adopted_from));
    }
    return make_error(Stage::commit, prefix + "the job is already " + (*owner)->status);
}

// Runs an UPDATE whose ?1 is the upload id, ?2 this node, and whose WHERE refuses other nodes'
// and complete jobs.
Status update_unfinished(sqlite3* db, const std::string& node, std::string_view sql,
                         const std::string& upload_id, std::string_view what,
                         const std::function<void(Statement&)>& bind) {
    auto stmt = Statement::prepare(db, sql);
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    stmt->bind(2, node);
    bind(*stmt);
    if (auto st = stmt->run(); !st) return st;
    if (stmt->changes() == 0) return refusal(db, node, upload_id, what);
    return ok_status();
}

// Runs a statement with ?1 bound to `text`.
Status run_with(sqlite3* db, std::string_view sql, const std::string& text) {
    auto stmt = Statement::prepare(db, sql);
    if (!stmt) return stmt.error();
    stmt->bind(1, text);
    return stmt->run();
}

// Rows from before version 4 get the opening node's name.
Status name_unnamed_rows(sqlite3* db, const std::string& node) {
    if (auto st = run_with(db, "UPDATE upload_jobs SET node = ?1 WHERE node = ''", node); !st) {
        return st;
    }
    return run_with(db, "UPDATE waiting_files SET node = ?1 WHERE node = ''", node);
}

// One daemon per SQLite file (the state_dir lock), so when it registers, every unfinished job
// is its own: a renamed host must not strand its jobs. Waiting files of another name are a
// watcher's view nobody runs any more. (Done at registration, not at open: `imgspool status`
// or `process` opening the file under another name must not take the daemon's jobs.)
Status own_rows(sqlite3* db, const std::string& node) {
    if (auto st = run_with(db, R"sql(
        UPDATE upload_jobs SET node = ?1
        WHERE node <> ?1 AND status IN ('pending', 'processing'))sql",
                           node);
        !st) {
        return st;
    }
    return run_with(db, "DELETE FROM waiting_files WHERE node <> ?1", node);
}

Status migrate(sqlite3* db, const std::filesystem::path& file, const std::string& node) {
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    int version = 0;
    {  // finished before the migrations run: DROP TABLE refuses while a statement is active
        auto stmt = Statement::prepare(db, "PRAGMA user_version");
        if (!stmt) return stmt.error();
        auto row = stmt->step();
        if (!row) return row.error();
        version = static_cast<int>(stmt->int64(0));
    }
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
    if (auto st = name_unnamed_rows(db, node); !st) return st;
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

SqliteJobDb::SqliteJobDb(Handle db, std::filesystem::path file, std::string node)
    : db_(std::move(db)), file_(std::move(file)), node_(std::move(node)) {}

SqliteJobDb::~SqliteJobDb() = default;

std::string SqliteJobDb::describe() const {
    return "sqlite " + file_.string();
}

const std::string& SqliteJobDb::node() const {
    return node_;
}

Result<std::unique_ptr<SqliteJobDb>> SqliteJobDb::open(const std::filesystem::path& file,
                                                       const std::string& node) {
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
    if (auto st = migrate(db.get(), file, node); !st) return st.error();
    return std::unique_ptr<SqliteJobDb>(new SqliteJobDb(std::move(db), file, node));
}

Status SqliteJobDb::insert_job(const std::string& upload_id, const std::string& spool,
                               const std::string& source_name, const std::string& profile,
                               const JobRequest& request) {
    if (auto st = check_metadata(upload_id, request.metadata_json); !st) return st;
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        INSERT INTO upload_jobs (id, spool, source_name, profile, origin, source_url, user_id,
                                 tool, ref, metadata, client_name, node)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
        ON CONFLICT (id) DO NOTHING)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    stmt->bind(2, spool);
    stmt->bind(3, source_name);
    stmt->bind(4, request.profile.empty() ? profile : request.profile);
    bind_request(*stmt, 5, request);
    stmt->bind(12, node_);
    return stmt->run();
}

Result<bool> SqliteJobDb::insert_claim(const std::string& upload_id, const std::string& spool,
                                       const std::string& source_name, const std::string& profile,
                                       const std::string& claim_key) {
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        INSERT INTO upload_jobs (id, spool, source_name, profile, node, claim_key)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        ON CONFLICT (spool, claim_key) WHERE claim_key IS NOT NULL DO NOTHING)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    stmt->bind(2, spool);
    stmt->bind(3, source_name);
    stmt->bind(4, profile);
    stmt->bind(5, node_);
    stmt->bind(6, claim_key);
    if (auto st = stmt->run(); !st) return st.error();
    return stmt->changes() == 1;
}

Status SqliteJobDb::forget_unclaimed(const std::string& upload_id) {
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        DELETE FROM upload_jobs
        WHERE id = ?1 AND node = ?2 AND status = 'pending' AND attempts = 0)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, upload_id);
    stmt->bind(2, node_);
    if (auto st = stmt->run(); !st) return st;
    if (stmt->changes() == 1) return ok_status();
    // Nothing to forget: gone or started is fine, another node's claim is not this node's to drop.
    auto owner = owner_of(db_.get(), upload_id);
    if (!owner) return owner.error();
    if (*owner && (*owner)->node != node_) {
        return make_error(Stage::lease, "cannot forget the unclaimed job " + upload_id + ": " +
                                            owned_by((*owner)->node, (*owner)->adopted_from));
    }
    return ok_status();
}

Status SqliteJobDb::start_attempt(const std::string& upload_id) {
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), node_, R"sql(
        UPDATE upload_jobs SET status = 'processing', error = NULL, error_stage = NULL,
               attempts = attempts + 1, next_attempt_at = NULL,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND node = ?2 AND status <> 'complete')sql",
                             upload_id, "mark the job processing", [](Statement&) {});
}

Status SqliteJobDb::defer(const std::string& upload_id, const Error& error,
                          std::chrono::system_clock::time_point next_attempt) {
    std::lock_guard lock(mutex_);
    return update_unfinished(
        db_.get(), node_, R"sql(
        UPDATE upload_jobs SET status = 'pending', last_error = ?3, next_attempt_at = ?4,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND node = ?2 AND status <> 'complete')sql",
        upload_id, "defer the job", [&](Statement& s) {
            s.bind(3, std::string(stage_name(error.stage)) + ": " + printable_name(error.reason));
            s.bind(4, iso_utc(next_attempt));
        });
}

Result<int> SqliteJobDb::record_crash(const std::string& upload_id) {
    std::lock_guard lock(mutex_);
    auto st = update_unfinished(db_.get(), node_, R"sql(
        UPDATE upload_jobs SET status = 'pending', crashes = crashes + 1,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND node = ?2 AND status = 'processing')sql",
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
    return update_unfinished(db_.get(), node_, R"sql(
        UPDATE upload_jobs SET progress = ?3, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND node = ?2 AND status <> 'complete')sql",
                             upload_id, "record progress",
                             [&](Statement& s) { s.bind(3, std::int64_t{progress}); });
}

Status SqliteJobDb::set_request(const std::string& upload_id, const JobRequest& request) {
    if (auto st = check_metadata(upload_id, request.metadata_json); !st) return st;
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), node_, R"sql(
        UPDATE upload_jobs SET origin = ?3, source_url = ?4, user_id = ?5, tool = ?6, ref = ?7,
               metadata = ?8, client_name = ?9, profile = coalesce(?10, profile),
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND node = ?2 AND status <> 'complete')sql",
                             upload_id, "record the request", [&](Statement& s) {
                                 bind_request(s, 3, request);
                                 if (request.profile.empty())
                                     s.bind_null(10);
                                 else
                                     s.bind(10, request.profile);
                             });
}

Status SqliteJobDb::set_source(const std::string& upload_id, const std::string& source_hash,
                               std::uint64_t original_size, int width, int height,
                               const std::string& format) {
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), node_, R"sql(
        UPDATE upload_jobs SET source_hash = ?3, original_size = ?4, width = ?5, height = ?6,
               format = ?7, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND node = ?2 AND status <> 'complete')sql",
                             upload_id, "record the source", [&](Statement& s) {
                                 s.bind(3, source_hash);
                                 s.bind(4, static_cast<std::int64_t>(original_size));
                                 s.bind(5, std::int64_t{width});
                                 s.bind(6, std::int64_t{height});
                                 s.bind(7, format);
                             });
}

Status SqliteJobDb::complete(const std::string& upload_id,
                             const std::vector<StoredVariant>& outputs,
                             const std::string& cache_fingerprint, bool cache_hit,
                             std::int64_t duration_ms, const Placeholders& placeholders) {
    std::string outputs_json = variants_to_json(outputs);
    std::uint64_t total_bytes = 0;
    for (const auto& v : outputs) total_bytes += v.bytes;

    std::lock_guard lock(mutex_);
    sqlite3* db = db_.get();
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    auto st = update_unfinished(db, node_, R"sql(
        UPDATE upload_jobs SET status = 'complete', progress = 100, error = NULL,
               error_stage = NULL, cache_hit = ?3, duration_ms = ?4,
               completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND node = ?2 AND status <> 'complete')sql",
                                upload_id, "record the job complete", [&](Statement& s) {
                                    s.bind(3, std::int64_t{cache_hit ? 1 : 0});
                                    s.bind(4, duration_ms);
                                });
    if (!st) return st;

    auto image = Statement::prepare(db, R"sql(
        INSERT INTO images (upload_id, urls, outputs, total_bytes, blurhash, lqip)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql");
    if (!image) return image.error();
    image->bind(1, upload_id);
    image->bind(2, variant_urls_json(outputs));
    image->bind(3, outputs_json);
    image->bind(4, static_cast<std::int64_t>(total_bytes));
    bind_optional(*image, 5, placeholders.blurhash);
    bind_optional(*image, 6, placeholders.lqip);
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
            INSERT INTO derivative_cache (source_hash, profile_fingerprint, outputs, upload_id,
                                          blurhash, lqip)
            SELECT source_hash, ?2, ?3, id, ?4, ?5 FROM upload_jobs WHERE id = ?1
            ON CONFLICT (source_hash, profile_fingerprint) DO NOTHING)sql");
        if (!cache) return cache.error();
        cache->bind(1, upload_id);
        cache->bind(2, cache_fingerprint);
        cache->bind(3, outputs_json);
        bind_optional(*cache, 4, placeholders.blurhash);
        bind_optional(*cache, 5, placeholders.lqip);
        if (auto ran = cache->run(); !ran) return ran;
    }
    return tx->commit();
}

Status SqliteJobDb::fail(const std::string& upload_id, const Error& error) {
    std::lock_guard lock(mutex_);
    return update_unfinished(db_.get(), node_, R"sql(
        UPDATE upload_jobs SET status = 'failed', error = ?3, error_stage = ?4,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?1 AND node = ?2 AND status <> 'complete')sql",
                             upload_id, "record the failure", [&](Statement& s) {
                                 s.bind(3, printable_name(error.reason));
                                 s.bind(4, std::string_view(stage_name(error.stage)));
                             });
}

Result<std::optional<CachedSet>> SqliteJobDb::cache_lookup(const std::string& source_hash,
                                                           const std::string& fingerprint) {
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        SELECT outputs, blurhash, lqip FROM derivative_cache
        WHERE source_hash = ?1 AND profile_fingerprint = ?2)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, source_hash);
    stmt->bind(2, fingerprint);
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) return std::optional<CachedSet>();
    auto variants = variants_from_json(stmt->text(0));
    if (!variants) return variants.error();
    return std::optional(CachedSet{std::move(*variants), {stmt->text(1), stmt->text(2)}});
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
                       "WHERE j.node = ?1 AND j.status IN ('pending', 'processing') "
                       "ORDER BY j.created_at, j.rowid",
                       [&](Statement& s) { s.bind(1, node_); });
}

Result<std::vector<InFlightJob>> SqliteJobDb::jobs_in_flight() {
    std::lock_guard lock(mutex_);
    return select_rows<InFlightJob>(
        db_.get(), "jobs_in_flight",
        "SELECT id, spool, source_name, status, progress, created_at, updated_at, age_s, node "
        "FROM jobs_in_flight",
        [](const Statement& s) {
            return InFlightJob{
                s.text(0), s.text(1), s.text(2),  s.text(3), static_cast<int>(s.int64(4)),
                s.text(5), s.text(6), s.int64(7), s.text(8)};
        });
}

Result<std::vector<FailedJob>> SqliteJobDb::failures_today() {
    std::lock_guard lock(mutex_);
    return select_rows<FailedJob>(
        db_.get(), "failures_today",
        "SELECT id, spool, source_name, stage, reason, failed_at, node FROM failures_today",
        [](const Statement& s) {
            return FailedJob{s.text(0), s.text(1), s.text(2), s.text(3),
                             s.text(4), s.text(5), s.text(6)};
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
        "SELECT id, spool, source_name, attempts, next_attempt_at, last_error, node "
        "FROM jobs_deferred",
        [](const Statement& s) {
            return DeferredJob{s.text(0), s.text(1), s.text(2), static_cast<int>(s.int64(3)),
                               s.text(4), s.text(5), s.text(6)};
        });
}

Result<std::vector<WaitingFile>> SqliteJobDb::waiting_files() {
    std::lock_guard lock(mutex_);
    return select_rows<WaitingFile>(
        db_.get(), "waiting_files",
        // A file several nodes reported (a database moved from PostgreSQL, a renamed node) is
        // listed once, as it was first seen (SQLite takes the other columns from the min row).
        "SELECT spool, source_name, size, reason, min(since) FROM waiting_files "
        "GROUP BY spool, source_name ORDER BY 5",
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
    if (auto st = run_with(db, "DELETE FROM waiting_files WHERE node = ?1", node_); !st) return st;
    for (const WaitingFile& f : files) {
        auto stmt = Statement::prepare(db, R"sql(
            INSERT OR REPLACE INTO waiting_files (spool, source_name, size, reason, since, node)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql");
        if (!stmt) return stmt.error();
        stmt->bind(1, f.spool);
        stmt->bind(2, f.source_name);
        stmt->bind(3, static_cast<std::int64_t>(f.size));
        stmt->bind(4, f.reason);
        stmt->bind(5, f.since);
        stmt->bind(6, node_);
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

Status SqliteJobDb::register_node(const NodeRegistration& me) {
    std::lock_guard lock(mutex_);
    sqlite3* db = db_.get();
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    auto held = Statement::prepare(db, R"sql(
        SELECT host, state_dir, state, pid,
               heartbeat_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || lease_s || ' seconds'),
               CAST(round((julianday('now') - julianday(heartbeat_at)) * 86400) AS INTEGER)
        FROM nodes WHERE node = ?1)sql");
    if (!held) return held.error();
    held->bind(1, node_);
    auto row = held->step();
    if (!row) return row.error();
    if (*row) {
        NodeHolder holder{held->text(0),  held->text(1),       held->text(2),
                          held->int64(3), held->int64(4) != 0, held->int64(5)};
        if (auto st = may_take_node(node_, holder, me); !st) return st;
    }
    auto take = Statement::prepare(db, R"sql(
        INSERT INTO nodes (node, host, state_dir, instance, pid, version, workers, lease_s, state,
                           cache_scope)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'alive', ?9)
        ON CONFLICT (node) DO UPDATE SET
            host = excluded.host, state_dir = excluded.state_dir, instance = excluded.instance,
            pid = excluded.pid, version = excluded.version, workers = excluded.workers,
            lease_s = excluded.lease_s, state = 'alive', cache_scope = excluded.cache_scope,
            started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
            heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), in_flight = 0,
            queue_depth = 0)sql");
    if (!take) return take.error();
    take->bind(1, node_);
    take->bind(2, me.host);
    take->bind(3, me.state_dir);
    take->bind(4, me.instance);
    take->bind(5, me.pid);
    take->bind(6, me.version);
    take->bind(7, std::int64_t{me.workers});
    take->bind(8, std::int64_t{std::max(me.lease_s, 1)});
    take->bind(9, me.cache_scope);
    if (auto st = take->run(); !st) return st;
    if (auto st = own_rows(db, node_); !st) return st;
    if (auto st = tx->commit(); !st) return st;
    instance_ = me.instance;
    return ok_status();
}

// Why a write guarded by "node = me AND instance = mine" changed no row.
Error SqliteJobDb::taken_over(std::string_view what) {
    auto stmt =
        Statement::prepare(db_.get(), "SELECT instance, host, pid FROM nodes WHERE node = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, node_);
    auto row = stmt->step();
    if (!row) return row.error();
    std::string prefix = "cannot " + std::string(what) + " of node \"" + node_ + "\": ";
    if (!*row || instance_.empty()) {
        return make_error(Stage::lease, prefix + "this process never registered it");
    }
    return make_error(Stage::lease, prefix + "instance " + stmt->text(0) + " on host " +
                                        stmt->text(1) + " (pid " + stmt->text(2) +
                                        ") took it over");
}

Status SqliteJobDb::heartbeat(const NodeCounters& counters) {
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        UPDATE nodes SET heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), in_flight = ?3,
                         queue_depth = ?4
        WHERE node = ?1 AND instance = ?2)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, node_);
    stmt->bind(2, instance_);
    stmt->bind(3, counters.in_flight);
    stmt->bind(4, counters.queue_depth);
    if (auto st = stmt->run(); !st) return st;
    if (stmt->changes() == 0) return taken_over("record the heartbeat");
    return ok_status();
}

Status SqliteJobDb::leave() {
    std::lock_guard lock(mutex_);
    auto stmt = Statement::prepare(db_.get(), R"sql(
        UPDATE nodes SET state = 'stopped', heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                         in_flight = 0, queue_depth = 0
        WHERE node = ?1 AND instance = ?2)sql");
    if (!stmt) return stmt.error();
    stmt->bind(1, node_);
    stmt->bind(2, instance_);
    if (auto st = stmt->run(); !st) return st;
    if (stmt->changes() == 0) return taken_over("record the stop");
    return ok_status();
}

// One daemon per SQLite file, and register_node made every unfinished row this node's, so this
// finds something only when rows were written under another name since; it is still done right: the
// same choice and update as on PostgreSQL, in one write transaction.
Result<std::vector<AdoptedJob>> SqliteJobDb::adopt_orphans(int limit,
                                                           const std::vector<std::string>& spools) {
    std::vector<AdoptedJob> adopted;
    if (limit <= 0 || spools.empty()) return adopted;
    std::lock_guard lock(mutex_);
    sqlite3* db = db_.get();
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error();
    auto orphans = select_jobs(db, R"sql(
        JOIN nodes n ON n.node = j.node
        WHERE j.node <> ?1 AND j.status IN ('pending', 'processing')
          AND j.spool IN (SELECT value FROM json_each(?3))
          AND (n.state = 'stopped'
               OR n.heartbeat_at <
                  strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || n.lease_s || ' seconds'))
        ORDER BY j.created_at, j.rowid
        LIMIT ?2)sql",
                               [&](Statement& s) {
                                   s.bind(1, node_);
                                   s.bind(2, std::int64_t{limit});
                                   s.bind(3, nlohmann::json(spools).dump());
                               });
    if (!orphans) return orphans.error();
    for (const JobRecord& orphan : *orphans) {
        auto stmt = Statement::prepare(db, R"sql(
            UPDATE upload_jobs
            SET adopted_from = node, node = ?2,
                crashes = crashes + CASE WHEN status = 'processing' THEN 1 ELSE 0 END,
                status = 'pending', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
            WHERE id = ?1)sql");
        if (!stmt) return stmt.error();
        stmt->bind(1, orphan.upload_id);
        stmt->bind(2, node_);
        if (auto st = stmt->run(); !st) return st.error();
        auto now =
            select_jobs(db, "WHERE j.id = ?1", [&](Statement& s) { s.bind(1, orphan.upload_id); });
        if (!now) return now.error();
        if (now->size() != 1) {
            return make_error(Stage::commit, "adopting upload " + orphan.upload_id + ": row gone");
        }
        adopted.push_back(AdoptedJob{std::move(now->front()), orphan.node});
    }
    if (auto st = tx->commit(); !st) return st.error();
    return adopted;
}

Result<std::vector<NodeStatus>> SqliteJobDb::nodes() {
    std::lock_guard lock(mutex_);
    return select_rows<NodeStatus>(db_.get(), "node_status", R"sql(
        SELECT node, host, state, started_at, heartbeat_at, heartbeat_age_s, lease_s, workers,
               in_flight, done_last_hour, failed_last_hour, jobs_per_s, version, cache_scope
        FROM node_status)sql",
                                   [](const Statement& s) {
                                       NodeStatus n;
                                       n.node = s.text(0);
                                       n.host = s.text(1);
                                       n.state = s.text(2);
                                       n.started_at = s.text(3);
                                       n.heartbeat_at = s.text(4);
                                       n.heartbeat_age_s = s.int64(5);
                                       n.lease_s = static_cast<int>(s.int64(6));
                                       n.workers = static_cast<int>(s.int64(7));
                                       n.in_flight = s.int64(8);
                                       n.done_last_hour = s.int64(9);
                                       n.failed_last_hour = s.int64(10);
                                       n.jobs_per_s = std::stod(s.text(11));
                                       n.version = s.text(12);
                                       n.cache_scope = s.text(13);
                                       return n;
                                   });
}

}  // namespace imgspool
