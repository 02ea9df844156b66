// What the daemon's HealthMonitor asks: the store, and the database whose job counts feed the
// imgspool_jobs gauges.
#pragma once

#include "daemon/health_monitor.hpp"
#include "store/job_db.hpp"
#include "store/object_store.hpp"

namespace imgspool {

// The store's own check() is bounded whatever the jobs' retry settings (a few seconds, ahead
// of queued uploads, over the same connection pool), so a stalled endpoint delays a check, and
// the daemon's shutdown, by seconds, never minutes. store and db must outlive the probes.
HealthProbes daemon_health_probes(ObjectStore& store, JobDb& db);

}  // namespace imgspool
