// Signal handling of the imgspool process: which signals are ignored everywhere, and how the
// daemon waits for the ones that stop it.
#pragma once

#include <signal.h>

namespace imgspool {

// For every command, before any thread starts: SIGPIPE is ignored (a peer that hangs up on a
// socket or pipe gives EPIPE on that write, never the death of the process) and so is SIGIO,
// the signal the kernel sends when a read lease taken by the completeness check is broken.
void ignore_process_signals();

// What the daemon's main loop was woken for.
enum class DaemonSignal {
    none,    // a second passed
    stop,    // SIGTERM or SIGINT
    reload,  // SIGHUP: read the configuration again
};

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and in every thread started after it
// (construct it before any thread), so that only wait() sees them.
class StopSignals {
  public:
    StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    // Waits up to one second for one of them (logged).
    DaemonSignal wait() const;

  private:
    sigset_t set_;
};

}  // namespace imgspool
