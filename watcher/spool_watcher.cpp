// Two threads: the reader owns libinotifytools (events, folder watches, scans) and feeds the
// SettleTracker; the settler lstat()s waiting files every tick and calls on_stable, so a
// blocking callback never stops the reader from draining the kernel queue.
#include "watcher/spool_watcher.hpp"

#include <sys/inotify.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "watcher/file_state.hpp"
#include "watcher/ignored_names.hpp"
#include "watcher/inotify_source.hpp"
#include "watcher/settle_tracker.hpp"

namespace imgspool {

namespace {

using Clock = std::chrono::steady_clock;
namespace stdfs = std::filesystem;

// How often the settler looks at waiting files, the settle precision: a tenth of settle_ms,
// within 5..50 ms, so a short settle is not stretched by half a tick on average.
std::chrono::milliseconds settle_tick(std::chrono::milliseconds settle) {
    return std::clamp(settle / 10, std::chrono::milliseconds(5), std::chrono::milliseconds(50));
}

}  // namespace

struct SpoolWatcher::Impl {
    Impl(WatcherOptions o, Callback cb)
        : options(std::move(o)),
          on_stable(std::move(cb)),
          tracker(options.settle,
                  std::chrono::duration_cast<std::chrono::milliseconds>(options.rescan)) {}

    WatcherOptions options;
    Callback on_stable;
    WatcherStats stats;
    std::atomic<bool> armed{false};
    std::atomic<bool> stopping{false};
    bool started = false;                   // start() succeeded once; a watcher is not restarted
    std::unique_ptr<InotifySource> source;  // set before the threads start, reset after
    std::thread reader;
    std::thread settler;

    std::mutex mutex;  // guards tracker
    std::condition_variable settler_wakeup;
    SettleTracker tracker;

    // Reader-thread state (also used by start() before the threads exist).
    struct Folder {
        std::size_t spool;
        stdfs::path relative;
    };
    std::unordered_map<int, Folder> folder_by_wd;
    std::map<std::pair<std::size_t, std::string>, int> wd_by_folder;
    bool reset_needed = false;
    bool rescan_now = false;
    Clock::time_point next_rescan;

    stdfs::path inbox_path(std::size_t spool, const stdfs::path& relative) const {
        return relative.empty() ? options.spools[spool].inbox()
                                : options.spools[spool].inbox() / relative;
    }

    Status sync_folder(std::size_t spool, const stdfs::path& relative);
    void unwatch_folder(std::size_t spool, const stdfs::path& relative, bool live);
    void scan_all();
    void handle(const InotifyEvent& ev);
    void handle_file(std::size_t spool, const stdfs::path& relative, std::uint32_t mask);
    void reader_loop();
    void settler_loop();
    void report(const FileKey& key, const FileState& state);
};

// Watches the folder (if not yet), then lists it: files go to the tracker as "scanned",
// subfolders are synced in turn. Watch first, list second: nothing written in between is lost.
Status SpoolWatcher::Impl::sync_folder(std::size_t spool, const stdfs::path& relative) {
    const stdfs::path dir = inbox_path(spool, relative);
    if (!wd_by_folder.contains({spool, relative.native()})) {
        if (source->remembers(dir)) {  // a dead watch of an earlier folder with this name
            reset_needed = true;
            return ok_status();
        }
        Result<int> wd = source->watch_folder(dir);
        if (!wd) return wd.error();
        folder_by_wd[*wd] = Folder{spool, relative};
        wd_by_folder[{spool, relative.native()}] = *wd;
    }
    std::vector<SettleTracker::Sighting> files;
    for (const FolderEntry& e : list_folder(dir)) {
        if (e.state.directory()) {
            if (is_ignored_folder_name(e.name)) continue;
            Status st = sync_folder(spool, relative / e.name);
            if (!st) log::warn("subfolder not watched", {{"reason", st.error().message()}});
            if (reset_needed) return ok_status();
        } else if (!is_ignored_name(e.name)) {
            files.emplace_back(FileKey{spool, relative / e.name}, e.state);
        }
    }
    const auto now = Clock::now();
    std::lock_guard lock(mutex);
    for (const auto& [key, state] : files) tracker.scanned(key, *state, now);
    return ok_status();
}

// Drops the watches of a folder and everything under it. live: the kernel watch still exists
// (the folder was moved), so the library can remove it; after a delete it is already gone.
void SpoolWatcher::Impl::unwatch_folder(std::size_t spool, const stdfs::path& relative, bool live) {
    const std::string& rel = relative.native();
    const std::string prefix = rel.empty() ? "" : rel + "/";
    auto drop = [&](auto it) {
        if (live) source->unwatch(it->second);
        folder_by_wd.erase(it->second);
        return wd_by_folder.erase(it);
    };
    if (auto it = wd_by_folder.find({spool, rel}); it != wd_by_folder.end()) drop(it);
    auto it = wd_by_folder.lower_bound({spool, prefix});
    while (it != wd_by_folder.end() && it->first.first == spool &&
           std::string_view(it->first.second).starts_with(prefix)) {
        it = drop(it);
    }
    std::lock_guard lock(mutex);
    tracker.forget_folder(spool, relative);
}

void SpoolWatcher::Impl::scan_all() {
    for (std::size_t i = 0; i < options.spools.size() && !reset_needed; ++i) {
        Status st = sync_folder(i, {});
        if (!st) log::warn("inbox not watched", {{"reason", st.error().message()}});
    }
    stats.rescans++;
    rescan_now = false;
    next_rescan = Clock::now() + options.rescan;
}

void SpoolWatcher::Impl::handle(const InotifyEvent& ev) {
    stats.events++;
    if (ev.mask & IN_Q_OVERFLOW) {
        stats.overflows++;
        rescan_now = true;
        log::warn("inotify queue overflowed; rescanning the inboxes");
        return;
    }
    auto found = folder_by_wd.find(ev.wd);
    if (found == folder_by_wd.end()) return;  // a folder no longer watched
    const Folder folder = found->second;
    if (ev.mask & IN_IGNORED) {
        wd_by_folder.erase({folder.spool, folder.relative.native()});
        folder_by_wd.erase(found);
        return;
    }
    if (ev.mask & IN_MOVE_SELF) {  // events would now carry the wrong path
        unwatch_folder(folder.spool, folder.relative, true);
        if (folder.relative.empty()) {
            log::warn("inbox folder was moved away",
                      {{"spool", options.spools[folder.spool].name}});
        }
        return;
    }
    if (ev.name.empty()) return;
    const stdfs::path relative = folder.relative / ev.name;
    if (ev.mask & IN_ISDIR) {
        if (ev.mask & (IN_MOVED_FROM | IN_DELETE)) {
            unwatch_folder(folder.spool, relative, ev.mask & IN_MOVED_FROM);
        } else if ((ev.mask & (IN_CREATE | IN_MOVED_TO)) && !is_ignored_folder_name(ev.name)) {
            Status st = sync_folder(folder.spool, relative);
            if (!st) log::warn("subfolder not watched", {{"reason", st.error().message()}});
        }
        return;
    }
    if (!is_ignored_name(ev.name)) handle_file(folder.spool, relative, ev.mask);
}

void SpoolWatcher::Impl::handle_file(std::size_t spool, const stdfs::path& relative,
                                     std::uint32_t mask) {
    const FileKey key{spool, relative};
    std::optional<FileState> state;
    if (!(mask & (IN_MOVED_FROM | IN_DELETE))) state = lstat_state(inbox_path(spool, relative));
    const auto now = Clock::now();
    std::lock_guard lock(mutex);
    if (!state) {
        tracker.forget(key);
    } else if (state->directory()) {
        return;  // replaced by a folder since the event; its own event follows
    } else if ((mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) ||
               ((mask & IN_CREATE) && !state->regular())) {
        tracker.noticed(key, *state, now);  // a FIFO or symlink is never closed after writing
    } else {
        tracker.touched(key, *state, now);
    }
}

void SpoolWatcher::Impl::reader_loop() {
    while (!stopping) {
        if (std::optional<InotifyEvent> ev = source->next()) handle(*ev);
        if (stopping) break;
        if (reset_needed) {
            // The library cannot forget a deleted folder; start over with a fresh instance.
            folder_by_wd.clear();
            wd_by_folder.clear();
            reset_needed = false;
            if (Status st = source->reset(); !st) {
                log::error("watcher stopped", {{"reason", st.error().message()}});
                armed = false;
                return;
            }
            scan_all();
        } else if (rescan_now || Clock::now() >= next_rescan) {
            scan_all();
        }
    }
}

void SpoolWatcher::Impl::report(const FileKey& key, const FileState& state) {
    const SpoolLayout& spool = options.spools[key.spool];
    StableFile file{spool.name, spool.inbox() / key.relative, key.relative, state.regular()};
    try {
        on_stable(file);
    } catch (const std::exception& e) {
        log::error("on_stable failed", {{"file", file.path.string()}, {"reason", e.what()}});
    }
}

void SpoolWatcher::Impl::settler_loop() {
    std::unique_lock lock(mutex);
    while (!stopping) {
        settler_wakeup.wait_for(lock, settle_tick(options.settle), [&] { return stopping.load(); });
        if (stopping) break;
        std::vector<FileKey> keys = tracker.waiting();
        lock.unlock();
        std::vector<SettleTracker::Sighting> seen;
        seen.reserve(keys.size());
        for (FileKey& key : keys) {
            auto state = lstat_state(inbox_path(key.spool, key.relative));
            seen.emplace_back(std::move(key), state);
        }
        lock.lock();
        for (const auto& [key, state] : tracker.settled(seen, Clock::now())) {
            if (stopping) break;
            lock.unlock();
            report(key, state);
            auto after = lstat_state(inbox_path(key.spool, key.relative));
            lock.lock();
            tracker.reported(key, after, Clock::now());
        }
    }
}

SpoolWatcher::SpoolWatcher(WatcherOptions options, Callback on_stable)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(on_stable))) {}

SpoolWatcher::~SpoolWatcher() {
    stop();
}

Status SpoolWatcher::start() {
    Impl& m = *impl_;
    if (m.started || m.stopping) {
        return make_error(Stage::watch, "this watcher was already started or stopped");
    }
    if (m.options.settle.count() < 0)
        return make_error(Stage::config, "settle must not be negative");
    if (m.options.rescan.count() < 1) {
        return make_error(Stage::config, "rescan must be at least one second");
    }
    auto source = InotifySource::open(m.options.wake_dir);
    if (!source) return source.error();
    m.source = std::move(*source);
    for (std::size_t i = 0; i < m.options.spools.size(); ++i) {
        Status st = fs::make_dirs(m.options.spools[i].inbox());
        if (st) st = m.sync_folder(i, {});  // arms the watches and does the start-up scan
        if (!st) {
            m.folder_by_wd.clear();
            m.wd_by_folder.clear();
            m.source.reset();
            return make_error(Stage::watch, "cannot watch inbox: " + st.error().reason,
                              st.error().file);
        }
    }
    m.next_rescan = Clock::now() + m.options.rescan;
    m.started = true;
    m.armed = true;
    m.reader = std::thread([&m] { m.reader_loop(); });
    m.settler = std::thread([&m] { m.settler_loop(); });
    log::info("watching inboxes", {{"spools", m.options.spools.size()},
                                   {"settle_ms", static_cast<long long>(m.options.settle.count())},
                                   {"rescan_s", static_cast<long long>(m.options.rescan.count())}});
    return ok_status();
}

void SpoolWatcher::stop() {
    Impl& m = *impl_;
    m.stopping = true;
    if (m.source) m.source->wake();
    {
        std::lock_guard lock(m.mutex);  // the settler is either waiting or sees stopping
    }
    m.settler_wakeup.notify_all();
    if (m.reader.joinable()) m.reader.join();
    if (m.settler.joinable()) m.settler.join();
    m.source.reset();
    m.armed = false;
}

bool SpoolWatcher::armed() const {
    return impl_->armed;
}

const WatcherStats& SpoolWatcher::stats() const {
    return impl_->stats;
}

void SpoolWatcher::inject_event_for_test(std::uint32_t mask) {
    if (impl_->source) impl_->source->inject(mask);
}

void SpoolWatcher::drop_events_for_test(bool on) {
    if (impl_->source) impl_->source->drop_events(on);
}

}  // namespace imgspool
