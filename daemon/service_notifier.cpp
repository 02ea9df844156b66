#include "daemon/service_notifier.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/log.hpp"

namespace imgspool {
namespace {

template <class Number>
std::optional<Number> parse_number(const char* text) {
    if (!text || !*text) return std::nullopt;
    Number value{};
    const char* end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, value);
    if (ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

}  // namespace

std::optional<std::chrono::microseconds> parse_watchdog_interval(const char* watchdog_usec,
                                                                 const char* watchdog_pid,
                                                                 pid_t self) {
    const auto usec = parse_number<unsigned long long>(watchdog_usec);
    if (!usec || *usec == 0) return std::nullopt;
    if (watchdog_pid && *watchdog_pid) {
        const auto pid = parse_number<long long>(watchdog_pid);
        if (!pid || *pid != static_cast<long long>(self)) return std::nullopt;  // another's
    }
    return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(*usec));
}

ServiceNotifier ServiceNotifier::from_environment() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    return ServiceNotifier(socket ? socket : "",
                           parse_watchdog_interval(std::getenv("WATCHDOG_USEC"),
                                                   std::getenv("WATCHDOG_PID"), ::getpid()));
}

ServiceNotifier::ServiceNotifier(std::string_view socket,
                                 std::optional<std::chrono::microseconds> watchdog)
    : watchdog_(watchdog) {
    if (socket.empty()) return;
    if ((socket[0] != '/' && socket[0] != '@') || socket.size() < 2 ||
        socket.size() >= sizeof address_.sun_path) {
        log::warn("NOTIFY_SOCKET is not a socket path or @abstract name; not notifying systemd",
                  {{"notify_socket", std::string(socket)}});
        return;
    }
    address_.sun_family = AF_UNIX;
    std::memcpy(address_.sun_path, socket.data(), socket.size());
    // An abstract name starts with a NUL byte and has no terminator; a path is NUL-terminated.
    if (socket[0] == '@') address_.sun_path[0] = '\0';
    address_size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() +
                                           (socket[0] == '@' ? 0 : 1));
    fd_ = fs::UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd_.valid()) {
        log::warn("cannot open a socket to notify systemd; not notifying",
                  {{"error", std::strerror(errno)}});
    }
}

void ServiceNotifier::reloading() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const unsigned long long usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ull +
                                    static_cast<unsigned long long>(now.tv_nsec) / 1000ull;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void ServiceNotifier::status(std::string_view line) {
    std::string message = "STATUS=";
    message.append(line);
    for (std::size_t i = 7; i < message.size(); ++i) {
        if (message[i] == '\n' || message[i] == '\r') message[i] = ' ';
    }
    send(message);
}

bool ServiceNotifier::send(std::string_view message) {
    if (!fd_.valid()) return false;
    // Non-blocking: a manager that does not read costs one message, never a stalled thread.
    // MSG_NOSIGNAL: no SIGPIPE whatever the socket's state.
    const ssize_t sent =
        ::sendto(fd_.get(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&address_), address_size_);
    if (sent == static_cast<ssize_t>(message.size())) return true;
    const int err = errno;
    if (!failure_logged_.exchange(true)) {
        log::warn("cannot notify systemd (further failures are not logged)",
                  {{"message", std::string(message.substr(0, message.find('=')))},
                   {"error", sent < 0 ? std::strerror(err) : "short write"}});
    }
    return false;
}

}  // namespace imgspool
