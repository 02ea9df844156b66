#include "daemon/health_probes.hpp"

namespace imgspool {

HealthProbes daemon_health_probes(std::function<std::shared_ptr<ObjectStore>()> current_store,
                                  JobDb& db) {
    return HealthProbes{
        .store = [current_store = std::move(current_store)] { return current_store()->check(); },
        .database = [&db]() -> Result<JobCounts> { return db.counts_by_status(); },
    };
}

}  // namespace imgspool
