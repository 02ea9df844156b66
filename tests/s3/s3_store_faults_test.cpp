// The S3 store against loopback ports that refuse or never answer, with no server process (so
// it runs under ThreadSanitizer): which failures are transient, that every wait is bounded, and
// that many threads share the one connection pool safely.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "store/s3/s3_store.hpp"
#include "tests/s3/loopback_sockets.hpp"

namespace imgspool {
namespace {

using s3_test::LoopbackPort;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

S3Config config_for(const std::string& endpoint) {
    S3Config c;
    c.bucket = "imgspool-test";
    c.endpoint = endpoint;
    c.access_key_id = "AKIAIMGSPOOLTEST0001";
    c.secret_access_key = "unitTestSecret/Key+0123456789abcdefghijKLMN";
    c.connect_timeout_ms = 1000;
    c.retry_base_delay_ms = 10;
    c.retry_max_delay_ms = 50;
    return c;
}

milliseconds since(Clock::time_point start) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

TEST(S3StoreFaults, AStoppedServerIsATransientFailureAfterTheRetries) {
    const LoopbackPort stopped(LoopbackPort::Mode::refuse);
    S3Config config = config_for(stopped.url());
    config.max_attempts = 3;
    S3Store store(config, "");
    const auto start = Clock::now();
    const Status put = store.put_all({{"images/u1/small.jpg", "image/jpeg", "bytes"}});
    ASSERT_FALSE(put);
    EXPECT_LT(since(start), milliseconds(2000));
    EXPECT_TRUE(put.error().transient) << put.error().message();
    EXPECT_EQ(put.error().stage, Stage::store);
    EXPECT_NE(put.error().reason.find("PUT images/u1/small.jpg: cannot reach the S3 endpoint " +
                                      stopped.url()),
              std::string::npos)
        << put.error().reason;
    EXPECT_NE(put.error().reason.find("(gave up after 3 attempts)"), std::string::npos)
        << put.error().reason;
    EXPECT_EQ(store.retries(), 2u);
    const Status removed = store.remove_all({"images/u1/small.jpg"});
    ASSERT_FALSE(removed);
    EXPECT_TRUE(removed.error().transient) << removed.error().message();
}

TEST(S3StoreFaults, AServerThatNeverAnswersTimesOutAsTransient) {
    const LoopbackPort stalled(LoopbackPort::Mode::stall);
    S3Config config = config_for(stalled.url());
    config.request_timeout_ms = 300;
    config.max_attempts = 2;
    S3Store store(config, "");
    const auto start = Clock::now();
    const Status put = store.put_all({{"images/u2/small.jpg", "image/jpeg", "bytes"},
                                      {"images/u2/large.jpg", "image/jpeg", "more bytes"}});
    const milliseconds took = since(start);
    ASSERT_FALSE(put);
    EXPECT_TRUE(put.error().transient) << put.error().message();
    EXPECT_GE(took, milliseconds(2 * 300));
    EXPECT_LT(took, milliseconds(3000));
    EXPECT_NE(put.error().reason.find("timed out"), std::string::npos) << put.error().reason;
    EXPECT_NE(put.error().reason.find("(gave up after 2 attempts)"), std::string::npos)
        << put.error().reason;
}

TEST(S3StoreFaults, TheCheckHasASmallBudgetOfItsOwn) {
    const LoopbackPort stalled(LoopbackPort::Mode::stall);
    S3Config config = config_for(stalled.url());
    config.request_timeout_ms = 1500;
    config.max_attempts = 5;  // a job's request could wait 5 x 1.5 s; the check only 2 x 1.5 s
    S3Store store(config, "");
    const auto start = Clock::now();
    const Status checked = store.check();
    const milliseconds took = since(start);
    ASSERT_FALSE(checked);
    EXPECT_TRUE(checked.error().transient) << checked.error().message();
    EXPECT_NE(checked.error().reason.find("HEAD bucket imgspool-test: cannot reach"),
              std::string::npos)
        << checked.error().reason;
    EXPECT_NE(checked.error().reason.find("(gave up after 2 attempts)"), std::string::npos)
        << checked.error().reason;
    EXPECT_LT(took, milliseconds(4500));
}

TEST(S3StoreFaults, TheCheckDoesNotWaitLongerThanItsDeadlineForAFullPool) {
    const LoopbackPort stalled(LoopbackPort::Mode::stall);
    S3Config config = config_for(stalled.url());
    config.max_connections = 2;
    config.max_attempts = 1;
    config.request_timeout_ms = 4000;
    S3Store store(config, "");
    std::vector<std::thread> jobs;
    std::vector<int> transient(2, 0);
    for (int j = 0; j < 2; ++j) {
        jobs.emplace_back([&, j] {
            const std::string key = "images/j" + std::to_string(j) + "/small.jpg";
            const Status put = store.put_all({{key, "image/jpeg", "bytes"}});
            transient[j] = !put && put.error().transient ? 1 : 0;
        });
    }
    std::this_thread::sleep_for(milliseconds(300));  // both connections are now taken
    // Budget: one attempt of at most 4 s; deadline 4 s + 1 s, which the full pool exhausts.
    const auto start = Clock::now();
    const Status checked = store.check();
    const milliseconds took = since(start);
    for (auto& job : jobs) job.join();
    ASSERT_FALSE(checked);
    EXPECT_TRUE(checked.error().transient) << checked.error().message();
    EXPECT_NE(checked.error().reason.find("within 5000 ms"), std::string::npos)
        << checked.error().reason;
    EXPECT_LT(took, milliseconds(5600));
    EXPECT_EQ(transient, (std::vector<int>{1, 1}));
}

TEST(S3StoreFaults, ManyThreadsShareOnePoolSafely) {
    const LoopbackPort stopped(LoopbackPort::Mode::refuse);
    S3Config config = config_for(stopped.url());
    config.max_connections = 2;
    config.max_attempts = 2;
    S3Store store(config, "");
    constexpr int kThreads = 8;
    std::vector<std::thread> threads;
    std::vector<int> transient(kThreads, 0);
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            const std::string prefix = "images/t" + std::to_string(t) + "/";
            const Status put = store.put_all({{prefix + "a.jpg", "image/jpeg", "a"},
                                              {prefix + "b.jpg", "image/jpeg", "b"},
                                              {prefix + "c.webp", "image/webp", "c"}});
            const Status checked = store.check();
            transient[t] =
                (!put && put.error().transient && !checked && checked.error().transient) ? 1 : 0;
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(transient, std::vector<int>(kThreads, 1));
}

TEST(S3StoreFaults, AnInvalidConfigIsPermanent) {
    S3Config config = config_for("http://127.0.0.1:1");
    config.access_key_id.clear();
    S3Store store(config, "");
    const Status put = store.put_all({{"k.jpg", "image/jpeg", "x"}});
    ASSERT_FALSE(put);
    EXPECT_FALSE(put.error().transient);
    const Status removed = store.remove_all({"k.jpg"});
    ASSERT_FALSE(removed);
    EXPECT_FALSE(removed.error().transient);
    EXPECT_NE(removed.error().reason.find("S3_ACCESS_KEY_ID"), std::string::npos);
    EXPECT_TRUE(store.remove_all({})) << "nothing to remove is success";
}

}  // namespace
}  // namespace imgspool
