// Checks the store and the database on its own thread every few seconds and keeps the last
// result, so that /readyz and /metrics answer at once from it: a store that hangs for minutes
// can make a check slow, never a probe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/error.hpp"
#include "metrics/http_server.hpp"

namespace imgspool {

using JobCounts = std::map<std::string, std::int64_t>;  // status -> jobs

// What the monitor asks; both may block for as long as the thing they ask takes.
struct HealthProbes {
    std::function<Status()> store;                // ObjectStore::check()
    std::function<Result<JobCounts>()> database;  // fails when the database does not answer
};

struct HealthMonitorOptions {
    // From the end of one check to the start of the next.
    std::chrono::milliseconds interval{std::chrono::seconds(5)};
    // A check still running after this long is an answer too: "no answer for N s".
    std::chrono::milliseconds stalled_after{std::chrono::seconds(5)};
    // Called on the monitor's thread when the store answers again after a failed or stalled
    // check (e.g. to retry deferred jobs at once). Must not call stop().
    std::function<void()> on_store_recovered{};
    // The same for the database: its check answers again after a failed one. PostgreSQL's pool
    // reports its recovery sooner, on the first call that reconnects (health_database.hpp); this
    // one also covers SQLite, and a job that deferred just after the pool's report.
    std::function<void()> on_database_recovered{};
};

class HealthMonitor {
  public:
    using Clock = std::chrono::steady_clock;

    HealthMonitor(HealthProbes probes, HealthMonitorOptions options = {});
    ~HealthMonitor();  // stops
    HealthMonitor(const HealthMonitor&) = delete;
    HealthMonitor& operator=(const HealthMonitor&) = delete;

    // Starts the thread, which checks at once. Idempotent.
    void start();
    // Ends the thread; waits for a check in progress, so the probes should be bounded in time
    // (daemon/health_probes.hpp gives the store check a short timeout of its own).
    void stop();

    // Never blocks on the store or the database. Not ready before the first check has ended,
    // while the last one failed ("store unreachable: <reason> (checked 3 s ago)") and while a
    // check has been running longer than stalled_after.
    Readiness readiness() const;
    // The job counts of the last database check that answered; nullopt before the first.
    std::optional<JobCounts> job_counts() const;
    // How often the store answered again after it had not; a counter for whoever waits for it.
    std::uint64_t store_recoveries() const;

  private:
    void loop();
    void check_once();
    void running(const char* what, Clock::time_point since);

    HealthProbes probes_;
    HealthMonitorOptions options_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool checked_ = false;  // a check has ended
    std::optional<std::string> store_problem_;
    std::optional<std::string> database_problem_;
    Clock::time_point checked_at_{};
    const char* running_what_ = nullptr;  // the problem if it stalls: "store unreachable"
    std::optional<Clock::time_point> running_since_;  // the probe in progress
    bool store_was_down_ = false;     // failed or stalled since the last good answer
    bool database_was_down_ = false;  // the last database check failed
    std::optional<JobCounts> counts_;
    std::uint64_t recoveries_ = 0;

    std::thread thread_;
};

}  // namespace imgspool
