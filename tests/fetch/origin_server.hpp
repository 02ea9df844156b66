// Test helper: runs tests/fetch/origin/origin.js (a plain-HTTP origin on 127.0.0.1, 127.0.0.2
// and ::1) for the lifetime of the object. The routes are listed at the top of origin.js.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace imgspool::fetch_test {

class OriginServer {
  public:
    // Why the origin cannot run here (node is not on PATH), or nullopt when it can.
    static std::optional<std::string> unavailable();

    // Serves `files` (name -> bytes) under /img/NAME; /flaky/KEY serves /img/photo.jpg.
    // Throws std::runtime_error when node does not start or report its ports.
    explicit OriginServer(const std::map<std::string, std::string>& files);
    ~OriginServer();
    OriginServer(const OriginServer&) = delete;
    OriginServer& operator=(const OriginServer&) = delete;

    int port1() const { return port1_; }
    int port2() const { return port2_; }
    int port6() const { return port6_; }  // 0 when the machine has no IPv6 loopback
    // "http://127.0.0.1:P1" + path (path starts with '/'); url2: 127.0.0.2, url6: [::1].
    std::string url1(const std::string& path) const;
    std::string url2(const std::string& path) const;
    std::string url6(const std::string& path) const;

    // GET /_stats: {"total":n,"listeners":{"127.0.0.1":n,...},"paths":{...},"huge_sent":n,"open":n}
    nlohmann::json stats() const;
    // Requests that reached the origin since the last reset, on every address.
    int requests() const { return stats().at("total").get<int>(); }
    // GET /_reset: zeroes the counters and the /flaky/ state.
    void reset() const;

  private:
    void stop();

    std::filesystem::path dir_;
    pid_t pid_ = -1;
    int stdin_fd_ = -1;
    int port1_ = 0;
    int port2_ = 0;
    int port6_ = 0;
};

}  // namespace imgspool::fetch_test
