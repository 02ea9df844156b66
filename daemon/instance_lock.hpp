// One imgspool per state_dir and per spool root: `run` and `process` hold an exclusive flock on
// <state_dir>/imgspool.lock and on <spool root>/.imgspool.lock for as long as they live, with
// their pid written in the file so a refused second instance can name the holder. The kernel
// drops a flock when its holder dies, so a lock left by a killed process never blocks.
// With PostgreSQL as the job record, several nodes share a spool: they hold its lock shared, which
// still keeps a SQLite daemon (exclusive) off the spool, and them off a SQLite daemon's spool.
//
// Caveat (NFS): the Linux NFS client turns flock into a whole-file POSIX lock (cluster-wide unless
// mounted with local_lock=flock|all or nolock), and a POSIX lock is dropped when the holding
// process closes ANY descriptor of that file. So nothing in a process that holds one of these
// locks may open the lock file again: only the refused process reads it (lock_holder_pid), and
// the holder's one descriptor stays open in its InstanceLock until the process ends.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fs.hpp"
#include "daemon/config.hpp"

namespace imgspool {

enum class LockMode {
    exclusive,  // one holder, which writes its pid into the file
    shared,     // several holders (nodes sharing one PostgreSQL job record); no pid written
};

class InstanceLock {
  public:
    // Locks `file` (created if missing, its folder too) without waiting. `what` names the
    // guarded thing for the refusal. Fails (Stage::config) when another process holds it in a
    // mode that excludes `mode`:
    //   exclusive held, exclusive wanted: "state_dir /x is in use by imgspool pid 1234 (lock
    //     /x/imgspool.lock)";
    //   exclusive held, shared wanted: "spool root /x is in use by imgspool pid 1234 (SQLite)";
    //   shared held, exclusive wanted: "spool root /x is used by imgspool nodes sharing a
    //     database (shared lock on /x/.imgspool.lock); a SQLite daemon cannot join them".
    static Result<InstanceLock> acquire(const std::filesystem::path& file, const std::string& what,
                                        LockMode mode = LockMode::exclusive);

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

// How this configuration holds its spool roots: shared when the job record is PostgreSQL
// ([database] url set; several nodes on one spool), exclusive with SQLite.
LockMode spool_lock_mode(const Config& config);

// The lock of one spool root, in `mode`: what lock_instance takes for each spool, and what a
// reload takes for a new one.
Result<InstanceLock> lock_spool(const SpoolLayout& spool, LockMode mode);

// The state_dir's lock (always exclusive: a state_dir is one node's), then each spool root's in
// spool_lock_mode(config), for `run` and `process`; taken before anything else touches the state
// or the spools. All or nothing: on refusal the ones taken are released.
Result<std::vector<InstanceLock>> lock_instance(const Config& config);

}  // namespace imgspool
