#include "daemon/service_reporter.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace imgspool {
namespace {

using Clock = std::chrono::steady_clock;

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

}  // namespace

ServiceReporter::ServiceReporter(ServiceNotifier& notifier, ServiceReporterHooks hooks,
                                 std::chrono::milliseconds status_every)
    : notifier_(notifier), hooks_(std::move(hooks)), status_every_(status_every) {}

ServiceReporter::~ServiceReporter() {
    stop();
}

void ServiceReporter::start() {
    if (!notifier_.enabled() || thread_.joinable()) return;
    thread_ = std::thread([this] { loop(); });
}

void ServiceReporter::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ServiceReporter::loop() {
    const auto watchdog = notifier_.watchdog_interval();
    const auto ping_every = std::chrono::duration_cast<Clock::duration>(
        watchdog.value_or(std::chrono::microseconds(0)) / 2);
    auto next_ping = watchdog ? Clock::now() : Clock::time_point::max();
    auto next_status = Clock::now();
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        const auto now = Clock::now();
        lock.unlock();
        if (now >= next_ping) {
            ping_if_alive();
            next_ping = now + ping_every;
        }
        if (now >= next_status) {
            notifier_.status(hooks_.status_line() + stuck_note_);
            next_status = now + status_every_;
        }
        lock.lock();
        wake_.wait_until(lock, std::min(next_ping, next_status), [this] { return stopping_; });
    }
}

void ServiceReporter::ping_if_alive() {
    const auto limit = std::chrono::duration_cast<Clock::duration>(*notifier_.watchdog_interval());
    const std::vector<std::string> stuck = hooks_.stuck(limit);
    if (stuck.empty()) {
        if (stuck_logged_) log::info("progress again: pinging the systemd watchdog again");
        stuck_logged_ = false;
        stuck_note_.clear();
        notifier_.watchdog();
        return;
    }
    stuck_note_ = "; stuck: " + joined(stuck);
    if (!stuck_logged_) {
        // systemd ends the daemon once WatchdogSec passes without a ping; Restart= brings it back.
        log::error("no progress: not pinging the systemd watchdog", {{"stuck", joined(stuck)}});
        stuck_logged_ = true;
    }
}

}  // namespace imgspool
