#include "tests/packaging/notify_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <array>
#include <cstring>
#include <stdexcept>

namespace imgspool::pkg_test {

namespace {

std::runtime_error failure(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

NotifySocket::NotifySocket(std::filesystem::path path)
    : path_(std::move(path)), fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (!fd_.valid()) throw failure("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.string().size() >= sizeof(addr.sun_path)) {
        throw std::runtime_error("socket path too long: " + path_.string());
    }
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        throw failure("bind " + path_.string());
    }
    if (::chmod(path_.c_str(), 0666) != 0) throw failure("chmod " + path_.string());
}

NotifySocket::~NotifySocket() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
}

bool NotifySocket::wait_for_line(const std::string& line, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const std::string& seen : lines_) {
        if (seen == line) return true;
    }
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd_.get(), POLLIN, 0};
        int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno != EINTR) throw failure("poll");
        if (ready <= 0) continue;
        std::array<char, 4096> buffer{};
        ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
        if (n < 0) throw failure("recv");
        // One datagram may carry several newline-separated assignments.
        std::string datagram(buffer.data(), static_cast<size_t>(n));
        bool found = false;
        size_t start = 0;
        while (start < datagram.size()) {
            size_t end = datagram.find('\n', start);
            if (end == std::string::npos) end = datagram.size();
            if (end > start) {
                lines_.push_back(datagram.substr(start, end - start));
                found = found || lines_.back() == line;
            }
            start = end + 1;
        }
        if (found) return true;
    }
}

std::string NotifySocket::describe() const {
    std::string out;
    for (const std::string& line : lines_) out += "  " + line + "\n";
    return out.empty() ? "  (nothing)\n" : out;
}

}  // namespace imgspool::pkg_test
