// The pool while the fixture's server is stopped and restarted: calls fail fast and transient
// during the outage and work again after it. Registered RUN_SERIAL: the outage is shared.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "store/pg/pg_pool.hpp"
#include "tests/pg/pg_test_server.hpp"
#include "tests/pg/stopped_server.hpp"

namespace imgspool::pg {
namespace {

using Clock = std::chrono::steady_clock;

Status select_one(Connection& conn) {
    auto r = conn.exec_sql("SELECT 1");
    if (!r) return r.error();
    return ok_status();
}

std::unique_ptr<ConnectionPool> open_pool(int size) {
    DatabaseSettings settings;
    settings.url = pg_test::fresh_database("outage");
    auto pool = ConnectionPool::open(settings, size, "imgspool/test");
    if (!pool) throw std::runtime_error(pool.error().message());
    return std::move(pool.value());
}

// Runs until a call succeeds (the backoff is at most 10 s plus jitter).
Status run_until_ok(ConnectionPool& pool, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
        auto s = pool.run(select_one);
        if (s || Clock::now() > deadline) return s;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

TEST(PgOutage, CallsFailFastAndTransientWhileDownThenRecover) {
    auto pool = open_pool(2);
    std::atomic<int> recovered{0};
    pool->on_recovered([&] { ++recovered; });
    ASSERT_TRUE(pool->run(select_one));
    {
        pg_test::StoppedServer stopped;
        // The first call finds its session gone, the next one cannot reconnect and starts the
        // backoff; from then on calls fail at once.
        int fast_failures = 0;
        std::string last_reason;
        for (int i = 0; i < 10; ++i) {
            const auto start = Clock::now();
            auto s = pool->run(select_one);
            const auto took = Clock::now() - start;
            ASSERT_FALSE(s);
            EXPECT_TRUE(s.error().transient) << s.error().reason;
            EXPECT_LT(took, std::chrono::milliseconds(500)) << s.error().reason;
            if (s.error().reason.starts_with("database unreachable since")) {
                ++fast_failures;
                EXPECT_LT(took, std::chrono::milliseconds(50)) << s.error().reason;
            }
            last_reason = s.error().reason;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        EXPECT_GE(fast_failures, 7);
        EXPECT_NE(last_reason.find("(next try in "), std::string::npos) << last_reason;
        EXPECT_EQ(pool->reconnects(), 0u);
        EXPECT_EQ(recovered.load(), 0);
        stopped.start();
    }
    auto back = run_until_ok(*pool, std::chrono::seconds(30));
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_GE(pool->reconnects(), 1u);
    EXPECT_EQ(recovered.load(), 1);
}

TEST(PgOutage, RestartedServerIsReconnected) {
    auto pool = open_pool(1);
    ASSERT_TRUE(pool->run(select_one));
    pg_test::restart_server();
    auto back = run_until_ok(*pool, std::chrono::seconds(30));
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(pool->reconnects(), 1u);
}

}  // namespace
}  // namespace imgspool::pg
