// Loopback helpers of the integration tests: a free port for the daemon's metrics endpoint (or
// sshd), a store endpoint that hangs, and a GET of the daemon's probes.
#pragma once

#include <chrono>
#include <string>

#include "common/fs.hpp"

namespace imgspool::it {

// A port nobody listens on right now on 127.0.0.1 (bind port 0, read it back, close); 0 when
// none can be had. Another process may take it before the caller binds it.
int free_port();

// A loopback TCP port that accepts connections (the kernel completes the handshake into a listen
// backlog nobody reads) and never answers: a store that hangs. close() resets the connections it
// holds. Throws std::runtime_error when it cannot listen.
class SilentListener {
  public:
    SilentListener();
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    void close() { fd_ = fs::UniqueFd(); }

  private:
    fs::UniqueFd fd_;
    int port_ = 0;
};

struct HttpReply {
    long status = 0;  // 0: nothing answered within the timeout
    std::string body;
    std::chrono::milliseconds took{0};
};

// GET http://127.0.0.1:port/path, bypassing any proxy of the environment.
HttpReply http_get(int port, const std::string& path,
                   std::chrono::seconds timeout = std::chrono::seconds(10));

}  // namespace imgspool::it
