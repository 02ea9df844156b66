// The daemon's SpoolWatcher, replaced by a new one when a configuration reload changes the
// spools or the watcher's settings (settle_ms, rescan_s, abandon_after_s, max_bytes). The
// counters and readiness asked by /metrics and /readyz follow whichever watcher runs.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/error.hpp"
#include "watcher/spool_watcher.hpp"

namespace imgspool {

class ReplaceableWatcher {
  public:
    // progress (may be null): where every watcher's threads beat (WatcherOptions::progress).
    explicit ReplaceableWatcher(SpoolWatcher::Callback on_stable,
                                ProgressTracker* progress = nullptr);
    ~ReplaceableWatcher();  // stop()
    ReplaceableWatcher(const ReplaceableWatcher&) = delete;
    ReplaceableWatcher& operator=(const ReplaceableWatcher&) = delete;

    // start, replace and stop: from one thread (the daemon's main thread).
    Status start(WatcherOptions options);
    // Stops the running watcher (waiting for a file being handed over), then starts one with
    // `options`. Files in the inboxes are found again by the new watcher's start-up scan; a
    // file that was settling settles again. If the new one cannot start, one with the old
    // options runs again and the error is returned.
    Status replace(WatcherOptions options);
    void stop();

    // Any thread.
    bool armed() const;
    std::uint64_t overflows() const;  // over every watcher so far
    std::uint64_t rescans() const;
    std::vector<WaitingFileInfo> waiting_files() const;

  private:
    // Installs a started watcher, or returns why it did not start.
    Status launch(WatcherOptions options);
    void retire();

    SpoolWatcher::Callback on_stable_;
    ProgressTracker* progress_;
    WatcherOptions options_;  // of the running watcher

    mutable std::mutex mutex_;  // guards the members below
    std::unique_ptr<SpoolWatcher> watcher_;
    std::uint64_t retired_overflows_ = 0;
    std::uint64_t retired_rescans_ = 0;
};

}  // namespace imgspool
