#include "store/pg/pg_schema.hpp"

#include <charconv>
#include <iterator>

#include "store/job_db.hpp"

namespace imgspool::pg {

namespace {

// Version 3, the baseline: SQLite's versions 1-3 in one step, column for column, so the views and
// every documented query answer the same on both. What differs is the types: timestamptz for
// the ISO text columns (readers format them with imgspool_iso), jsonb for the JSON text
// columns, boolean for cache_hit, bigint for sizes and durations, an identity for images.id.
constexpr const char* kBaseline[] = {
    R"sql(CREATE TABLE imgspool_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
))sql",

    // The text SQLite stores for every timestamp ("2026-11-22T03:04:05.123Z"), so JobRecord and
    // `status --json` read the same on both backends. STABLE: to_char depends on settings.
    R"sql(CREATE FUNCTION imgspool_iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$)sql",

    R"sql(CREATE TABLE upload_jobs (
    id              text PRIMARY KEY,
    spool           text NOT NULL,
    source_name     text NOT NULL,
    source_hash     text,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'complete', 'failed')),
    progress        integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error           text,
    error_stage     text,
    original_size   bigint,
    width           integer,
    height          integer,
    format          text,
    profile         text NOT NULL,
    cache_hit       boolean NOT NULL DEFAULT false,
    duration_ms     bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    crashes         integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    origin          text NOT NULL DEFAULT 'drop' CHECK (origin IN ('drop', 'manifest', 'http')),
    source_url      text,
    user_id         text,
    tool            text,
    ref             text,
    metadata        jsonb CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    client_name     text
))sql",
    "CREATE INDEX upload_jobs_status ON upload_jobs (status)",
    "CREATE INDEX upload_jobs_created_at ON upload_jobs (created_at)",
    "CREATE INDEX upload_jobs_updated_at ON upload_jobs (updated_at)",
    "CREATE INDEX upload_jobs_source_hash ON upload_jobs (source_hash)",
    "CREATE INDEX upload_jobs_user_id ON upload_jobs (user_id)",
    "CREATE INDEX upload_jobs_ref ON upload_jobs (ref)",

    // urls: {"small.jpg": "https://cdn/images/<id>/small.jpg", ...}
    // outputs: [{"variant","format","key","url","width","height","bytes"}, ...]
    R"sql(CREATE TABLE images (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upload_id   text NOT NULL UNIQUE REFERENCES upload_jobs (id),
    urls        jsonb NOT NULL,
    outputs     jsonb NOT NULL,
    total_bytes bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
))sql",
    "CREATE INDEX images_created_at ON images (created_at)",

    R"sql(CREATE TABLE derivative_cache (
    source_hash         text NOT NULL,
    profile_fingerprint text NOT NULL,
    outputs             jsonb NOT NULL,
    upload_id           text NOT NULL REFERENCES upload_jobs (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_hash, profile_fingerprint)
))sql",

    R"sql(CREATE TABLE waiting_files (
    spool       text NOT NULL,
    source_name text NOT NULL,
    size        bigint NOT NULL,
    reason      text NOT NULL,
    since       timestamptz NOT NULL,
    PRIMARY KEY (spool, source_name)
))sql",

    R"sql(CREATE VIEW status_counts AS
WITH statuses (status, ord) AS (VALUES ('waiting', 0), ('pending', 1), ('processing', 2),
                                       ('complete', 3), ('failed', 4)),
     counts (status, n) AS (SELECT status, count(*) FROM upload_jobs GROUP BY status
                            UNION ALL SELECT 'waiting', count(*) FROM waiting_files)
SELECT s.status, coalesce(c.n, 0) AS jobs
FROM statuses s LEFT JOIN counts c ON c.status = s.status
ORDER BY s.ord)sql",

    R"sql(CREATE VIEW jobs_in_flight AS
SELECT id, spool, source_name, status, progress, created_at, updated_at,
       CAST(round(extract(epoch FROM now() - created_at)) AS bigint) AS age_s,
       attempts, next_attempt_at, last_error
FROM upload_jobs
WHERE status IN ('pending', 'processing')
ORDER BY created_at)sql",

    R"sql(CREATE VIEW jobs_deferred AS
SELECT id, spool, source_name, attempts, next_attempt_at, last_error
FROM upload_jobs
WHERE status = 'pending' AND next_attempt_at IS NOT NULL
ORDER BY next_attempt_at)sql",

    // Midnight UTC, whatever the session's TimeZone.
    R"sql(CREATE VIEW failures_today AS
SELECT id, spool, source_name, error_stage AS stage, error AS reason, updated_at AS failed_at
FROM upload_jobs
WHERE status = 'failed'
  AND updated_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
ORDER BY updated_at DESC)sql",

    // hour is text as in SQLite ("2026-11-22T03:00Z"), so it reads and sorts the same.
    R"sql(CREATE VIEW throughput_per_hour AS
SELECT to_char(date_trunc('hour', coalesce(completed_at, updated_at) AT TIME ZONE 'UTC'),
               'YYYY-MM-DD"T"HH24":00Z"') AS hour,
       count(*) FILTER (WHERE status = 'complete') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       CAST(round(avg(duration_ms) FILTER (WHERE status = 'complete')) AS bigint)
           AS avg_duration_ms
FROM upload_jobs
WHERE status IN ('complete', 'failed')
GROUP BY 1
ORDER BY 1 DESC)sql",

    R"sql(CREATE VIEW cache_hit_rate AS
SELECT count(*) FILTER (WHERE cache_hit) AS hits,
       count(*) FILTER (WHERE NOT cache_hit) AS misses,
       CASE WHEN count(*) = 0 THEN 0.0
            ELSE round(100.0 * count(*) FILTER (WHERE cache_hit) / count(*), 1) END
           AS hit_rate_pct
FROM upload_jobs
WHERE status = 'complete')sql",

    "INSERT INTO imgspool_meta (key, value) VALUES ('database_id', gen_random_uuid()::text)",
};

// Version 4: several nodes on one database (design §3.1), SQLite's version 4 column for column.
// Rows already here get the migrating node's name (imgspool.node, set by migrate(): version 3
// allowed one daemon per database), and new rows must name theirs (no default).
constexpr const char* kVersion4[] = {
    "ALTER TABLE upload_jobs ADD COLUMN node text NOT NULL "
    "DEFAULT current_setting('imgspool.node')",
    "ALTER TABLE upload_jobs ALTER COLUMN node DROP DEFAULT",
    "ALTER TABLE upload_jobs ADD COLUMN claim_key text",
    "ALTER TABLE upload_jobs ADD COLUMN adopted_from text",
    "CREATE UNIQUE INDEX upload_jobs_claim ON upload_jobs (spool, claim_key) "
    "WHERE claim_key IS NOT NULL",
    "CREATE INDEX upload_jobs_node_status ON upload_jobs (node, status)",

    "ALTER TABLE waiting_files ADD COLUMN node text NOT NULL "
    "DEFAULT current_setting('imgspool.node')",
    "ALTER TABLE waiting_files ALTER COLUMN node DROP DEFAULT",
    "ALTER TABLE waiting_files DROP CONSTRAINT waiting_files_pkey",
    "ALTER TABLE waiting_files ADD PRIMARY KEY (node, spool, source_name)",

    // Several nodes polling one inbox each see a file that is still arriving: counted once.
    R"sql(CREATE OR REPLACE VIEW status_counts AS
WITH statuses (status, ord) AS (VALUES ('waiting', 0), ('pending', 1), ('processing', 2),
                                       ('complete', 3), ('failed', 4)),
     counts (status, n) AS (SELECT status, count(*) FROM upload_jobs GROUP BY status
                            UNION ALL
                            SELECT 'waiting', count(*)
                            FROM (SELECT DISTINCT spool, source_name FROM waiting_files) w)
SELECT s.status, coalesce(c.n, 0) AS jobs
FROM statuses s LEFT JOIN counts c ON c.status = s.status
ORDER BY s.ord)sql",

    R"sql(CREATE TABLE nodes (
    node         text PRIMARY KEY,
    host         text NOT NULL,
    state_dir    text NOT NULL,
    instance     text NOT NULL,
    pid          bigint NOT NULL,
    version      text NOT NULL,
    workers      integer NOT NULL,
    lease_s      integer NOT NULL CHECK (lease_s > 0),
    state        text NOT NULL CHECK (state IN ('alive', 'stopped')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    in_flight    integer NOT NULL DEFAULT 0,
    queue_depth  integer NOT NULL DEFAULT 0,
    cache_scope  text NOT NULL DEFAULT ''
))sql",

    // lost: alive by its own word, but silent past its lease (other nodes adopt its jobs).
    // in_flight and the counts are the node's rows in upload_jobs; a finished job's updated_at
    // is when it finished.
    R"sql(CREATE VIEW node_status AS
SELECT n.node, n.host,
       CASE WHEN n.state = 'alive' AND n.heartbeat_at < now() - make_interval(secs => n.lease_s)
            THEN 'lost' ELSE n.state END AS state,
       n.started_at, n.heartbeat_at,
       CAST(round(extract(epoch FROM now() - n.heartbeat_at)) AS bigint) AS heartbeat_age_s,
       n.lease_s, n.workers, n.pid,
       (SELECT count(*) FROM upload_jobs j
        WHERE j.node = n.node AND j.status IN ('pending', 'processing')) AS in_flight,
       n.queue_depth,
       (SELECT count(*) FROM upload_jobs j
        WHERE j.node = n.node AND j.status = 'complete'
          AND j.updated_at >= now() - interval '1 hour') AS done_last_hour,
       (SELECT count(*) FROM upload_jobs j
        WHERE j.node = n.node AND j.status = 'failed'
          AND j.updated_at >= now() - interval '1 hour') AS failed_last_hour,
       round((SELECT count(*) FROM upload_jobs j
              WHERE j.node = n.node AND j.status = 'complete'
                AND j.updated_at >= now() - interval '5 minutes') / 300.0, 3) AS jobs_per_s,
       n.version, n.cache_scope
FROM nodes n
ORDER BY n.node)sql",

    // The views of jobs gain node as their last column (OR REPLACE may only add at the end).
    R"sql(CREATE OR REPLACE VIEW jobs_in_flight AS
SELECT id, spool, source_name, status, progress, created_at, updated_at,
       CAST(round(extract(epoch FROM now() - created_at)) AS bigint) AS age_s,
       attempts, next_attempt_at, last_error, node
FROM upload_jobs
WHERE status IN ('pending', 'processing')
ORDER BY created_at)sql",

    R"sql(CREATE OR REPLACE VIEW jobs_deferred AS
SELECT id, spool, source_name, attempts, next_attempt_at, last_error, node
FROM upload_jobs
WHERE status = 'pending' AND next_attempt_at IS NOT NULL
ORDER BY next_attempt_at)sql",

    R"sql(CREATE OR REPLACE VIEW failures_today AS
SELECT id, spool, source_name, error_stage AS stage, error AS reason, updated_at AS failed_at,
       node
FROM upload_jobs
WHERE status = 'failed'
  AND updated_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
ORDER BY updated_at DESC)sql",
};

// Version 5: progressive-loading placeholders, SQLite's version 5 column for column.
constexpr const char* kVersion5[] = {
    "ALTER TABLE images ADD COLUMN blurhash text",
    "ALTER TABLE images ADD COLUMN lqip text",
    "ALTER TABLE derivative_cache ADD COLUMN blurhash text",
    "ALTER TABLE derivative_cache ADD COLUMN lqip text",
};

constexpr Migration kMigrations[] = {{3, kBaseline}, {4, kVersion4}, {5, kVersion5}};
static_assert(std::end(kMigrations)[-1].version == JobDb::schema_version,
              "the last PostgreSQL migration must write JobDb::schema_version");

// Any fixed number works as long as every imgspool uses the same one: "imgspool" in ASCII.
constexpr const char* kLockMigrations = "SELECT pg_advisory_xact_lock(7596841891949145964)";

constexpr const char* kReadVersion =
    R"sql(SELECT (SELECT value FROM imgspool_meta WHERE key = 'schema_version'),
       (SELECT value FROM imgspool_meta WHERE key = 'database_id'))sql";

constexpr const char* kWriteVersion =
    R"sql(INSERT INTO imgspool_meta (key, value) VALUES ('schema_version', $1)
ON CONFLICT (key) DO UPDATE SET value = excluded.value)sql";

Result<SchemaInfo> read_info(Connection& conn) {
    auto exists = conn.exec_sql("SELECT to_regclass('imgspool_meta') IS NOT NULL");
    if (!exists) return exists.error();
    if (!boolean(*exists, 0, 0)) return SchemaInfo{};
    auto row = conn.exec_sql(kReadVersion);
    if (!row) return row.error();
    SchemaInfo info;
    const std::string version = value(*row, 0, 0);
    const auto [end, ec] =
        std::from_chars(version.data(), version.data() + version.size(), info.version);
    if (ec != std::errc() || end != version.data() + version.size()) {
        return make_error(
            Stage::commit,
            "imgspool_meta holds no schema version imgspool can read: \"" + version + "\"");
    }
    info.database_id = value(*row, 0, 1);
    return info;
}

}  // namespace

std::span<const Migration> pg_migrations() {
    return kMigrations;
}

int pg_schema_version() {
    return std::end(kMigrations)[-1].version;
}

Result<SchemaInfo> read_schema_info(Connection& conn) {
    return read_info(conn);
}

Status migrate(Connection& conn, const std::string& where, const std::string& node) {
    Transaction tx(conn);
    if (auto st = tx.begin(); !st) return st;
    // Each statement after the lock must see what a node that migrated first committed.
    if (auto st = conn.exec_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"); !st) {
        return st.error();
    }
    if (auto st = conn.exec_sql(kLockMigrations); !st) return st.error();
    auto info = read_info(conn);
    if (!info) return info.error();
    const int newest = pg_schema_version();
    if (info->version > newest) {
        return make_error(Stage::commit,
                          "database schema version " + std::to_string(info->version) +
                              " is newer than this imgspool understands (" +
                              std::to_string(newest) + "); upgrade imgspool",
                          where);
    }
    if (info->version == newest) return ok_status();  // the transaction only read
    // For the steps that name the node rows already there belong to (local to this transaction).
    if (auto st =
            conn.exec_sql("SELECT set_config('imgspool.node', $1, true)", Params().text(node));
        !st) {
        return st.error();
    }
    for (const Migration& m : kMigrations) {
        if (m.version <= info->version) continue;
        for (const char* sql : m.statements) {
            if (auto st = conn.exec_sql(sql); !st) return st.error();
        }
    }
    if (auto st = conn.exec_sql(kWriteVersion, Params().text(std::to_string(newest))); !st) {
        return st.error();
    }
    return tx.commit();
}

}  // namespace imgspool::pg
