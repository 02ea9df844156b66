// The [database] settings: where the job record lives and how its connections behave.
#pragma once

#include <string>

#include "common/error.hpp"

namespace imgspool::pg {

struct DatabaseSettings {
    std::string url;               // "" = SQLite in state_dir; else a PostgreSQL URL or conninfo
    int pool_size = 0;             // 0 = workers + 3
    int connect_timeout_s = 5;     // libpq connect_timeout
    int statement_timeout_s = 30;  // server-side statement_timeout of every session
};

// Stage::config errors naming the key; the URL is checked with PQconninfoParse (no connection is
// made) and its value, which may hold a password, never appears in the reason.
Status validate(const DatabaseSettings& settings);

}  // namespace imgspool::pg
