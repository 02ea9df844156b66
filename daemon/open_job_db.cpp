#include "daemon/open_job_db.hpp"

#include "store/job_db_common.hpp"
#include "store/pg/pg_job_db.hpp"
#include "store/sqlite_job_db.hpp"

namespace imgspool {

bool uses_postgresql(const Config& config) {
    return !config.database.url.empty();
}

Result<std::unique_ptr<JobDb>> open_job_db(const Config& config) {
    // check_config resolves [daemon] node (default: the host name); a Config made without it
    // still names its rows.
    const std::string node = config.daemon.node.empty() ? local_node_name() : config.daemon.node;
    if (!uses_postgresql(config)) {
        auto db = SqliteJobDb::open(config.database_path(), node);
        if (!db) return db.error();
        return std::unique_ptr<JobDb>(std::move(*db));
    }
    const int pool_size =
        config.database.pool_size > 0 ? config.database.pool_size : config.effective_workers() + 3;
    auto db = pg::PgJobDb::open(config.database, pool_size, node);
    if (!db) return db.error();
    return std::unique_ptr<JobDb>(std::move(*db));
}

}  // namespace imgspool
