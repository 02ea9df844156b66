// The PostgreSQL schema of the job record: the same tables, columns and views as the SQLite
// schema (store/job_db_schema.cpp) with native types (timestamptz, jsonb, boolean), versioned in
// imgspool_meta instead of PRAGMA user_version.
#pragma once

#include <span>
#include <string>

#include "common/error.hpp"
#include "store/pg/pg_handles.hpp"

namespace imgspool::pg {

// One step of the schema: its statements bring a database from the previous entry's version to
// `version`. Add a migration to change the schema; never edit an old one.
struct Migration {
    int version;
    std::span<const char* const> statements;  // one SQL command each (PQexecParams runs one)
};

// Oldest first. The first entry is the baseline, which creates everything from nothing.
std::span<const Migration> pg_migrations();

// The version the last migration writes.
int pg_schema_version();

struct SchemaInfo {
    int version = 0;          // 0: imgspool never created its tables here
    std::string database_id;  // a UUID made by the baseline; "" at version 0
};

// What imgspool_meta says, without changing anything (check-config, the spool marker).
Result<SchemaInfo> read_schema_info(Connection& conn);

// Brings the database to pg_schema_version() in one transaction, under an advisory lock, so
// several nodes starting at once migrate once and the others find the work done. A database of
// a newer version is refused (permanent Stage::commit error naming both versions); `where`
// (the database described without secrets) goes into Error::file. Rows from before version 4
// become `node`'s (the one daemon a version 3 database allowed).
Status migrate(Connection& conn, const std::string& where, const std::string& node);

}  // namespace imgspool::pg
