#include "daemon/health_monitor.hpp"

#include "common/log.hpp"

namespace imgspool {
namespace {

std::string seconds_ago(HealthMonitor::Clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

}  // namespace

HealthMonitor::HealthMonitor(HealthProbes probes, HealthMonitorOptions options)
    : probes_(std::move(probes)), options_(std::move(options)) {}

HealthMonitor::~HealthMonitor() {
    stop();
}

void HealthMonitor::start() {
    if (thread_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = false;
    }
    thread_ = std::thread([this] { loop(); });
}

void HealthMonitor::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void HealthMonitor::loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        check_once();
        lock.lock();
        wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
    }
}

void HealthMonitor::check_once() {
    const Clock::time_point started = Clock::now();
    running("store unreachable", started);
    const Status store = probes_.store();
    const Clock::time_point store_answered = Clock::now();
    running("database unreadable", store_answered);
    auto counts = probes_.database();
    const Clock::time_point ended = Clock::now();

    bool recovered = false;
    bool database_recovered = false;
    {
        std::lock_guard lock(mutex_);
        running_since_.reset();
        running_what_ = nullptr;
        checked_ = true;
        checked_at_ = ended;
        store_problem_ = store ? std::nullopt : std::optional<std::string>(store.error().reason);
        database_problem_ =
            counts ? std::nullopt : std::optional<std::string>(counts.error().reason);
        if (counts) counts_ = std::move(counts).value();
        // A store check that took longer than stalled_after was reported as not answering.
        const bool was_stalled = store_answered - started > options_.stalled_after;
        if (store && (store_was_down_ || was_stalled)) {
            ++recoveries_;
            recovered = true;
        }
        store_was_down_ = !store;
        database_recovered = counts && database_was_down_;
        database_was_down_ = !counts;
    }
    if (recovered) {
        log::info("the store answers again");
        if (options_.on_store_recovered) options_.on_store_recovered();
    }
    if (database_recovered) {
        log::info("the database answers again");
        if (options_.on_database_recovered) options_.on_database_recovered();
    }
}

void HealthMonitor::running(const char* what, Clock::time_point since) {
    std::lock_guard lock(mutex_);
    running_what_ = what;
    running_since_ = since;
}

Readiness HealthMonitor::readiness() const {
    std::lock_guard lock(mutex_);
    const Clock::time_point now = Clock::now();
    if (running_since_ && now - *running_since_ > options_.stalled_after) {
        return {false, std::string(running_what_) + ": no answer for " +
                           seconds_ago(now - *running_since_) + " (check still running)"};
    }
    if (!checked_) return {false, "the first check of the store and database is still running"};
    const std::string age = " (checked " + seconds_ago(now - checked_at_) + " ago)";
    if (store_problem_) return {false, "store unreachable: " + *store_problem_ + age};
    if (database_problem_) return {false, "database unreadable: " + *database_problem_ + age};
    return {true, {}};
}

std::optional<JobCounts> HealthMonitor::job_counts() const {
    std::lock_guard lock(mutex_);
    return counts_;
}

std::uint64_t HealthMonitor::store_recoveries() const {
    std::lock_guard lock(mutex_);
    return recoveries_;
}

}  // namespace imgspool
