#include "daemon/open_job_db.hpp"

#include "store/pg/pg_job_db.hpp"
#include "store/sqlite_job_db.hpp"

namespace imgspool {

bool uses_postgresql(const Config& config) {
    return !config.database.url.empty();
}

Result<std::unique_ptr<JobDb>> open_job_db(const Config& config) {
    if (!uses_postgresql(config)) {
        auto db = SqliteJobDb::open(config.database_path());
        if (!db) return db.error();
        return std::unique_ptr<JobDb>(std::move(*db));
    }
    const int pool_size =
        config.database.pool_size > 0 ? config.database.pool_size : config.effective_workers() + 3;
    auto db = pg::PgJobDb::open(config.database, pool_size, config.daemon.node);
    if (!db) return db.error();
    return std::unique_ptr<JobDb>(std::move(*db));
}

}  // namespace imgspool
