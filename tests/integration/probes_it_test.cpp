// The operator's probes of the real daemon while its store never answers: the store endpoint
// is a loopback listener of the test's own that takes connections and stays silent. /healthz
// must answer at once throughout, /readyz say why it is not ready (and how old that news is),
// /metrics answer without waiting for the store or the database.
#include <signal.h>

#include <regex>
#include <thread>

#include "tests/integration/loopback.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

// What the issue asks of every probe: an answer within 100 ms. Sanitizer builds run the same
// code several times slower on a loaded 2-core machine, so they get more room.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr long kAnswerMs = 500;
#else
constexpr long kAnswerMs = 100;
#endif

class ProbesIt : public SpoolFixture {
  protected:
    // An S3 store at `endpoint` whose requests wait `request_timeout_ms` for an answer, tried
    // `max_attempts` times, and the metrics endpoint on a free port.
    void configure(const std::string& endpoint, int request_timeout_ms, int max_attempts = 1) {
        port_ = free_port();
        ASSERT_GT(port_, 0);
        DaemonConfig c;
        c.store_toml =
            "kind = \"s3\"\nbucket = \"photos\"\nregion = \"us-east-1\"\n"
            "endpoint = \"" +
            endpoint +
            "\"\naccess_key_id = \"AKIDEXAMPLE\"\n"
            "secret_access_key = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"\n"
            "public_base_url = \"https://cdn.example.test\"\n"
            "connect_timeout_ms = 2000\nmax_attempts = " +
            std::to_string(max_attempts) +
            "\nrequest_timeout_ms = " + std::to_string(request_timeout_ms) + "\n";
        c.extra_toml =
            "\n[metrics]\nenabled = true\nbind = \"127.0.0.1\"\nport = " + std::to_string(port_) +
            "\n";
        write_config(c);
    }

    // Polls every probe for `span`: /healthz (and /metrics) within kAnswerMs each time, and
    // /readyz 503 with a reason about the store; returns the last /readyz answer.
    HttpReply probe_for(std::chrono::milliseconds span) {
        constexpr auto kPause = std::chrono::milliseconds(250);
        HttpReply ready;
        const auto until = std::chrono::steady_clock::now() + span;
        int rounds = 0;
        while (std::chrono::steady_clock::now() < until) {
            const HttpReply health = http_get(port_, "/healthz", 5s);
            EXPECT_EQ(health.status, 200) << "round " << rounds;
            EXPECT_EQ(health.body, "ok");
            EXPECT_LT(health.took.count(), kAnswerMs)
                << "/healthz took " << health.took.count() << " ms";
            const HttpReply metrics = http_get(port_, "/metrics", 5s);
            EXPECT_EQ(metrics.status, 200);
            EXPECT_NE(metrics.body.find("imgspool_jobs"), std::string::npos);
            EXPECT_LT(metrics.took.count(), kAnswerMs)
                << "/metrics took " << metrics.took.count() << " ms";
            ready = http_get(port_, "/readyz", 5s);
            EXPECT_EQ(ready.status, 503) << ready.body;
            EXPECT_LT(ready.took.count(), kAnswerMs)
                << "/readyz took " << ready.took.count() << " ms";
            ++rounds;
            std::this_thread::sleep_for(kPause);
        }
        // Enough samples: a round whose three probes keep to the limit takes at most the pause
        // plus 3 × kAnswerMs (and a little for the pause overshooting on a loaded machine), so
        // fewer rounds mean the probing stalled somewhere. (A fixed count would also fail when
        // every probe answers within the limit but near it.)
        const auto longest_round = kPause + std::chrono::milliseconds(3 * kAnswerMs + 50);
        EXPECT_GE(rounds, span / longest_round) << "probing stalled";
        return ready;
    }

    int port_ = 0;
};

// Jobs would wait a minute per request (5 attempts) for this store; the health check gives
// up after 5 s, so /readyz soon says why, and SIGTERM is not held up by a hanging check.
TEST_F(ProbesIt, AStoreThatNeverAnswersStallsNoProbe) {
    SilentListener store;
    configure(store.url(), 60000, 5);
    if (HasFatalFailure()) return;
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return http_get(port_, "/healthz", 5s).status == 200; }, 15s))
        << daemon_log();
    const HttpReply last = probe_for(std::chrono::seconds(8));
    EXPECT_TRUE(std::regex_search(last.body,
                                  std::regex("^store unreachable: (.+ \\(checked [0-9]+ s ago\\)|"
                                             "no answer for [0-9]+ s \\(check still running\\))$")))
        << last.body;
    ASSERT_TRUE(daemon_running());

    const auto t0 = std::chrono::steady_clock::now();
    daemon().send(SIGTERM);
    const auto status = daemon().wait_for_exit(20s);
    ASSERT_TRUE(status.has_value()) << "SIGTERM waited for the hanging store";
    EXPECT_TRUE(status->exited && status->code == 0) << status->describe();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

// Requests time out after a second: /readyz carries the store's own reason and its age.
TEST_F(ProbesIt, ReadyzGivesTheStoresReasonAndItsAge) {
    SilentListener store;
    configure(store.url(), 1000);
    if (HasFatalFailure()) return;
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return http_get(port_, "/healthz", 5s).status == 200; }, 15s))
        << daemon_log();
    HttpReply ready;
    ASSERT_TRUE(wait_for(
        [&] {
            ready = http_get(port_, "/readyz", 5s);
            return ready.body.find("(checked ") != std::string::npos;
        },
        20s))
        << ready.body;
    EXPECT_EQ(ready.status, 503);
    EXPECT_TRUE(std::regex_search(ready.body,
                                  std::regex("^store unreachable: .+ \\(checked [0-9]+ s ago\\)$")))
        << ready.body;
    probe_for(std::chrono::seconds(4));
}

}  // namespace
}  // namespace imgspool::it
