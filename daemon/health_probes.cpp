#include "daemon/health_probes.hpp"

namespace imgspool {

HealthProbes daemon_health_probes(std::function<std::shared_ptr<ObjectStore>()> current_store,
                                  JobDb& db) {
    return HealthProbes{
        .store = [current_store = std::move(current_store)] { return current_store()->check(); },
        // counts_by_status() logs its errors and answers zeros; the view read before it says
        // whether the database answers at all.
        .database = [&db]() -> Result<JobCounts> {
            if (auto in_flight = db.jobs_in_flight(); !in_flight) return in_flight.error();
            return db.counts_by_status();
        },
    };
}

}  // namespace imgspool
