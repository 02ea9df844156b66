#include "store/sqlite_job_db_schema.hpp"

#include <iterator>

#include "store/job_db.hpp"

namespace imgspool {

namespace {

// Version 1: jobs, their stored images, the derivative cache, and views for the sqlite3 CLI
// (docs/queries.md). Timestamps are ISO 8601 UTC text with milliseconds.
constexpr const char* kVersion1 = R"sql(
CREATE TABLE IF NOT EXISTS upload_jobs (
    id            TEXT PRIMARY KEY,
    spool         TEXT NOT NULL,
    source_name   TEXT NOT NULL,
    source_hash   TEXT,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'processing', 'complete', 'failed')),
    progress      INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error         TEXT,
    error_stage   TEXT,
    original_size INTEGER,
    width         INTEGER,
    height        INTEGER,
    format        TEXT,
    profile       TEXT NOT NULL,
    cache_hit     INTEGER NOT NULL DEFAULT 0 CHECK (cache_hit IN (0, 1)),
    duration_ms   INTEGER,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    completed_at  TEXT
);
CREATE INDEX IF NOT EXISTS upload_jobs_status ON upload_jobs (status);
CREATE INDEX IF NOT EXISTS upload_jobs_created_at ON upload_jobs (created_at);
CREATE INDEX IF NOT EXISTS upload_jobs_updated_at ON upload_jobs (updated_at);
CREATE INDEX IF NOT EXISTS upload_jobs_source_hash ON upload_jobs (source_hash);

-- urls: {"small.jpg": "https://cdn/images/<id>/small.jpg", ...}
-- outputs: [{"variant","format","key","url","width","height","bytes"}, ...]
CREATE TABLE IF NOT EXISTS images (
    id          INTEGER PRIMARY KEY,
    upload_id   TEXT NOT NULL UNIQUE REFERENCES upload_jobs (id),
    urls        TEXT NOT NULL CHECK (json_valid(urls)),
    outputs     TEXT NOT NULL CHECK (json_valid(outputs)),
    total_bytes INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS images_created_at ON images (created_at);

CREATE TABLE IF NOT EXISTS derivative_cache (
    source_hash         TEXT NOT NULL,
    profile_fingerprint TEXT NOT NULL,
    outputs             TEXT NOT NULL CHECK (json_valid(outputs)),
    upload_id           TEXT NOT NULL REFERENCES upload_jobs (id),
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (source_hash, profile_fingerprint)
);

CREATE VIEW IF NOT EXISTS status_counts AS
WITH statuses (status) AS (VALUES ('pending'), ('processing'), ('complete'), ('failed'))
SELECT s.status, count(j.id) AS jobs
FROM statuses s LEFT JOIN upload_jobs j ON j.status = s.status
GROUP BY s.status
ORDER BY CASE s.status WHEN 'pending' THEN 1 WHEN 'processing' THEN 2
                       WHEN 'complete' THEN 3 ELSE 4 END;

CREATE VIEW IF NOT EXISTS jobs_in_flight AS
SELECT id, spool, source_name, status, progress, created_at, updated_at,
       CAST(round((julianday('now') - julianday(created_at)) * 86400) AS INTEGER) AS age_s
FROM upload_jobs
WHERE status IN ('pending', 'processing')
ORDER BY created_at;

CREATE VIEW IF NOT EXISTS failures_today AS
SELECT id, spool, source_name, error_stage AS stage, error AS reason, updated_at AS failed_at
FROM upload_jobs
WHERE status = 'failed' AND updated_at >= strftime('%Y-%m-%dT00:00:00.000Z', 'now')
ORDER BY updated_at DESC;

CREATE VIEW IF NOT EXISTS throughput_per_hour AS
SELECT substr(coalesce(completed_at, updated_at), 1, 13) || ':00Z' AS hour,
       sum(status = 'complete') AS completed,
       sum(status = 'failed') AS failed,
       CAST(round(avg(CASE WHEN status = 'complete' THEN duration_ms END)) AS INTEGER)
           AS avg_duration_ms
FROM upload_jobs
WHERE status IN ('complete', 'failed')
GROUP BY hour
ORDER BY hour DESC;

CREATE VIEW IF NOT EXISTS cache_hit_rate AS
SELECT coalesce(sum(cache_hit), 0) AS hits,
       count(*) - coalesce(sum(cache_hit), 0) AS misses,
       CASE WHEN count(*) = 0 THEN 0.0
            ELSE round(100.0 * sum(cache_hit) / count(*), 1) END AS hit_rate_pct
FROM upload_jobs
WHERE status = 'complete';
)sql";

// Version 2: deferred jobs (attempts, next_attempt_at, last_error), starts cut short by a crash
// (crashes), and the files waiting in an inbox for the rest of their bytes (waiting_files).
constexpr const char* kVersion2 = R"sql(
ALTER TABLE upload_jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE upload_jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE upload_jobs ADD COLUMN next_attempt_at TEXT;
ALTER TABLE upload_jobs ADD COLUMN last_error TEXT;

-- Written by the daemon from its watcher's view: a file is here while its own format says it
-- is not whole yet, or another process has it open for writing.
CREATE TABLE IF NOT EXISTS waiting_files (
    spool       TEXT NOT NULL,
    source_name TEXT NOT NULL,
    size        INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    since       TEXT NOT NULL,
    PRIMARY KEY (spool, source_name)
);

DROP VIEW IF EXISTS status_counts;
CREATE VIEW status_counts AS
WITH statuses (status, ord) AS (VALUES ('waiting', 0), ('pending', 1), ('processing', 2),
                                       ('complete', 3), ('failed', 4)),
     counts (status, n) AS (SELECT status, count(*) FROM upload_jobs GROUP BY status
                            UNION ALL SELECT 'waiting', count(*) FROM waiting_files)
SELECT s.status, coalesce(c.n, 0) AS jobs
FROM statuses s LEFT JOIN counts c ON c.status = s.status
ORDER BY s.ord;

DROP VIEW IF EXISTS jobs_in_flight;
CREATE VIEW jobs_in_flight AS
SELECT id, spool, source_name, status, progress, created_at, updated_at,
       CAST(round((julianday('now') - julianday(created_at)) * 86400) AS INTEGER) AS age_s,
       attempts, next_attempt_at, last_error
FROM upload_jobs
WHERE status IN ('pending', 'processing')
ORDER BY created_at;

CREATE VIEW IF NOT EXISTS jobs_deferred AS
SELECT id, spool, source_name, attempts, next_attempt_at, last_error
FROM upload_jobs
WHERE status = 'pending' AND next_attempt_at IS NOT NULL
ORDER BY next_attempt_at;
)sql";

// Version 3: who asked for a job and where its pixels came from (manifests, HTTP uploads).
// SQLite takes ADD COLUMN with a CHECK, and with NOT NULL when the default is not null: rows
// already there become origin 'drop'.
constexpr const char* kVersion3 = R"sql(
ALTER TABLE upload_jobs ADD COLUMN origin TEXT NOT NULL DEFAULT 'drop'
    CHECK (origin IN ('drop', 'manifest', 'http'));
ALTER TABLE upload_jobs ADD COLUMN source_url  TEXT;   -- https://... | s3://bucket/key; NULL for drops
ALTER TABLE upload_jobs ADD COLUMN user_id     TEXT;
ALTER TABLE upload_jobs ADD COLUMN tool        TEXT;
ALTER TABLE upload_jobs ADD COLUMN ref         TEXT;   -- client-side id
ALTER TABLE upload_jobs ADD COLUMN metadata    TEXT CHECK (metadata IS NULL OR json_valid(metadata));
ALTER TABLE upload_jobs ADD COLUMN client_name TEXT;   -- HTTP: the form's filename, printable
CREATE INDEX IF NOT EXISTS upload_jobs_user_id ON upload_jobs (user_id);
CREATE INDEX IF NOT EXISTS upload_jobs_ref ON upload_jobs (ref);
)sql";

// Version 4: several nodes on one database (design §3.1). Every job has an owning node, a dropped
// file's claim key (unique per spool) and the node it was adopted from; nodes says who runs and
// when each last spoke. node '' (existing rows) is filled by SqliteJobDb::open with the opening
// node's name: a migration is plain SQL and cannot bind it. waiting_files gets node into its
// primary key, which SQLite cannot change in place: new table, copy, drop, rename, with the view
// that reads it dropped first and made again (a rename checks every view).
constexpr const char* kVersion4 = R"sql(
ALTER TABLE upload_jobs ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE upload_jobs ADD COLUMN claim_key TEXT;
ALTER TABLE upload_jobs ADD COLUMN adopted_from TEXT;
CREATE UNIQUE INDEX upload_jobs_claim ON upload_jobs (spool, claim_key)
    WHERE claim_key IS NOT NULL;
CREATE INDEX upload_jobs_node_status ON upload_jobs (node, status);

DROP VIEW IF EXISTS status_counts;
CREATE TABLE waiting_files_v4 (
    spool       TEXT NOT NULL,
    source_name TEXT NOT NULL,
    size        INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    since       TEXT NOT NULL,
    node        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (node, spool, source_name)
);
INSERT INTO waiting_files_v4 (spool, source_name, size, reason, since)
    SELECT spool, source_name, size, reason, since FROM waiting_files;
DROP TABLE waiting_files;
ALTER TABLE waiting_files_v4 RENAME TO waiting_files;

-- Several nodes polling one inbox each see a file that is still arriving: counted once.
CREATE VIEW status_counts AS
WITH statuses (status, ord) AS (VALUES ('waiting', 0), ('pending', 1), ('processing', 2),
                                       ('complete', 3), ('failed', 4)),
     counts (status, n) AS (SELECT status, count(*) FROM upload_jobs GROUP BY status
                            UNION ALL
                            SELECT 'waiting', count(*)
                            FROM (SELECT DISTINCT spool, source_name FROM waiting_files))
SELECT s.status, coalesce(c.n, 0) AS jobs
FROM statuses s LEFT JOIN counts c ON c.status = s.status
ORDER BY s.ord;

CREATE TABLE nodes (
    node         TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    state_dir    TEXT NOT NULL,
    instance     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    version      TEXT NOT NULL,
    workers      INTEGER NOT NULL,
    lease_s      INTEGER NOT NULL CHECK (lease_s > 0),
    state        TEXT NOT NULL CHECK (state IN ('alive', 'stopped')),
    started_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    heartbeat_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    in_flight    INTEGER NOT NULL DEFAULT 0,
    queue_depth  INTEGER NOT NULL DEFAULT 0,
    cache_scope  TEXT NOT NULL DEFAULT ''
);

-- lost: alive by its own word, but silent past its lease (other nodes adopt its jobs).
-- in_flight and the counts are the node's rows in upload_jobs; a finished job's updated_at is
-- when it finished.
CREATE VIEW node_status AS
SELECT n.node, n.host,
       CASE WHEN n.state = 'alive' AND n.heartbeat_at <
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || n.lease_s || ' seconds')
            THEN 'lost' ELSE n.state END AS state,
       n.started_at, n.heartbeat_at,
       CAST(round((julianday('now') - julianday(n.heartbeat_at)) * 86400) AS INTEGER)
           AS heartbeat_age_s,
       n.lease_s, n.workers, n.pid,
       (SELECT count(*) FROM upload_jobs j
        WHERE j.node = n.node AND j.status IN ('pending', 'processing')) AS in_flight,
       n.queue_depth,
       (SELECT count(*) FROM upload_jobs j
        WHERE j.node = n.node AND j.status = 'complete'
          AND j.updated_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour')) AS done_last_hour,
       (SELECT count(*) FROM upload_jobs j
        WHERE j.node = n.node AND j.status = 'failed'
          AND j.updated_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour'))
           AS failed_last_hour,
       round((SELECT count(*) FROM upload_jobs j
              WHERE j.node = n.node AND j.status = 'complete'
                AND j.updated_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-5 minutes'))
             / 300.0, 3) AS jobs_per_s,
       n.version, n.cache_scope
FROM nodes n
ORDER BY n.node;

-- The views of jobs gain node as their last column, so readers by position keep working.
DROP VIEW IF EXISTS jobs_in_flight;
CREATE VIEW jobs_in_flight AS
SELECT id, spool, source_name, status, progress, created_at, updated_at,
       CAST(round((julianday('now') - julianday(created_at)) * 86400) AS INTEGER) AS age_s,
       attempts, next_attempt_at, last_error, node
FROM upload_jobs
WHERE status IN ('pending', 'processing')
ORDER BY created_at;

DROP VIEW IF EXISTS jobs_deferred;
CREATE VIEW jobs_deferred AS
SELECT id, spool, source_name, attempts, next_attempt_at, last_error, node
FROM upload_jobs
WHERE status = 'pending' AND next_attempt_at IS NOT NULL
ORDER BY next_attempt_at;

DROP VIEW IF EXISTS failures_today;
CREATE VIEW failures_today AS
SELECT id, spool, source_name, error_stage AS stage, error AS reason, updated_at AS failed_at,
       node
FROM upload_jobs
WHERE status = 'failed' AND updated_at >= strftime('%Y-%m-%dT00:00:00.000Z', 'now')
ORDER BY updated_at DESC;
)sql";

// Version 5: progressive-loading placeholders (a BlurHash string and a tiny WebP data: URI), with
// the job's images row and with the cached set, so a cache hit gives the job the same ones. NULL
// when the profile did not ask for them, and in rows written before.
constexpr const char* kVersion5 = R"sql(
ALTER TABLE images ADD COLUMN blurhash TEXT;
ALTER TABLE images ADD COLUMN lqip TEXT;
ALTER TABLE derivative_cache ADD COLUMN blurhash TEXT;
ALTER TABLE derivative_cache ADD COLUMN lqip TEXT;
)sql";

constexpr const char* kMigrations[] = {kVersion1, kVersion2, kVersion3, kVersion4, kVersion5};
static_assert(std::size(kMigrations) == JobDb::schema_version,
              "JobDb::schema_version must name the last migration");

}  // namespace

std::span<const char* const> sqlite_job_db_migrations() {
    return kMigrations;
}

}  // namespace imgspool
