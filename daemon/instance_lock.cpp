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
                                           const std::string& what) {
    if (Status st = fs::make_dirs(file.parent_path()); !st) return st.error();
    fs::UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd.valid()) {
        return make_error(Stage::config,
                          "cannot open the lock file of " + what + ": " + fs::errno_text(errno),
                          file.string());
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            return make_error(Stage::config, "cannot lock " + what + ": " + fs::errno_text(errno),
                              file.string());
        }
        return make_error(Stage::config, what + " is in use by " + describe_holder(file) +
                                             " (lock " + file.string() + ")");
    }
    if (Status st = write_pid(fd.get()); !st) {
        return make_error(Stage::config, "lock of " + what + ": " + st.error().reason,
                          file.string());
    }
    return InstanceLock(std::move(fd), file);
}

Result<std::vector<InstanceLock>> lock_instance(const Config& config) {
    std::vector<InstanceLock> locks;
    auto state = InstanceLock::acquire(state_lock_path(config),
                                       "state_dir " + config.daemon.state_dir.string());
    if (!state) return state.error();
    locks.push_back(std::move(state).value());
    for (const SpoolLayout& spool : config.spools) {
        auto lock =
            InstanceLock::acquire(spool_lock_path(spool), "spool root " + spool.root.string() +
                                                              " (spool \"" + spool.name + "\")");
        if (!lock) return lock.error();
        locks.push_back(std::move(lock).value());
    }
    return locks;
}

}  // namespace imgspool
