// A unix datagram socket bound at a path, standing in for systemd's $NOTIFY_SOCKET: a daemon
// started with NOTIFY_SOCKET=<path> sends it datagrams of "NAME=VALUE" lines (READY=1,
// STATUS=..., STOPPING=1, WATCHDOG=1).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/fs.hpp"

namespace imgspool::pkg_test {

class NotifySocket {
  public:
    // Binds at `path` and makes the socket writable by every user (the daemon under test runs
    // as another user than the test); the folder must let that user reach it. Throws on failure.
    explicit NotifySocket(std::filesystem::path path);
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;
    ~NotifySocket();

    const std::filesystem::path& path() const { return path_; }
    // Receives datagrams until one holds the line `line` (e.g. "READY=1"); false on timeout.
    bool wait_for_line(const std::string& line, std::chrono::milliseconds timeout);
    // Every line received so far, in order.
    const std::vector<std::string>& lines() const { return lines_; }
    std::string describe() const;  // the lines, one per line, for failure messages

  private:
    std::filesystem::path path_;
    fs::UniqueFd fd_;
    std::vector<std::string> lines_;
};

}  // namespace imgspool::pkg_test
