// The daemon's side of systemd's watchdog and status line, on a thread of its own: STATUS=
// every few seconds, and WATCHDOG=1 every WATCHDOG_USEC/2 but only while no tracked thread is
// stuck, so that systemd restarts a daemon whose workers or watcher have wedged.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/service_notifier.hpp"

namespace imgspool {

struct ServiceReporterHooks {
    // The STATUS= line. Called on the reporter's thread: must not wait on the database or the
    // store (a held database must not stop the pings).
    std::function<std::string()> status_line;
    // What is stuck, given how long a step may take (the watchdog interval); empty: all well.
    std::function<std::vector<std::string>(std::chrono::steady_clock::duration limit)> stuck;
};

class ServiceReporter {
  public:
    ServiceReporter(ServiceNotifier& notifier, ServiceReporterHooks hooks,
                    std::chrono::milliseconds status_every = std::chrono::seconds(5));
    ~ServiceReporter();  // stops
    ServiceReporter(const ServiceReporter&) = delete;
    ServiceReporter& operator=(const ServiceReporter&) = delete;

    // Sends the first STATUS= (and WATCHDOG=1) at once; nothing when the notifier has no socket.
    void start();
    void stop();  // idempotent

  private:
    void loop();
    void ping_if_alive();

    ServiceNotifier& notifier_;
    ServiceReporterHooks hooks_;
    std::chrono::milliseconds status_every_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool stuck_logged_ = false;  // the last check found something stuck (and said so)
    std::string stuck_note_;     // appended to STATUS= while something is stuck
    std::thread thread_;
};

}  // namespace imgspool
