// The operators' HTTP endpoint (libmicrohttpd, a thread per connection):
//   GET /metrics  Prometheus text format 0.0.4 from the metrics source
//   GET /healthz  200 "ok" while the process lives, answered by the server itself
//   GET /readyz   200 "ready", or 503 with the reason from the readiness check
// Other paths answer 404, other methods than GET/HEAD 405.
#pragma once

#include <atomic>
#include <cstdarg>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/error.hpp"

struct MHD_Daemon;

namespace imgspool {

struct Readiness {
    bool ready = true;
    std::string reason;  // when not ready: "watchers not armed", "store unreachable: ..."
};

struct HttpServerOptions {
    std::string bind = "127.0.0.1";  // an IPv4 or IPv6 address literal
    int port = 9091;                 // 0: any free port; port() tells which after start()
    unsigned max_connections = 16;
    unsigned connection_timeout_s = 10;
};

class HttpServer {
  public:
    // Both callbacks run on the connections' threads, several at once: they must be
    // thread-safe, and should answer from memory (a slow one delays only its own request).
    using MetricsSource = std::function<std::string()>;
    using ReadinessCheck = std::function<Readiness()>;

    HttpServer(HttpServerOptions options, MetricsSource metrics, ReadinessCheck readiness);
    ~HttpServer();  // stops
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and starts serving; fails (Stage::config) with the reason, e.g. the port is taken.
    Status start();
    // Stops serving and waits for the server's thread. Idempotent.
    void stop();

    int port() const { return port_; }  // the bound port once started

  private:
    struct DaemonDeleter {
        void operator()(MHD_Daemon* d) const;
    };

    friend struct HttpServerCallbacks;  // the C callbacks handed to libmicrohttpd

    struct Answer {
        unsigned status;
        std::string body;
        const char* content_type;
    };
    Answer answer(std::string_view method, std::string_view url) const;
    void record_mhd_error(std::string message);

    HttpServerOptions options_;
    MetricsSource metrics_;
    ReadinessCheck readiness_;
    std::unique_ptr<MHD_Daemon, DaemonDeleter> daemon_;
    std::atomic<bool> serving_{false};  // read by the server's thread when it logs
    int port_ = 0;

    std::mutex log_mutex_;
    std::string last_mhd_error_;
};

}  // namespace imgspool
