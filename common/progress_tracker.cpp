#include "common/progress_tracker.hpp"

#include <algorithm>

namespace imgspool {

std::shared_ptr<Heartbeat> ProgressTracker::add(std::string name) {
    auto heartbeat = std::make_shared<Heartbeat>(std::move(name));
    std::lock_guard lock(mutex_);
    seen_.push_back(Seen{heartbeat});
    return heartbeat;
}

std::vector<std::string> ProgressTracker::stalled(Clock::time_point now, Clock::duration limit) {
    std::lock_guard lock(mutex_);
    std::erase_if(seen_, [](const Seen& s) { return s.heartbeat.expired(); });
    std::vector<std::string> stuck;
    for (Seen& s : seen_) {
        const std::shared_ptr<Heartbeat> heartbeat = s.heartbeat.lock();
        if (!heartbeat) continue;
        const std::uint64_t state = heartbeat->state();
        if (!s.checked || state != s.state) {
            s.state = state;
            s.moved_at = now;
            s.checked = true;
            continue;
        }
        const bool parked = (state & 1u) != 0;
        if (parked || now - s.moved_at <= limit) continue;
        const auto idle = std::chrono::duration_cast<std::chrono::seconds>(now - s.moved_at);
        stuck.push_back(heartbeat->name() + " (no progress for " + std::to_string(idle.count()) +
                        " s)");
    }
    return stuck;
}

std::shared_ptr<Heartbeat> heartbeat_in(ProgressTracker* tracker, std::string name) {
    if (tracker) return tracker->add(std::move(name));
    return std::make_shared<Heartbeat>(std::move(name));
}

}  // namespace imgspool
