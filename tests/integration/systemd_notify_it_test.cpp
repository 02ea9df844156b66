// The daemon as systemd runs it: the unit's ExecStart line (read from packaging/imgspool.service,
// only the binary and the config path replaced by the build's and the test's) under a
// NOTIFY_SOCKET the test binds. READY=1 comes once the watchers are armed, STATUS= lines follow
// the jobs, WATCHDOG=1 arrives every WATCHDOG_USEC/2 while the workers make progress and stops
// while a worker hangs in a store that never answers, STOPPING=1 comes on SIGTERM.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "common/fs.hpp"
#include "store/job_db_common.hpp"
#include "tests/integration/images.hpp"
#include "tests/integration/loopback.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

using Clock = std::chrono::steady_clock;

struct Notification {
    std::string text;
    Clock::time_point at;
    // When the kernel queued it on the socket (SO_TIMESTAMP), i.e. when the daemon sent it; the
    // reader thread may take it much later on a loaded machine.
    std::chrono::system_clock::time_point sent_at;
    // The daemon's log as it was when the message was read: it proves what the daemon had logged
    // before sending, never what it had not (the log may have grown since the send).
    std::string log_then;
};

// systemd's side of the notify protocol: an abstract datagram socket, read on a thread of its
// own, every message kept with the time it came and the daemon's log at that moment.
class NotifySocket {
  public:
    explicit NotifySocket(stdfs::path daemon_log)
        : log_(std::move(daemon_log)),
          name_("@imgspool-it-" + std::to_string(::getpid()) + "-" +
                std::to_string(Clock::now().time_since_epoch().count())),
          fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, name_.data(), name_.size());
        addr.sun_path[0] = '\0';
        const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        if (!fd_.valid() || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), size) != 0) {
            throw std::runtime_error("cannot bind the notify socket");
        }
        timeval tv{0, 100 * 1000};
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        const int on = 1;
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_TIMESTAMP, &on, sizeof on);
        reader_ = std::thread([this] { read_loop(); });
    }
    ~NotifySocket() {
        stop_ = true;
        reader_.join();
    }

    const std::string& name() const { return name_; }  // NOTIFY_SOCKET's value

    std::vector<Notification> all() const {
        std::lock_guard lock(mutex_);
        return messages_;
    }
    // Messages that are exactly `text`, or (for "STATUS=") start with it.
    std::vector<Notification> matching(const std::string& text) const {
        std::vector<Notification> out;
        for (Notification& n : all()) {
            const bool prefix = text.back() == '=';
            if (prefix ? n.text.rfind(text, 0) == 0 : n.text == text) out.push_back(std::move(n));
        }
        return out;
    }
    // Waits until a message passes `match`; returns it.
    std::optional<Notification> wait_for(const std::function<bool(const std::string&)>& match,
                                         std::chrono::milliseconds timeout) const {
        const auto until = Clock::now() + timeout;
        do {
            for (Notification& n : all()) {
                if (match(n.text)) return n;
            }
            std::this_thread::sleep_for(20ms);
        } while (Clock::now() < until);
        return std::nullopt;
    }
    std::optional<Notification> wait_for(const std::string& exact,
                                         std::chrono::milliseconds timeout) const {
        return wait_for([&](const std::string& t) { return t == exact; }, timeout);
    }

  private:
    void read_loop() {
        char buf[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timeval))];
        while (!stop_) {
            iovec iov{buf, sizeof buf};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            const ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
            if (n < 0) continue;
            Notification note{std::string(buf, static_cast<std::size_t>(n)), Clock::now(), {}, {}};
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMP) continue;
                timeval sent{};
                std::memcpy(&sent, CMSG_DATA(c), sizeof sent);
                note.sent_at = std::chrono::system_clock::time_point(
                    std::chrono::seconds(sent.tv_sec) + std::chrono::microseconds(sent.tv_usec));
            }
            std::ifstream in(log_, std::ios::binary);
            std::ostringstream text;
            text << in.rdbuf();
            note.log_then = text.str();
            std::lock_guard lock(mutex_);
            messages_.push_back(std::move(note));
        }
    }

    stdfs::path log_;
    std::string name_;
    fs::UniqueFd fd_;
    mutable std::mutex mutex_;
    std::vector<Notification> messages_;
    std::atomic<bool> stop_{false};
    std::thread reader_;
};

// The words of the unit's ExecStart= line.
std::vector<std::string> unit_exec_start() {
    std::ifstream unit(stdfs::path(IMGSPOOL_SOURCE_DIR) / "packaging" / "imgspool.service");
    std::string line;
    while (std::getline(unit, line)) {
        if (line.rfind("ExecStart=", 0) != 0) continue;
        std::istringstream words(line.substr(std::strlen("ExecStart=")));
        std::vector<std::string> out;
        for (std::string w; words >> w;) out.push_back(w);
        return out;
    }
    return {};
}

constexpr const char* kUnitBinary = "/usr/bin/imgspool";
constexpr const char* kUnitConfig = "/etc/imgspool/imgspool.toml";

class SystemdNotifyIt : public SpoolFixture {
  protected:
    void SetUp() override {
        SpoolFixture::SetUp();
        notify_ = std::make_unique<NotifySocket>(log_path());  // log_path() is known from here
    }
    void TearDown() override {
        daemon_.reset();  // SIGKILL if still running, before the fixture removes its folder
        SpoolFixture::TearDown();
    }

    // Starts the unit's ExecStart line with `env` added to the daemon's environment.
    void start_as_unit(std::vector<std::string> env) {
        std::vector<std::string> words = unit_exec_start();
        ASSERT_GE(words.size(), 2u) << "no ExecStart= in packaging/imgspool.service";
        ASSERT_EQ(words[0], kUnitBinary);
        ASSERT_EQ(std::count(words.begin(), words.end(), kUnitConfig), 1)
            << "the unit's ExecStart does not name " << kUnitConfig;
        std::vector<std::string> args;
        for (std::size_t i = 1; i < words.size(); ++i) {
            args.push_back(words[i] == kUnitConfig ? config_path().string() : words[i]);
        }
        env.push_back("NOTIFY_SOCKET=" + notify_->name());
        daemon_ =
            std::make_unique<ChildProcess>(imgspool_binary(), args, log_path(), log_path(), env);
    }

    std::optional<Notification> wait_ready() { return notify_->wait_for("READY=1", 30s); }

    // Gaps between consecutive WATCHDOG=1 messages that arrived in [from, to).
    std::vector<double> ping_gaps(Clock::time_point from, Clock::time_point to) const {
        std::vector<Clock::time_point> at;
        for (const Notification& n : notify_->matching("WATCHDOG=1")) {
            if (n.at >= from && n.at < to) at.push_back(n.at);
        }
        std::vector<double> gaps;
        for (std::size_t i = 1; i < at.size(); ++i) {
            gaps.push_back(std::chrono::duration<double>(at[i] - at[i - 1]).count());
        }
        return gaps;
    }

    Clock::time_point last_ping() const {
        const auto pings = notify_->matching("WATCHDOG=1");
        return pings.empty() ? Clock::time_point{} : pings.back().at;
    }

    std::unique_ptr<NotifySocket> notify_;
    std::unique_ptr<ChildProcess> daemon_;
};

TEST_F(SystemdNotifyIt, ReadyComesOnceTheWatchersAreArmedAndAFileDroppedBeforeIsProcessed) {
    stdfs::create_directories(inbox());
    write_file(inbox() / "early.jpg", make_jpeg({.width = 400, .height = 300, .seed = 11}));
    start_as_unit({});
    const auto ready = wait_ready();
    ASSERT_TRUE(ready) << "no READY=1";
    // Sent after the watcher armed its watches and scanned the inbox, which it logs first.
    EXPECT_NE(ready->log_then.find("\"watching inboxes\""), std::string::npos)
        << "READY=1 came before the watchers were armed";
    const auto all = notify_->all();
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all.front().text, "READY=1") << "the first message is not READY=1";
    EXPECT_TRUE(wait_complete("early.jpg").has_value());
    EXPECT_EQ(notify_->matching("READY=1").size(), 1u);
    // Without WATCHDOG_USEC there is no watchdog to ping.
    EXPECT_TRUE(notify_->matching("WATCHDOG=1").empty());
}

TEST_F(SystemdNotifyIt, StatusLinesFollowTheJobs) {
    start_as_unit({});
    ASSERT_TRUE(wait_ready());
    const std::regex shape(
        R"(STATUS=\d+ in flight, \d+ queued, \d+ waiting, \d+ deferred; today \d+ done, \d+ failed)");
    const auto first = notify_->wait_for(
        "STATUS=0 in flight, 0 queued, 0 waiting, 0 deferred; "
        "today 0 done, 0 failed",
        10s);
    ASSERT_TRUE(first) << "no STATUS= for an idle daemon";
    write_file(inbox() / "a.jpg", make_jpeg({.width = 400, .height = 300, .seed = 21}));
    ASSERT_TRUE(wait_complete("a.jpg").has_value());
    const auto after = notify_->wait_for(
        [](const std::string& t) { return t.find("today 1 done, 0 failed") != std::string::npos; },
        15s);
    ASSERT_TRUE(after) << "STATUS= did not count the completed job";
    write_file(inbox() / "b.gif", gif_bytes());  // 1x1: below the minimum size
    ASSERT_TRUE(wait_failed("b.gif").has_value());
    EXPECT_TRUE(notify_->wait_for(
        [](const std::string& t) { return t.find("today 1 done, 1 failed") != std::string::npos; },
        15s))
        << "STATUS= did not count the failed job";
    for (const Notification& n : notify_->matching("STATUS=")) {
        EXPECT_TRUE(std::regex_match(n.text, shape)) << n.text;
    }
}

TEST_F(SystemdNotifyIt, WatchdogPingsComeEveryHalfInterval) {
    start_as_unit({"WATCHDOG_USEC=1000000"});
    ASSERT_TRUE(wait_ready());
    const auto from = Clock::now();
    std::this_thread::sleep_for(4500ms);
    const std::vector<double> gaps = ping_gaps(from, Clock::now());
    ASSERT_GE(gaps.size(), 6u) << "too few WATCHDOG=1 in 4.5 s";
    EXPECT_LE(gaps.size(), 10u) << "too many WATCHDOG=1 in 4.5 s";
    for (double g : gaps) {
        EXPECT_GT(g, 0.35) << "pinged too soon";
        EXPECT_LT(g, 0.75) << "pinged too late";
    }
}

TEST_F(SystemdNotifyIt, AWatchdogMeantForAnotherProcessIsNotPinged) {
    start_as_unit({"WATCHDOG_USEC=1000000", "WATCHDOG_PID=1"});
    ASSERT_TRUE(wait_ready());
    std::this_thread::sleep_for(2s);
    EXPECT_TRUE(notify_->matching("WATCHDOG=1").empty());
}

TEST_F(SystemdNotifyIt, SigtermSendsStoppingThenExitsZero) {
    start_as_unit({"WATCHDOG_USEC=1000000"});
    ASSERT_TRUE(wait_ready());
    ASSERT_TRUE(notify_->wait_for("WATCHDOG=1", 5s));
    daemon_->send(SIGTERM);
    const auto stopping = notify_->wait_for("STOPPING=1", 10s);
    ASSERT_TRUE(stopping) << "no STOPPING=1 after SIGTERM";
    const auto status = daemon_->wait_for_exit(60s);
    ASSERT_TRUE(status) << "still running after SIGTERM";
    EXPECT_TRUE(status->exited && status->code == 0) << status->describe();
    EXPECT_EQ(notify_->matching("STOPPING=1").size(), 1u);
    // STOPPING=1 is the first word after the signal: sent after the daemon logged the signal,
    // and before it logged that it stopped (by the kernel's time of the send against the log
    // line's millisecond time stamp).
    EXPECT_NE(stopping->log_then.find("\"stop signal received\""), std::string::npos);
    std::optional<std::chrono::system_clock::time_point> stopped_at;
    std::istringstream log(daemon_log());
    for (std::string line; std::getline(log, line);) {
        if (line.find("\"imgspool stopped\"") == std::string::npos) continue;
        stopped_at = parse_iso_utc(nlohmann::json::parse(line).at("ts").get<std::string>());
    }
    ASSERT_TRUE(stopped_at) << daemon_log();
    ASSERT_NE(stopping->sent_at, std::chrono::system_clock::time_point()) << "no SO_TIMESTAMP";
    EXPECT_LT(stopping->sent_at, *stopped_at + 1ms) << "STOPPING=1 was sent after the daemon "
                                                       "logged that it stopped";
}

// The workers really hang: the S3 endpoint takes the connection and never answers, with a request
// timeout far above the watchdog interval, while the watcher goes on. The pings stop within about
// two intervals of the upload starting, and come back once the endpoint goes away (the upload
// fails at once, the job is deferred, the worker is idle again).
TEST_F(SystemdNotifyIt, AWorkerHangingInTheStoreStopsThePingsUntilItMovesAgain) {
    SilentListener s3;
    DaemonConfig c;
    c.workers = 1;
    c.store_toml = "kind = \"s3\"\nbucket = \"photos\"\nregion = \"us-east-1\"\nendpoint = \"" +
                   s3.url() +
                   "\"\naccess_key_id = \"AKIDEXAMPLE\"\n"
                   "secret_access_key = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"\n"
                   "public_base_url = \"https://cdn.example.test\"\n"
                   "connect_timeout_ms = 2000\nmax_attempts = 1\nrequest_timeout_ms = 120000\n";
    write_config(c);
    constexpr std::chrono::milliseconds kInterval{2000};  // WATCHDOG_USEC: pings every second
    start_as_unit({"WATCHDOG_USEC=2000000"});
    ASSERT_TRUE(wait_ready());
    ASSERT_TRUE(notify_->wait_for("WATCHDOG=1", 5s));

    write_file(inbox() / "hang.jpg", make_jpeg({.width = 400, .height = 300, .seed = 31}));
    // Rendered (progress 60): the worker is in the upload now.
    ASSERT_TRUE(wait_for(
        [&] {
            auto rows = query("select progress from upload_jobs where source_name = 'hang.jpg'");
            return !rows.empty() && rows[0]["progress"] == "60";
        },
        30s))
        << "the job never reached the upload";
    const auto uploading = Clock::now();
    // The pings stop: wait for a silence of 2.5 intervals, which must begin within ~2 intervals.
    ASSERT_TRUE(
        wait_for([&] { return Clock::now() - last_ping() > kInterval * 5 / 2; }, kInterval * 6))
        << "WATCHDOG=1 went on while the worker hung in the upload";
    EXPECT_LT(last_ping() - uploading, kInterval * 2 + 500ms)
        << "the pings went on for too long after the worker hung";
    EXPECT_TRUE(contains_any(daemon_log(), {"no progress: not pinging the systemd watchdog"}));
    EXPECT_TRUE(notify_->wait_for(
        [](const std::string& t) { return t.find("; stuck: worker 1 (no progress for") != t.npos; },
        10s))
        << "STATUS= does not say what is stuck";
    // Only the worker: the watcher kept going round.
    for (const Notification& n : notify_->matching("STATUS=")) {
        EXPECT_EQ(n.text.find("watcher"), std::string::npos) << n.text;
    }
    // The hanging store goes away: the upload fails, the job is deferred, the pings resume.
    const auto closed = Clock::now();
    s3.close();
    ASSERT_TRUE(wait_for([&] { return last_ping() > closed; }, kInterval * 3))
        << "WATCHDOG=1 did not resume once the worker moved again";
    EXPECT_TRUE(contains_any(daemon_log(), {"pinging the systemd watchdog again"}));
    ASSERT_TRUE(daemon_->running()) << "the daemon ended";
}

}  // namespace
}  // namespace imgspool::it
