// What the daemon's HealthMonitor asks: the store, and the database whose job counts feed the
// imgspool_jobs gauges.
#pragma once

#include "daemon/config.hpp"
#include "daemon/health_monitor.hpp"
#include "store/job_db.hpp"

namespace imgspool {

// The store check goes through a store object of its own, built from `settings` with one
// attempt and a timeout of at most 5 s (3 s to connect): the jobs' retry budget (5 attempts of
// up to 60 s by default) would keep a check of a stalled S3 endpoint, and so the daemon's
// shutdown, waiting for minutes. db must outlive the probes.
Result<HealthProbes> daemon_health_probes(const StoreSettings& settings, JobDb& db);

}  // namespace imgspool
