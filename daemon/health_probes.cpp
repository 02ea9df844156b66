#include "daemon/health_probes.hpp"

namespace imgspool {

HealthProbes daemon_health_probes(std::function<std::shared_ptr<ObjectStore>()> current_store,
                                  JobDb& db, DatabaseLock* lock) {
    return HealthProbes{
        .store = [current_store = std::move(current_store)] { return current_store()->check(); },
        .database = [&db, lock]() -> Result<JobCounts> {
            if (lock) {
                if (Status st = lock->check(); !st) return st.error();
            }
            return db.counts_by_status();
        },
    };
}

}  // namespace imgspool
