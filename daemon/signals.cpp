#include "daemon/signals.hpp"

#include <pthread.h>

#include <ctime>

#include "common/log.hpp"
#include "watcher/read_lease.hpp"

namespace imgspool {

void ignore_process_signals() {
    ::signal(SIGPIPE, SIG_IGN);
    // A writer opening a file the completeness check holds a read lease on makes the kernel send
    // SIGIO, whose default action would end the daemon.
    ignore_lease_break_signal();
}

StopSignals::StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

DaemonSignal StopSignals::wait() const {
    timespec tick{1, 0};
    const int sig = sigtimedwait(&set_, nullptr, &tick);
    if (sig == SIGHUP) {
        log::info("SIGHUP received: reloading the configuration");
        return DaemonSignal::reload;
    }
    if (sig == SIGTERM || sig == SIGINT) {
        log::info("stop signal received", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        return DaemonSignal::stop;
    }
    return DaemonSignal::none;
}

}  // namespace imgspool
