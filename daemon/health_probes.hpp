// What the daemon's HealthMonitor asks: the store, and the database whose job counts feed the
// imgspool_jobs gauges.
#pragma once

#include <functional>
#include <memory>

#include "daemon/health_monitor.hpp"
#include "store/job_db.hpp"
#include "store/object_store.hpp"

namespace imgspool {

// The store's own check() is bounded whatever the jobs' retry settings (a few seconds, ahead
// of queued uploads, over the same connection pool), so a stalled endpoint delays a check, and
// the daemon's shutdown, by seconds, never minutes. current_store is asked at every check, so
// the checks follow a store swapped by a reload; db must outlive the probes.
HealthProbes daemon_health_probes(std::function<std::shared_ptr<ObjectStore>()> current_store,
                                  JobDb& db);

}  // namespace imgspool
