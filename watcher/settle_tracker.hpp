// Decides when an inbox file has stopped changing. Pure bookkeeping: callers feed it what
// inotify and lstat saw together with the time, so tests can drive it with a fake clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "watcher/file_state.hpp"

namespace imgspool {

// One inbox file: which spool (index into WatcherOptions::spools) and its path under inbox/.
struct FileKey {
    std::size_t spool = 0;
    std::filesystem::path relative;
};
bool operator<(const FileKey& a, const FileKey& b);

class SettleTracker {
  public:
    using TimePoint = std::chrono::steady_clock::time_point;
    using Sighting = std::pair<FileKey, std::optional<FileState>>;  // nullopt: gone

    // settle: how long size, mtime (and inode) must stay the same. repeat_after: the shortest
    // time before a file already reported and still unchanged may be reported again by a scan.
    SettleTracker(std::chrono::milliseconds settle, std::chrono::milliseconds repeat_after);

    // Closed after writing, moved in, or a non-regular file created: starts (or restarts) the
    // settle timer. A file already reported is tracked again only if it changed.
    void noticed(const FileKey& key, const FileState& state, TimePoint now);
    // Any other event (modify, attrib, ...): restarts the timer of a file being tracked.
    void touched(const FileKey& key, const FileState& state, TimePoint now);
    // Found by a scan: tracked if new; a reported file again if it changed or if it was
    // reported at least repeat_after ago (so a failed claim is retried, but not in a loop).
    void scanned(const FileKey& key, const FileState& state, TimePoint now);
    // The file was deleted or moved away; a whole folder of them ("" = the whole spool).
    void forget(const FileKey& key);
    void forget_folder(std::size_t spool, const std::filesystem::path& relative_dir);

    // Files waiting to settle: lstat these and pass the results to settled().
    std::vector<FileKey> waiting() const;
    // Returns the files unchanged for `settle`, with their state; they stay "in flight"
    // (never returned again) until reported() is called for them.
    std::vector<std::pair<FileKey, FileState>> settled(const std::vector<Sighting>& seen,
                                                       TimePoint now);
    // The callback for key returned; `after` is its lstat now (nullopt: claimed or gone). A
    // file that changed while the callback ran waits to settle again.
    void reported(const FileKey& key, const std::optional<FileState>& after, TimePoint now);

    std::size_t size() const { return entries_.size(); }

  private:
    enum class Phase { waiting, in_flight, reported };
    struct Entry {
        Phase phase = Phase::waiting;
        FileState state;
        TimePoint since;  // waiting: last change seen; reported: when reported
    };
    void wait_again(Entry& e, const FileState& state, TimePoint now);

    std::chrono::milliseconds settle_;
    std::chrono::milliseconds repeat_after_;
    std::map<FileKey, Entry> entries_;
};

}  // namespace imgspool
