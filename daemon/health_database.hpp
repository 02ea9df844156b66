// What the daemon learns from its job record beyond answers, where the backend has it: the
// moment PostgreSQL answers again after an outage, and how often the pool reconnected. SQLite
// has neither; its recoveries are seen by the HealthMonitor's database check.
#pragma once

#include <cstdint>
#include <functional>

#include "store/job_db.hpp"

namespace imgspool {

// PostgreSQL: `callback` runs once per outage, on the thread of the first call that reaches the
// server again (a worker, the intake or the health check), so it must be quick and must not call
// the database. SQLite: never called. The hook is removed with this object, so whatever the
// callback touches need only outlive it.
class DatabaseRecoveryHook {
  public:
    DatabaseRecoveryHook(JobDb& db, std::function<void()> callback);
    ~DatabaseRecoveryHook();
    DatabaseRecoveryHook(const DatabaseRecoveryHook&) = delete;
    DatabaseRecoveryHook& operator=(const DatabaseRecoveryHook&) = delete;

  private:
    JobDb& db_;
};

// Sessions the PostgreSQL pool re-established after they broke; 0 on SQLite.
std::uint64_t database_reconnects(const JobDb& db);

}  // namespace imgspool
