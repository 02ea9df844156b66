// Notices files in the spools' inbox/ folders (inotify + start-up scan + periodic rescan, or
// for a spool with watch = poll a listing every poll period and no inotify watch at all) and
// reports each one once it has stopped changing for settle_ms.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/progress_tracker.hpp"
#include "common/spool_layout.hpp"

namespace imgspool {

struct StableFile {
    std::string spool;               // SpoolLayout::name
    std::filesystem::path path;      // absolute path in inbox/
    std::filesystem::path relative;  // path relative to inbox/ ("sub/a.jpg")
    bool regular = true;  // false: a symlink, FIFO, socket or device (never opened or followed)
    // Set when the file stayed incomplete and unchanged for abandon_after: why it is not whole,
    // how long it waited and its size; the callback fails it with this reason.
    std::string abandoned;
};

// What the callback did with a stable file.
enum class Offer {
    taken,      // claimed, or dealt with for good
    try_later,  // not now (e.g. the database is busy): offered again after another settle period
};

// A file in an inbox that has settled but is not whole yet.
struct WaitingFileInfo {
    std::string spool;
    std::filesystem::path relative;
    std::uint64_t size = 0;
    std::string reason;
    std::chrono::system_clock::time_point since;  // unchanged since
};

struct WatcherOptions {
    std::vector<SpoolLayout> spools;
    std::chrono::milliseconds settle{2000};
    std::chrono::seconds rescan{30};
    // A file incomplete and unchanged this long is reported with StableFile::abandoned set.
    std::chrono::seconds abandon_after{3600};
    // Files larger than this are not read to judge their format (the size limit fails them).
    std::uint64_t max_judged_bytes = 64ull * 1024 * 1024;
    // Where the watcher keeps its wake-up file (the daemon passes its state_dir, so a crash
    // leaves nothing in the temp directory); empty: a temporary folder of its own.
    std::filesystem::path wake_dir{};
    // When set, the reader and the settler beat a heartbeat of their own here as they go round
    // (the settler is parked while on_stable runs: it then waits for the queue, i.e. the workers).
    ProgressTracker* progress = nullptr;
};

struct WatcherStats {
    std::atomic<std::uint64_t> overflows{0};
    std::atomic<std::uint64_t> rescans{0};
    std::atomic<std::uint64_t> events{0};
    std::atomic<std::uint64_t> polls{0};  // listings of a poll spool (besides the rescans)
};

// A file is reported only when it is whole: unchanged for settle, no other process on this host
// has it open for writing (asked with a read lease), and its format says all of it is there
// (JPEG end-of-image marker, PNG IEND, WebP RIFF size). Dotfiles and temporary names (*.part,
// *.filepart, *.tmp, *.crdownload, rsync's .name.XXXXXX) are ignored until renamed to their final
// name.
bool is_ignored_name(std::string_view filename);

class SpoolWatcher {
  public:
    // on_stable is called from the watcher's own thread, one file at a time; it may block
    // (back-pressure). A file is reported again only if it is still in inbox/ and changes or
    // is found by a later rescan after on_stable returned (an unchanged file at most once per
    // rescan period). on_stable must not call stop().
    using Callback = std::function<Offer(const StableFile&)>;

    SpoolWatcher(WatcherOptions options, Callback on_stable);
    ~SpoolWatcher();  // stops
    SpoolWatcher(const SpoolWatcher&) = delete;
    SpoolWatcher& operator=(const SpoolWatcher&) = delete;

    // Creates inbox/ if missing, arms the watches, scans what is already there, starts threads.
    Status start();
    // Stops reporting; returns once the threads have ended (so it waits for an on_stable that
    // is running). Idempotent.
    void stop();

    bool armed() const;
    const WatcherStats& stats() const;
    // Files that settled but are not whole yet, oldest first. Any thread.
    std::vector<WaitingFileInfo> waiting_files() const;

    // Test hooks, for a started watcher.
    // The reader handles an event with this mask (e.g. IN_Q_OVERFLOW) as if the kernel sent it.
    void inject_event_for_test(std::uint32_t mask);
    // While on, inotify events are read and thrown away (as on NFS, where inotify sees nothing):
    // only the start-up scan and rescans (periodic or after an overflow) find files.
    void drop_events_for_test(bool on);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace imgspool
