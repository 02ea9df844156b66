#include "daemon/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

namespace imgspool {
namespace {

// The holder writes its pid right after it takes the lock; a refused instance that looks in
// between reads an empty file, so it looks again for a moment before saying "unknown".
std::string describe_holder(const std::filesystem::path& file) {
    for (int attempt = 0; attempt < 10; ++attempt) {
        if (const pid_t pid = lock_holder_pid(file); pid > 0) {
            return "imgspool pid " + std::to_string(pid);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "another imgspool (pid unknown)";
}

// Why `fd`'s file cannot be locked in `wanted` mode right now. The holder's kind is seen by
// trying the other mode: a shared lock granted while an exclusive one is refused means the
// holders share it. The probe's lock goes with `fd` (the refused process's own descriptor).
Error refusal(int fd, const std::filesystem::path& file, const std::string& what, LockMode wanted) {
    if (wanted == LockMode::shared) {
        return make_error(Stage::config,
                          what + " is in use by " + describe_holder(file) + " (SQLite)");
    }
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
        return make_error(Stage::config, what +
                                             " is used by imgspool nodes sharing a database "
                                             "(shared lock on " +
                                             file.string() + "); a SQLite daemon cannot join them");
    }
    return make_error(Stage::config, what + " is in use by " + describe_holder(file) + " (lock " +
                                         file.string() + ")");
}

Status write_pid(int fd) {
    const std::string text = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
        return make_error(Stage::config, "cannot write the pid: " + fs::errno_text(errno));
    }
    return ok_status();
}

}  // namespace

pid_t lock_holder_pid(const std::filesystem::path& file) {
    fs::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return -1;
    char buf[32] = {};
    const ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    char* end = nullptr;
    const long pid = std::strtol(buf, &end, 10);
    if (end == buf || pid <= 0 || (*end != '\n' && *end != '\0')) return -1;
    return static_cast<pid_t>(pid);
}

Result<InstanceLock> InstanceLock::acquire(const std::filesystem::path& file,
                                           const std::string& what, LockMode mode) {
    if (Status st = fs::make_dirs(file.parent_path()); !st) return st.error();
    fs::UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd.valid()) {
        return make_error(Stage::config,
                          "cannot open the lock file of " + what + ": " + fs::errno_text(errno),
                          file.string());
    }
    const int operation = mode == LockMode::shared ? LOCK_SH : LOCK_EX;
    if (::flock(fd.get(), operation | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            return make_error(Stage::config, "cannot lock " + what + ": " + fs::errno_text(errno),
                              file.string());
        }
        return refusal(fd.get(), file, what, mode);
    }
    // A shared holder's identity is in the job record's nodes, not here.
    if (mode == LockMode::shared) return InstanceLock(std::move(fd), file);
    if (Status st = write_pid(fd.get()); !st) {
        return make_error(Stage::config, "lock of " + what + ": " + st.error().reason,
                          file.string());
    }
    return InstanceLock(std::move(fd), file);
}

LockMode spool_lock_mode(const Config& config) {
    // The same test as uses_postgresql() (open_job_db.hpp), which this file does not link.
    return config.database.url.empty() ? LockMode::exclusive : LockMode::shared;
}

Result<InstanceLock> lock_spool(const SpoolLayout& spool, LockMode mode) {
    return InstanceLock::acquire(
        spool_lock_path(spool),
        "spool root " + spool.root.string() + " (spool \"" + spool.name + "\")", mode);
}

Result<std::vector<InstanceLock>> lock_instance(const Config& config) {
    std::vector<InstanceLock> locks;
    auto state = InstanceLock::acquire(state_lock_path(config),
                                       "state_dir " + config.daemon.state_dir.string());
    if (!state) return state.error();
    locks.push_back(std::move(state).value());
    const LockMode mode = spool_lock_mode(config);
    for (const SpoolLayout& spool : config.spools) {
        auto lock = lock_spool(spool, mode);
        if (!lock) return lock.error();
        locks.push_back(std::move(lock).value());
    }
    return locks;
}

}  // namespace imgspool
