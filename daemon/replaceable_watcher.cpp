#include "daemon/replaceable_watcher.hpp"

#include "common/log.hpp"

namespace imgspool {

ReplaceableWatcher::ReplaceableWatcher(SpoolWatcher::Callback on_stable, ProgressTracker* progress)
    : on_stable_(std::move(on_stable)), progress_(progress) {}

ReplaceableWatcher::~ReplaceableWatcher() {
    stop();
}

Status ReplaceableWatcher::launch(WatcherOptions options) {
    options.progress = progress_;
    auto watcher = std::make_unique<SpoolWatcher>(options, on_stable_);
    if (Status st = watcher->start(); !st) return st;
    std::lock_guard lock(mutex_);
    watcher_ = std::move(watcher);
    options_ = options;
    return ok_status();
}

Status ReplaceableWatcher::start(WatcherOptions options) {
    return launch(std::move(options));
}

// Takes the running watcher out of reach of the other threads, stops it outside the lock (it
// waits for a callback in progress) and keeps its counters.
void ReplaceableWatcher::retire() {
    std::unique_ptr<SpoolWatcher> old;
    {
        std::lock_guard lock(mutex_);
        old = std::move(watcher_);
    }
    if (!old) return;
    old->stop();
    std::lock_guard lock(mutex_);
    retired_overflows_ += old->stats().overflows.load();
    retired_rescans_ += old->stats().rescans.load();
}

Status ReplaceableWatcher::replace(WatcherOptions options) {
    const WatcherOptions previous = options_;
    retire();
    Status st = launch(options);
    if (st) return st;
    if (Status again = launch(previous); !again) {
        log::error("cannot watch the spools again after a failed reload",
                   {{"error", again.error().message()}});
    }
    return st;
}

void ReplaceableWatcher::stop() {
    retire();
}

bool ReplaceableWatcher::armed() const {
    std::lock_guard lock(mutex_);
    return watcher_ && watcher_->armed();
}

std::uint64_t ReplaceableWatcher::overflows() const {
    std::lock_guard lock(mutex_);
    return retired_overflows_ + (watcher_ ? watcher_->stats().overflows.load() : 0);
}

std::uint64_t ReplaceableWatcher::rescans() const {
    std::lock_guard lock(mutex_);
    return retired_rescans_ + (watcher_ ? watcher_->stats().rescans.load() : 0);
}

std::vector<WaitingFileInfo> ReplaceableWatcher::waiting_files() const {
    std::lock_guard lock(mutex_);
    return watcher_ ? watcher_->waiting_files() : std::vector<WaitingFileInfo>{};
}

}  // namespace imgspool
