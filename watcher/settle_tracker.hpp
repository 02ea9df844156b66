// Decides when an inbox file has stopped changing. Pure bookkeeping: callers feed it what
// inotify and lstat saw together with the time, so tests can drive it with a fake clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
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
    // A scan of the whole spool listed `present` (paths under inbox/): a file tracked for it
    // and not listed was deleted or moved away, as a delete event would have said on a watched
    // spool, and is forgotten. A file being reported is left to reported().
    void forget_unlisted(std::size_t spool, const std::set<std::filesystem::path>& present);

    // Files waiting to settle: lstat these and pass the results to settled().
    std::vector<FileKey> waiting() const;
    // Returns the files unchanged for `settle`, with their state; they stay "in flight"
    // (never returned again) until reported() is called for them.
    std::vector<std::pair<FileKey, FileState>> settled(const std::vector<Sighting>& seen,
                                                       TimePoint now);
    // The callback for key returned; `after` is its lstat now (nullopt: claimed or gone). A
    // file that changed while the callback ran waits to settle again.
    void reported(const FileKey& key, const std::optional<FileState>& after, TimePoint now);

    // A settled file that is not whole yet (its format says so, or a writer has it open): it
    // waits another settle period and is listed by not_whole_files() with the reason until it
    // is claimed or gone.
    void not_whole(const FileKey& key, std::string reason, TimePoint now);
    // A settled file that could not be taken now (e.g. the database is busy): offered again
    // after another settle period.
    void retry_later(const FileKey& key, TimePoint now);
    // How long the file's size, times and inode have stayed the same (0 for an unknown file).
    std::chrono::nanoseconds unchanged_for(const FileKey& key, TimePoint now) const;

    struct NotWhole {
        FileKey key;
        FileState state;
        std::string reason;
        TimePoint changed_at;  // last change seen
    };
    std::vector<NotWhole> not_whole_files() const;

    std::size_t size() const { return entries_.size(); }

  private:
    enum class Phase { waiting, in_flight, reported };
    struct Entry {
        Phase phase = Phase::waiting;
        FileState state;
        TimePoint since;               // waiting: last change seen or last judged; reported: when
        TimePoint changed_at;          // when state last changed
        std::string not_whole_reason;  // set while the file is known to be incomplete
    };
    void wait_again(Entry& e, const FileState& state, TimePoint now);

    std::chrono::milliseconds settle_;
    std::chrono::milliseconds repeat_after_;
    std::map<FileKey, Entry> entries_;
};

}  // namespace imgspool
