// The SQLite job database schema as an ordered list of migrations: entry N (1-based) brings a file
// from PRAGMA user_version N-1 to N. Add a migration to change the schema; never edit an old one.
#pragma once

#include <span>

namespace imgspool {

std::span<const char* const> sqlite_job_db_migrations();

}  // namespace imgspool
