// Loopback TCP ports that misbehave for the S3 store's unit tests, with no server process: one
// that refuses connections (a stopped server) and one that accepts them and never answers (a
// stalled server: the kernel completes the handshake into a listen backlog nobody accepts from).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

namespace imgspool::s3_test {

class LoopbackPort {
  public:
    enum class Mode { refuse, stall };

    explicit LoopbackPort(Mode mode) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
            (mode == Mode::stall && ::listen(fd_, 128) != 0)) {
            if (fd_ >= 0) ::close(fd_);
            throw std::runtime_error("cannot set up a loopback port");
        }
        port_ = ntohs(addr.sin_port);
    }
    ~LoopbackPort() { ::close(fd_); }
    LoopbackPort(const LoopbackPort&) = delete;
    LoopbackPort& operator=(const LoopbackPort&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  private:
    int fd_;
    int port_ = 0;
};

}  // namespace imgspool::s3_test
