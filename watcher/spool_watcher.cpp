// Two threads: the reader owns libinotifytools (events, folder watches, scans, polls) and feeds
// the SettleTracker; the settler lstat()s waiting files every tick and calls on_stable, so a
// blocking callback never stops the reader from draining the kernel queue. A poll spool has no
// watch: the reader lists it every poll period (the settler wakes it when one is due), and from
// there on its files settle and are judged exactly like those of a watched spool.
#include "watcher/spool_watcher.hpp"

#include <sys/inotify.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "watcher/file_state.hpp"
#include "watcher/ignored_names.hpp"
#include "watcher/inotify_source.hpp"
#include "watcher/read_lease.hpp"
#include "watcher/settle_tracker.hpp"
#include "watcher/whole_file.hpp"

namespace imgspool {

namespace {

using Clock = std::chrono::steady_clock;
namespace stdfs = std::filesystem;

// How often the settler looks at waiting files, the settle precision: a tenth of settle_ms,
// within 5..50 ms, so a short settle is not stretched by half a tick on average.
std::chrono::milliseconds settle_tick(std::chrono::milliseconds settle) {
    return std::clamp(settle / 10, std::chrono::milliseconds(5), std::chrono::milliseconds(50));
}

// "3 s", "12 min", "1 h", "2 h 30 min": how long a file waited, in a reason a person reads.
std::string describe_duration(std::chrono::nanoseconds d) {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    if (s < 120) return std::to_string(s) + " s";
    if (s < 7200) return std::to_string(s / 60) + " min";
    const auto h = s / 3600, m = (s % 3600) / 60;
    return std::to_string(h) + " h" + (m ? " " + std::to_string(m) + " min" : "");
}

// 3420141 -> "3,420,141"
std::string with_thousands(std::uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// How many skipped names are remembered so each is logged once; past that, no more lines.
constexpr std::size_t kMaxSkipsLogged = 10000;

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

    mutable std::mutex mutex;  // guards tracker
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
    std::vector<Clock::time_point> next_poll;  // by spool; poll spools only
    // The earliest next_poll, for the settler to wake the reader by (next() waits up to a
    // second); max: no poll spool, or the reader was already woken for it.
    std::atomic<Clock::time_point> poll_due{Clock::time_point::max()};

    bool polled(std::size_t spool) const { return options.spools[spool].watch == WatchMode::poll; }

    stdfs::path inbox_path(std::size_t spool, const stdfs::path& relative) const {
        return relative.empty() ? options.spools[spool].inbox()
                                : options.spools[spool].inbox() / relative;
    }

    // Reader-thread only: names already logged as skipped, so each is logged once.
    std::set<std::pair<std::size_t, std::string>> skips_logged;
    // Settler-thread only: spools whose writers cannot be seen (no leases), logged once.
    std::set<std::size_t> blind_logged;

    void note_skipped(std::size_t spool, const stdfs::path& relative, std::string_view why);
    std::string why_not_whole(std::size_t spool, const stdfs::path& path);
    Status sync_folder(std::size_t spool, const stdfs::path& relative,
                       std::set<stdfs::path>* listed = nullptr);
    void unwatch_folder(std::size_t spool, const stdfs::path& relative, bool live);
    Status scan_spool(std::size_t spool);
    void scan_all();
    void poll_due_spools();
    void wake_reader_for_poll();
    void handle(const InotifyEvent& ev);
    void handle_file(std::size_t spool, const stdfs::path& relative, std::uint32_t mask);
    void reader_loop();
    void settler_loop();
    Offer report(const FileKey& key, const FileState& state, std::string abandoned);
};

void SpoolWatcher::Impl::note_skipped(std::size_t spool, const stdfs::path& relative,
                                      std::string_view why) {
    if (skips_logged.size() >= kMaxSkipsLogged) return;
    if (!skips_logged.emplace(spool, relative.native()).second) return;
    log::info("skipped",
              {{"spool", options.spools[spool].name}, {"source", relative.native()}, {"why", why}});
}

// Empty when the file is whole; otherwise why not. A writer is seen through a read lease, which
// the kernel refuses while any descriptor has the file open for writing; where leases are not
// available (NFS, no CAP_LEASE and not the owner) only the format and settle_ms can tell.
std::string SpoolWatcher::Impl::why_not_whole(std::size_t spool, const stdfs::path& path) {
    {
        ReadLease lease = ReadLease::take(path);
        if (lease.writers() == Writers::present) return "open for writing by another process";
        if (lease.writers() == Writers::unknown && blind_logged.insert(spool).second) {
            log::warn(
                "cannot see writers in this inbox; relying on the file's format and settle_ms",
                {{"spool", options.spools[spool].name}, {"reason", lease.reason()}});
        }
    }
    auto judged = judge_file(path, options.max_judged_bytes);
    if (!judged) return {};  // unreadable: claimed, and the pipeline says why it cannot read it
    if (judged->verdict == Wholeness::Verdict::incomplete) return judged->reason;
    return {};
}

// Watches the folder (if not yet, and not on a poll spool), then lists it: files go to the
// tracker as "scanned", subfolders are synced in turn, and every file found is added to
// `listed` when given. Watch first, list second: nothing written in between is lost.
Status SpoolWatcher::Impl::sync_folder(std::size_t spool, const stdfs::path& relative,
                                       std::set<stdfs::path>* listed) {
    const stdfs::path dir = inbox_path(spool, relative);
    if (!polled(spool) && !wd_by_folder.contains({spool, relative.native()})) {
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
            if (is_ignored_folder_name(e.name)) {
                note_skipped(spool, relative / e.name,
                             "a hidden folder: neither it nor anything inside it is taken");
                continue;
            }
            Status st = sync_folder(spool, relative / e.name, listed);
            if (!st) log::warn("subfolder not watched", {{"reason", st.error().message()}});
            if (reset_needed) return ok_status();
        } else if (!is_ignored_name(e.name)) {
            files.emplace_back(FileKey{spool, relative / e.name}, e.state);
        } else {
            note_skipped(spool, relative / e.name,
                         "a dotfile or temporary name: taken once renamed to its final name");
        }
    }
    if (listed) {
        for (const auto& sighting : files) listed->insert(sighting.first.relative);
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

// Syncs a spool's inbox and everything under it. A poll spool has no delete events: what its
// listing no longer shows is forgotten here, and its next poll is due a poll period later.
Status SpoolWatcher::Impl::scan_spool(std::size_t spool) {
    if (!polled(spool)) return sync_folder(spool, {});
    std::set<stdfs::path> listed;
    Status st = sync_folder(spool, {}, &listed);
    const auto now = Clock::now();
    {
        std::lock_guard lock(mutex);
        if (st) tracker.forget_unlisted(spool, listed);
    }
    next_poll[spool] = now + options.spools[spool].poll;
    poll_due = *std::min_element(next_poll.begin(), next_poll.end());
    return st;
}

void SpoolWatcher::Impl::scan_all() {
    for (std::size_t i = 0; i < options.spools.size() && !reset_needed; ++i) {
        Status st = scan_spool(i);
        if (!st) log::warn("inbox not watched", {{"reason", st.error().message()}});
    }
    stats.rescans++;
    rescan_now = false;
    next_rescan = Clock::now() + options.rescan;
}

void SpoolWatcher::Impl::poll_due_spools() {
    for (std::size_t i = 0; i < options.spools.size(); ++i) {
        if (!polled(i) || Clock::now() < next_poll[i]) continue;
        Status st = scan_spool(i);
        if (!st) log::warn("inbox not polled", {{"reason", st.error().message()}});
        stats.polls++;
    }
}

// Settler thread: a poll is due, so the reader is made to return from its wait (once per poll:
// if the reader moved poll_due on meanwhile, the new time stays).
void SpoolWatcher::Impl::wake_reader_for_poll() {
    Clock::time_point due = poll_due;
    if (Clock::now() < due) return;
    if (poll_due.compare_exchange_strong(due, Clock::time_point::max())) source->wake();
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
        } else if (ev.mask & (IN_CREATE | IN_MOVED_TO)) {
            if (is_ignored_folder_name(ev.name)) {
                note_skipped(folder.spool, relative,
                             "a hidden folder: neither it nor anything inside it is taken");
                return;
            }
            Status st = sync_folder(folder.spool, relative);
            if (!st) log::warn("subfolder not watched", {{"reason", st.error().message()}});
        }
        return;
    }
    if (!is_ignored_name(ev.name)) {
        handle_file(folder.spool, relative, ev.mask);
    } else if (ev.mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
        note_skipped(folder.spool, relative,
                     "a dotfile or temporary name: taken once renamed to its final name");
    }
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
    const std::shared_ptr<Heartbeat> heartbeat = heartbeat_in(options.progress, "watcher reader");
    while (!stopping) {
        // Waiting for the kernel's next event is idle, not stuck, however long the wait (it may
        // outlast a short watchdog interval on a loaded machine).
        heartbeat->park();
        std::optional<InotifyEvent> ev = source->next();
        heartbeat->unpark();
        if (ev) handle(*ev);
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
        } else {
            poll_due_spools();
        }
    }
}

Offer SpoolWatcher::Impl::report(const FileKey& key, const FileState& state,
                                 std::string abandoned) {
    const SpoolLayout& spool = options.spools[key.spool];
    StableFile file{spool.name, spool.inbox() / key.relative, key.relative, state.regular(),
                    std::move(abandoned)};
    try {
        return on_stable(file);
    } catch (const std::exception& e) {
        log::error("on_stable failed", {{"file", file.path.native()}, {"reason", e.what()}});
        return Offer::try_later;
    }
}

void SpoolWatcher::Impl::settler_loop() {
    const std::shared_ptr<Heartbeat> heartbeat = heartbeat_in(options.progress, "watcher settler");
    std::unique_lock lock(mutex);
    while (!stopping) {
        heartbeat->beat();
        settler_wakeup.wait_for(lock, settle_tick(options.settle), [&] { return stopping.load(); });
        if (stopping) break;
        wake_reader_for_poll();
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
            const stdfs::path path = inbox_path(key.spool, key.relative);
            lock.unlock();
            std::string not_whole = state.regular() ? why_not_whole(key.spool, path) : "";
            lock.lock();
            if (!not_whole.empty()) {
                const auto unchanged = tracker.unchanged_for(key, Clock::now());
                if (unchanged < options.abandon_after) {
                    tracker.not_whole(key, std::move(not_whole), Clock::now());
                    continue;
                }
                not_whole += "; unchanged for " + describe_duration(unchanged) + "; " +
                             with_thousands(static_cast<std::uint64_t>(state.size)) + " bytes";
            }
            lock.unlock();
            heartbeat->park();
            const Offer offer = report(key, state, std::move(not_whole));
            heartbeat->unpark();
            auto after = lstat_state(path);
            lock.lock();
            if (offer == Offer::try_later && after && *after == state) {
                tracker.retry_later(key, Clock::now());
            } else {
                tracker.reported(key, after, Clock::now());
            }
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
    std::size_t polled = 0;
    for (const SpoolLayout& spool : m.options.spools) {
        if (spool.watch != WatchMode::poll) continue;
        if (spool.poll.count() < 1) {
            return make_error(Stage::config,
                              "spool " + spool.name + ": poll must be at least one second");
        }
        ++polled;
    }
    m.next_poll.assign(m.options.spools.size(), Clock::time_point::max());
    auto source = InotifySource::open(m.options.wake_dir);
    if (!source) return source.error();
    m.source = std::move(*source);
    for (std::size_t i = 0; i < m.options.spools.size(); ++i) {
        Status st = fs::make_dirs(m.options.spools[i].inbox());
        if (st) st = m.scan_spool(i);  // arms the watches and does the start-up scan
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
                                   {"polled", polled},
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

std::vector<WaitingFileInfo> SpoolWatcher::waiting_files() const {
    // Whole seconds, so the same file reads the same at every call.
    const auto steady_now = Clock::now();
    const auto wall_now = std::chrono::system_clock::now();
    std::vector<WaitingFileInfo> files;
    std::lock_guard lock(impl_->mutex);
    for (const auto& f : impl_->tracker.not_whole_files()) {
        files.push_back(
            {impl_->options.spools[f.key.spool].name, f.key.relative,
             static_cast<std::uint64_t>(f.state.size), f.reason,
             std::chrono::floor<std::chrono::seconds>(
                 wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                steady_now - f.changed_at))});
    }
    std::sort(files.begin(), files.end(),
              [](const WaitingFileInfo& a, const WaitingFileInfo& b) { return a.since < b.since; });
    return files;
}

void SpoolWatcher::inject_event_for_test(std::uint32_t mask) {
    if (impl_->source) impl_->source->inject(mask);
}

void SpoolWatcher::drop_events_for_test(bool on) {
    if (impl_->source) impl_->source->drop_events(on);
}

}  // namespace imgspool
