#include "daemon/health_database.hpp"

#include "store/pg/pg_job_db.hpp"

namespace imgspool {

namespace {

// JobDb has no recovery hook of its own (yet), so the PostgreSQL one is reached by its type.
void set_recovery_callback(JobDb& db, std::function<void()> callback) {
    if (auto* pg = dynamic_cast<pg::PgJobDb*>(&db)) pg->on_recovered(std::move(callback));
}

}  // namespace

DatabaseRecoveryHook::DatabaseRecoveryHook(JobDb& db, std::function<void()> callback) : db_(db) {
    set_recovery_callback(db_, std::move(callback));
}

DatabaseRecoveryHook::~DatabaseRecoveryHook() {
    set_recovery_callback(db_, {});
}

std::uint64_t database_reconnects(const JobDb& db) {
    const auto* pg = dynamic_cast<const pg::PgJobDb*>(&db);
    return pg ? pg->reconnects() : 0;
}

}  // namespace imgspool
