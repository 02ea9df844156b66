// The service manager's notification protocol (sd_notify(3)) without libsystemd: each message is
// one datagram of "KEY=VALUE" lines on the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
// "@name" for an abstract socket). Without $NOTIFY_SOCKET every call does nothing, so the daemon
// behaves the same outside systemd.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/fs.hpp"

namespace imgspool {

// The watchdog interval systemd asks for: $WATCHDOG_USEC (a positive number of microseconds),
// meant for `self` unless $WATCHDOG_PID names another process. nullopt: no watchdog. Both
// arguments may be null (unset).
std::optional<std::chrono::microseconds> parse_watchdog_interval(const char* watchdog_usec,
                                                                 const char* watchdog_pid,
                                                                 pid_t self);

class ServiceNotifier {
  public:
    // From $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID.
    static ServiceNotifier from_environment();
    // `socket`: $NOTIFY_SOCKET's value; empty: every call is a no-op.
    ServiceNotifier(std::string_view socket, std::optional<std::chrono::microseconds> watchdog);
    ServiceNotifier(const ServiceNotifier&) = delete;
    ServiceNotifier& operator=(const ServiceNotifier&) = delete;

    // Thread-safe; never blocks (a full queue on the manager's side drops the message) and never
    // fails the caller: the first failed send is logged, later ones are not.
    void ready() { send("READY=1"); }
    // "RELOADING=1" with the monotonic time the reload began (systemd 253's Type=notify-reload
    // wants it; older managers ignore it). Send ready() once the reload is done.
    void reloading();
    void stopping() { send("STOPPING=1"); }
    // One line shown by `systemctl status`; line breaks become spaces.
    void status(std::string_view line);
    void watchdog() { send("WATCHDOG=1"); }

    // How often systemd wants WATCHDOG=1 at the latest (WatchdogSec=); ping at half of it.
    std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_; }
    // Whether messages go anywhere.
    bool enabled() const { return fd_.valid(); }

    // Sends one message as it is; false if it could not be sent (or there is no socket).
    bool send(std::string_view message);

  private:
    fs::UniqueFd fd_;
    sockaddr_un address_{};
    socklen_t address_size_ = 0;
    std::optional<std::chrono::microseconds> watchdog_;
    std::atomic<bool> failure_logged_{false};
};

}  // namespace imgspool
