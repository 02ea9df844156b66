// The sd_notify protocol as the daemon speaks it: the exact datagrams on path and abstract
// sockets, the watchdog settings from the environment, and a manager that is gone or does not
// read never blocking or killing the sender.
#include "daemon/service_notifier.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/fs.hpp"

namespace imgspool {
namespace {

using namespace std::chrono_literals;

// A datagram socket the test binds, standing in for systemd's notification socket.
class FakeManager {
  public:
    // `name`: a path, or "@name" for an abstract socket.
    explicit FakeManager(std::string name)
        : name_(std::move(name)), fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, name_.data(), name_.size());
        socklen_t size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        if (name_[0] == '@') {
            addr.sun_path[0] = '\0';
        } else {
            ++size;
        }
        if (!fd_.valid() || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), size) != 0) {
            throw std::runtime_error("cannot bind " + name_ + ": " + std::strerror(errno));
        }
        timeval tv{2, 0};
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~FakeManager() {
        if (name_[0] == '/') ::unlink(name_.c_str());
    }

    // The next datagram's bytes; "<none>" after 2 s without one.
    std::string receive() {
        char buf[4096];
        const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        return n < 0 ? "<none>" : std::string(buf, static_cast<std::size_t>(n));
    }
    bool nothing_waiting() {
        char buf[16];
        return ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT) < 0;
    }
    const std::string& name() const { return name_; }

  private:
    std::string name_;
    fs::UniqueFd fd_;
};

std::string unique_abstract_name() {
    static int n = 0;
    return "@imgspool-notify-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

class TempDir {
  public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "notify-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
        path_ = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

TEST(ServiceNotifier, SendsEachMessageAsOneDatagramOnAnAbstractSocket) {
    FakeManager manager(unique_abstract_name());
    ServiceNotifier notifier(manager.name(), std::nullopt);
    ASSERT_TRUE(notifier.enabled());
    notifier.ready();
    notifier.status("2 in flight, 0 waiting");
    notifier.watchdog();
    notifier.stopping();
    EXPECT_EQ(manager.receive(), "READY=1");
    EXPECT_EQ(manager.receive(), "STATUS=2 in flight, 0 waiting");
    EXPECT_EQ(manager.receive(), "WATCHDOG=1");
    EXPECT_EQ(manager.receive(), "STOPPING=1");
    EXPECT_TRUE(manager.nothing_waiting());
}

TEST(ServiceNotifier, SendsToAPathSocket) {
    TempDir dir;
    FakeManager manager((dir.path() / "notify").string());
    ServiceNotifier notifier(manager.name(), std::nullopt);
    notifier.ready();
    notifier.stopping();
    EXPECT_EQ(manager.receive(), "READY=1");
    EXPECT_EQ(manager.receive(), "STOPPING=1");
}

TEST(ServiceNotifier, ReloadingCarriesTheMonotonicTimeInMicroseconds) {
    FakeManager manager(unique_abstract_name());
    ServiceNotifier notifier(manager.name(), std::nullopt);
    timespec before{};
    ::clock_gettime(CLOCK_MONOTONIC, &before);
    notifier.reloading();
    timespec after{};
    ::clock_gettime(CLOCK_MONOTONIC, &after);
    const std::string got = manager.receive();
    const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
    ASSERT_EQ(got.substr(0, prefix.size()), prefix) << got;
    const std::string digits = got.substr(prefix.size());
    ASSERT_FALSE(digits.empty());
    EXPECT_EQ(digits.find_first_not_of("0123456789"), std::string::npos) << got;
    const unsigned long long usec = std::stoull(digits);
    const auto to_usec = [](const timespec& t) {
        return static_cast<unsigned long long>(t.tv_sec) * 1000000ull +
               static_cast<unsigned long long>(t.tv_nsec) / 1000ull;
    };
    EXPECT_GE(usec, to_usec(before));
    EXPECT_LE(usec, to_usec(after));
}

TEST(ServiceNotifier, AStatusIsOneLine) {
    FakeManager manager(unique_abstract_name());
    ServiceNotifier notifier(manager.name(), std::nullopt);
    notifier.status("a\nb\rc");
    EXPECT_EQ(manager.receive(), "STATUS=a b c");
}

TEST(ServiceNotifier, WithoutNotifySocketEveryCallIsANoOp) {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ServiceNotifier notifier = ServiceNotifier::from_environment();
    EXPECT_FALSE(notifier.enabled());
    EXPECT_FALSE(notifier.watchdog_interval());
    notifier.ready();
    notifier.reloading();
    notifier.status("x");
    notifier.watchdog();
    notifier.stopping();
    EXPECT_FALSE(notifier.send("READY=1"));

    ::setenv("NOTIFY_SOCKET", "", 1);  // empty counts as unset
    EXPECT_FALSE(ServiceNotifier::from_environment().enabled());
    ::unsetenv("NOTIFY_SOCKET");
}

TEST(ServiceNotifier, ReadsSocketAndWatchdogFromTheEnvironment) {
    FakeManager manager(unique_abstract_name());
    ::setenv("NOTIFY_SOCKET", manager.name().c_str(), 1);
    ::setenv("WATCHDOG_USEC", "3000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    ServiceNotifier notifier = ServiceNotifier::from_environment();
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ASSERT_TRUE(notifier.watchdog_interval());
    EXPECT_EQ(*notifier.watchdog_interval(), 3s);
    notifier.watchdog();
    EXPECT_EQ(manager.receive(), "WATCHDOG=1");
}

TEST(ServiceNotifier, NotAPathOrAbstractNameDisablesNotifying) {
    EXPECT_FALSE(ServiceNotifier("relative/socket", std::nullopt).enabled());
    EXPECT_FALSE(ServiceNotifier("vsock:2:1234", std::nullopt).enabled());
    EXPECT_FALSE(ServiceNotifier("/" + std::string(200, 'x'), std::nullopt).enabled());
    EXPECT_FALSE(ServiceNotifier("@", std::nullopt).enabled());
}

TEST(ServiceNotifier, AManagerThatIsGoneCostsOnlyTheMessage) {
    TempDir dir;
    std::string path;
    {
        FakeManager manager((dir.path() / "gone").string());
        path = manager.name();
    }  // unbound and unlinked
    ServiceNotifier notifier(path, std::nullopt);
    ASSERT_TRUE(notifier.enabled());
    EXPECT_FALSE(notifier.send("READY=1"));  // ENOENT / ECONNREFUSED, logged once
    EXPECT_FALSE(notifier.send("WATCHDOG=1"));
}

TEST(ServiceNotifier, AManagerThatDoesNotReadNeverBlocksTheSender) {
    FakeManager manager(unique_abstract_name());
    ServiceNotifier notifier(manager.name(), std::nullopt);
    const auto start = std::chrono::steady_clock::now();
    int refused = 0;
    for (int i = 0; i < 5000 && refused == 0; ++i) {
        if (!notifier.send("WATCHDOG=1")) ++refused;
    }
    EXPECT_EQ(refused, 1) << "the receive queue never filled up";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_EQ(manager.receive(), "WATCHDOG=1");  // what was queued is intact
}

TEST(WatchdogInterval, IsWatchdogUsecForThisProcess) {
    EXPECT_EQ(parse_watchdog_interval("2000000", nullptr, 42), std::chrono::microseconds(2000000));
    EXPECT_EQ(parse_watchdog_interval("2000000", "", 42), std::chrono::microseconds(2000000));
    EXPECT_EQ(parse_watchdog_interval("2000000", "42", 42), std::chrono::microseconds(2000000));
}

TEST(WatchdogInterval, NoneWhenUnsetZeroMalformedOrMeantForAnotherProcess) {
    EXPECT_FALSE(parse_watchdog_interval(nullptr, nullptr, 42));
    EXPECT_FALSE(parse_watchdog_interval("", nullptr, 42));
    EXPECT_FALSE(parse_watchdog_interval("0", nullptr, 42));
    EXPECT_FALSE(parse_watchdog_interval("-5", nullptr, 42));
    EXPECT_FALSE(parse_watchdog_interval("12s", nullptr, 42));
    EXPECT_FALSE(parse_watchdog_interval("2000000", "43", 42));
    EXPECT_FALSE(parse_watchdog_interval("2000000", "x", 42));
}

}  // namespace
}  // namespace imgspool
