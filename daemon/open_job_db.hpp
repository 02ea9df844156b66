// Which job record a configuration names: PostgreSQL when [database] url (or DATABASE_URL) is
// set, else SQLite at <state_dir>/imgspool.db, the embedded default.
#pragma once

#include <memory>

#include "common/error.hpp"
#include "daemon/config.hpp"
#include "store/job_db.hpp"

namespace imgspool {

bool uses_postgresql(const Config& config);

// Opens it as [daemon] node, creating or migrating its schema. PostgreSQL keeps [database]
// pool_size connections, or one per worker plus three (watcher, HTTP drop-in, health and status
// threads) when 0.
Result<std::unique_ptr<JobDb>> open_job_db(const Config& config);

}  // namespace imgspool
