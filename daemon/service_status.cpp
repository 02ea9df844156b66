#include "daemon/service_status.hpp"

#include <chrono>

namespace imgspool {
namespace {

long utc_day(std::chrono::system_clock::time_point t) {
    return static_cast<long>(std::chrono::floor<std::chrono::days>(t).time_since_epoch().count());
}

}  // namespace

std::string format_service_status(const ServiceStatus& s) {
    return std::to_string(s.in_flight) + " in flight, " + std::to_string(s.queued) + " queued, " +
           std::to_string(s.waiting) + " waiting, " + std::to_string(s.deferred) +
           " deferred; today " + std::to_string(s.done_today) + " done, " +
           std::to_string(s.failed_today) + " failed";
}

void JobsToday::seed(JobDb& db) {
    const auto now = std::chrono::system_clock::now();
    const auto since_midnight = now - std::chrono::floor<std::chrono::days>(now);
    const int hours =
        static_cast<int>(std::chrono::duration_cast<std::chrono::hours>(since_midnight).count()) +
        1;
    auto rows = db.throughput_per_hour(hours);
    if (!rows) return;
    const std::string today = iso_utc(now).substr(0, 10);  // "2026-11-22"
    Counts seeded;
    for (const HourThroughput& h : rows.value()) {
        if (h.hour.compare(0, today.size(), today) != 0) continue;
        seeded.done += h.completed;
        seeded.failed += h.failed;
    }
    std::lock_guard lock(mutex_);
    day_ = utc_day(now);
    counts_ = seeded;
}

void JobsToday::job_finished(const JobOutcome& out) {
    // A failure that could not be recorded runs (and is reported) again; a committed job whose
    // original could not leave work/ yet is done and is not reported again.
    if (out.retry_at && !out.success) return;
    std::lock_guard lock(mutex_);
    roll_over(utc_day(std::chrono::system_clock::now()));
    ++(out.success ? counts_.done : counts_.failed);
}

JobsToday::Counts JobsToday::counts() const {
    std::lock_guard lock(mutex_);
    roll_over(utc_day(std::chrono::system_clock::now()));
    return counts_;
}

void JobsToday::roll_over(long day) const {
    if (day == day_) return;
    day_ = day;
    counts_ = {};
}

}  // namespace imgspool
