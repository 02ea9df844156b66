// One imgspool per state_dir and per spool root: `run` and `process` hold an exclusive flock on
// <state_dir>/imgspool.lock and on <spool root>/.imgspool.lock for as long as they live, with
// their pid written in the file so a refused second instance can name the holder. The kernel
// drops a flock when its holder dies, so a lock left by a killed process never blocks.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fs.hpp"
#include "daemon/config.hpp"

namespace imgspool {

class InstanceLock {
  public:
    // Locks `file` (created if missing, its folder too) without waiting. `what` names the
    // guarded thing for the refusal: "state_dir /x" gives "state_dir /x is in use by imgspool
    // pid 1234 (lock /x/imgspool.lock)". Fails (Stage::config) when another process holds it.
    static Result<InstanceLock> acquire(const std::filesystem::path& file, const std::string& what);

    InstanceLock(InstanceLock&&) noexcept = default;
    InstanceLock& operator=(InstanceLock&&) noexcept = default;
    ~InstanceLock() = default;  // closing the descriptor releases the lock

    const std::filesystem::path& file() const { return file_; }

  private:
    InstanceLock(fs::UniqueFd fd, std::filesystem::path file)
        : fd_(std::move(fd)), file_(std::move(file)) {}

    fs::UniqueFd fd_;
    std::filesystem::path file_;
};

// The pid recorded in a lock file, or -1 when there is none (empty, unreadable, garbage).
pid_t lock_holder_pid(const std::filesystem::path& file);

inline std::filesystem::path state_lock_path(const Config& config) {
    return config.daemon.state_dir / "imgspool.lock";
}
// A dotfile beside inbox/, outside every folder the watcher looks into.
inline std::filesystem::path spool_lock_path(const SpoolLayout& spool) {
    return spool.root / ".imgspool.lock";
}

// The state_dir's lock, then each spool root's, for `run` and `process`; taken before anything
// else touches the state or the spools. All or nothing: on refusal the ones taken are released.
Result<std::vector<InstanceLock>> lock_instance(const Config& config);

}  // namespace imgspool
