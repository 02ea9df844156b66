// Heartbeats of the threads that must keep moving for the daemon to be alive (the watcher's
// threads, every worker), and the check that finds the ones that stopped. The systemd watchdog
// pings only while nothing is stuck, so a wedged worker pool or watcher gets the daemon
// restarted.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace imgspool {

// One thread's heartbeat. Only the owning thread calls beat(), park() and unpark(), so each is
// a single relaxed atomic store (the hot path of a job step); any thread may read it.
class Heartbeat {
  public:
    explicit Heartbeat(std::string name) : name_(std::move(name)) {}
    Heartbeat(const Heartbeat&) = delete;
    Heartbeat& operator=(const Heartbeat&) = delete;

    // The thread moved on (a job reached its next step, a loop went round).
    void beat() noexcept { set(false); }
    // The thread waits for work or for another tracked thread (an idle worker, the watcher
    // handing a file to a full queue): not stuck, however long it waits.
    void park() noexcept { set(true); }
    // Back to work: beats and counts as stuck again once it stops beating.
    void unpark() noexcept { set(false); }

    const std::string& name() const { return name_; }
    // Bit 0: parked; the rest counts the calls above.
    std::uint64_t state() const noexcept { return state_.load(std::memory_order_relaxed); }

  private:
    void set(bool parked) noexcept {
        const std::uint64_t beats = (state_.load(std::memory_order_relaxed) >> 1) + 1;
        state_.store((beats << 1) | (parked ? 1u : 0u), std::memory_order_relaxed);
    }

    const std::string name_;
    std::atomic<std::uint64_t> state_{0};
};

class ProgressTracker {
  public:
    using Clock = std::chrono::steady_clock;

    // A new heartbeat, tracked for as long as its owner keeps the pointer (a thread that ends
    // drops it and is forgotten). Any thread.
    std::shared_ptr<Heartbeat> add(std::string name);

    // The heartbeats that are not parked and have not moved since longer than `limit` before
    // `now`, as "NAME (no progress for N s)". A heartbeat's last move is the first check that
    // saw its new state, so a check every limit/2 finds a stuck thread within 1.5 × limit.
    // Called from one thread (the watchdog's), with `now` never going back.
    std::vector<std::string> stalled(Clock::time_point now, Clock::duration limit);

  private:
    struct Seen {
        std::weak_ptr<Heartbeat> heartbeat;
        std::uint64_t state = 0;
        Clock::time_point moved_at{};
        bool checked = false;  // state and moved_at come from a check
    };

    std::mutex mutex_;
    std::vector<Seen> seen_;
};

// A heartbeat in `tracker`, or an untracked one when there is none (commands without a
// watchdog, tests).
std::shared_ptr<Heartbeat> heartbeat_in(ProgressTracker* tracker, std::string name);

}  // namespace imgspool
