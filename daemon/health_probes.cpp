#include "daemon/health_probes.hpp"

#include <algorithm>
#include <memory>

#include "daemon/runtime.hpp"

namespace imgspool {

Result<HealthProbes> daemon_health_probes(const StoreSettings& settings, JobDb& db) {
    StoreSettings quick = settings;
    quick.s3.max_attempts = 1;
    quick.s3.connect_timeout_ms = std::min(quick.s3.connect_timeout_ms, 3000);
    quick.s3.request_timeout_ms = std::min(quick.s3.request_timeout_ms, 5000);
    auto made = make_store(quick);
    if (!made) return made.error();
    // Shared: HealthProbes are copyable functions.
    std::shared_ptr<ObjectStore> store = std::move(made).value();
    return HealthProbes{
        .store = [store] { return store->check(); },
        // counts_by_status() logs its errors and answers zeros; the view read before it says
        // whether the database answers at all.
        .database = [&db]() -> Result<JobCounts> {
            if (auto in_flight = db.jobs_in_flight(); !in_flight) return in_flight.error();
            return db.counts_by_status();
        },
    };
}

}  // namespace imgspool
