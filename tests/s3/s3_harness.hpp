// Test helper: runs tests/s3/harness/start.js (s3rver behind the verifying and fault-injecting
// proxies on 127.0.0.1) for the lifetime of the object, and talks plain HTTP to it.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/s3_config.hpp"

namespace imgspool::s3_test {

struct HttpAnswer {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
};

// A plain (unsigned) HTTP request with libcurl; status 0 when the server could not be reached.
HttpAnswer http(const std::string& method, const std::string& url, const std::string& body = {});

class S3Harness {
  public:
    // Why the harness cannot run here (node missing, npm ci not run), or nullopt when it can.
    static std::optional<std::string> unavailable();

    // Starts the stack; env holds extra NAME=VALUE settings for start.js (HARNESS_*).
    explicit S3Harness(const std::vector<std::string>& env = {});
    ~S3Harness();
    S3Harness(const S3Harness&) = delete;
    S3Harness& operator=(const S3Harness&) = delete;

    const nlohmann::json& info() const { return info_; }
    std::string fault_url() const { return info_.at("fault"); }
    std::string verify_url() const { return info_.at("verify"); }
    std::string s3rver_url() const { return info_.at("s3rver"); }

    // A config for the harness bucket through the fault proxy (which passes through by default).
    S3Config config() const;

    // Stops the fault proxy, the store's endpoint: connections are refused, open ones cut.
    void stop_store() const;
    // Starts it again on the same port.
    void restart_store() const;

    // Queues a fault on the fault proxy, e.g. {"kind":"status","status":503,"count":2}.
    void inject(const nlohmann::json& fault) const;
    // The fault proxy's state: {"pending":[...],"injected":n,"passed":n}.
    nlohmann::json faults() const;
    // The verifying proxy's counters: {"verified":n,"rejected":n,"rejections":[...]}.
    nlohmann::json verify_stats() const;
    // The client connections the fault proxy accepted that carried S3 requests:
    // {"accepted":n,"open":n,"max_open":n,"requests":n}.
    nlohmann::json connections() const;

  private:
    void stop();

    pid_t pid_ = -1;
    int stdin_fd_ = -1;
    nlohmann::json info_;
};

}  // namespace imgspool::s3_test
