// The one-line STATUS= the daemon shows in `systemctl status`, and the day's done and failed
// counts it needs, kept in memory so composing the line never waits for the database.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "pipeline/job.hpp"
#include "store/job_db.hpp"

namespace imgspool {

struct ServiceStatus {
    std::size_t in_flight = 0;  // jobs a worker is running
    std::size_t queued = 0;     // claimed, waiting for a worker
    std::size_t waiting = 0;    // files in an inbox that are not whole yet
    std::size_t deferred = 0;   // jobs waiting out a fault
    std::int64_t done_today = 0;
    std::int64_t failed_today = 0;
};

// "2 in flight, 0 queued, 1 waiting, 0 deferred; today 40 done, 1 failed"
std::string format_service_status(const ServiceStatus& s);

// Jobs decided since midnight UTC: seeded from the database at start, then counted as the
// pipeline reports them; starts again at zero when the UTC day changes.
class JobsToday final : public JobObserver {
  public:
    struct Counts {
        std::int64_t done = 0;
        std::int64_t failed = 0;
    };
    // Counts what the database already holds for today (nothing if it cannot be read).
    void seed(JobDb& db);
    void job_finished(const JobOutcome& out) override;  // thread-safe
    Counts counts() const;                              // thread-safe

  private:
    void roll_over(long day) const;  // with mutex_ held

    mutable std::mutex mutex_;
    mutable long day_ = -1;  // days since the epoch, UTC
    mutable Counts counts_;
};

}  // namespace imgspool
