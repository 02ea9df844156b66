// `imgspool reload -c CONFIG`: sends SIGHUP to the daemon that runs on CONFIG's state_dir, for
// people without systemd (whose ExecReload= does the same).
#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <csignal>
#include <cstdio>

#include "common/fs.hpp"
#include "daemon/commands.hpp"
#include "daemon/instance_lock.hpp"

namespace imgspool {

int reload_daemon(const Config& config) {
    const std::filesystem::path file = state_lock_path(config);
    fs::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid() && errno != ENOENT) {
        std::fprintf(stderr, "imgspool: cannot open %s: %s\n", file.c_str(),
                     fs::errno_text(errno).c_str());
        return 1;
    }
    // The pid in the file is only the daemon's while the lock is held: a daemon that died
    // (kill -9) leaves its pid behind, and that number may belong to another process by now.
    // If this command can take the lock, nobody holds it; it is let go at once. (A daemon that
    // starts in that instant is refused like a second instance, and systemd starts it again.)
    if (!fd.valid() || ::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
        std::fprintf(stderr,
                     "imgspool: no daemon is running on state_dir %s (lock %s is not held)\n",
                     config.daemon.state_dir.c_str(), file.c_str());
        return 1;
    }
    const pid_t pid = lock_holder_pid(file);
    if (pid <= 0) {
        std::fprintf(stderr, "imgspool: the daemon on state_dir %s has not written its pid in %s\n",
                     config.daemon.state_dir.c_str(), file.c_str());
        return 1;
    }
    if (::kill(pid, SIGHUP) != 0) {
        std::fprintf(stderr, "imgspool: cannot send SIGHUP to pid %d: %s\n", static_cast<int>(pid),
                     fs::errno_text(errno).c_str());
        return 1;
    }
    std::printf("sent SIGHUP to imgspool pid %d; its log says whether the reload applied\n",
                static_cast<int>(pid));
    return 0;
}

}  // namespace imgspool
