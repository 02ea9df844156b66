// The watcher's only door to libinotifytools. The library keeps all its state process-global
// and returns each event in static storage, so:
//   * open() is THE place that allows one active user per process (a second open() fails
//     until the first InotifySource is destroyed);
//   * after open(), every member except wake(), inject() and drop_events() must be called
//     from one thread only (the watcher's reader thread); events are copied out at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/error.hpp"

namespace imgspool {

struct InotifyEvent {
    int wd = -1;
    std::uint32_t mask = 0;
    std::string name;  // entry name inside the watched folder; empty for events on the folder
};

class InotifySource {
  public:
    // Fails (Stage::watch) if another InotifySource is alive in this process, or if the
    // kernel refuses an inotify instance. The wake-up file is wake_dir/watcher.wake (created
    // if missing, kept and reused by the next start); with no wake_dir, a private temporary
    // folder removed by the destructor (for tests: a crash would leave that folder behind).
    static Result<std::unique_ptr<InotifySource>> open(const std::filesystem::path& wake_dir = {});
    ~InotifySource();
    InotifySource(const InotifySource&) = delete;
    InotifySource& operator=(const InotifySource&) = delete;

    // Watches one folder (not its subfolders; never through a symlink). Returns its wd.
    Result<int> watch_folder(const std::filesystem::path& dir);
    // True if the library still holds an entry for dir (after the folder was deleted the
    // library keeps it, and would hand back the dead wd for a new folder of the same name).
    bool remembers(const std::filesystem::path& dir) const;
    // Removes a live watch.
    void unwatch(int wd);
    // Forgets every watch and starts again with a fresh inotify instance.
    Status reset();

    // The next event, waiting at most a second. nullopt on timeout, wake() or a read error.
    std::optional<InotifyEvent> next();

    // Any thread: makes a waiting next() return now.
    void wake();
    // Any thread, test hook: next() returns an event with this mask (e.g. IN_Q_OVERFLOW)
    // before any real one, as if the kernel had sent it.
    void inject(std::uint32_t mask);
    // Any thread, test hook: while on, real events are read and thrown away, as on an NFS
    // mount where inotify sees nothing; only scans find files.
    void drop_events(bool on) { dropping_ = on; }

  private:
    InotifySource() = default;
    void make_wake_file(const std::filesystem::path& wake_dir);
    void arm_wake();
    std::optional<InotifyEvent> take_injected();

    // Wake-up: the library offers no fd and waits in whole seconds, so a file is watched and
    // touched by wake().
    std::filesystem::path wake_file_;
    std::filesystem::path temp_dir_;  // the private folder made when no wake_dir was given
    int wake_wd_ = -1;

    std::mutex injected_mutex_;
    std::deque<std::uint32_t> injected_;
    std::atomic<bool> dropping_{false};
};

}  // namespace imgspool
