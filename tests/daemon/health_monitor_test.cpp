#include "daemon/health_monitor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace imgspool {
namespace {

using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (done()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return done();
}

// Probes whose answers a test sets; the store probe can be made to hang until released.
class FakeProbes {
  public:
    HealthProbes probes() {
        return {.store = [this]() -> Status {
                    std::unique_lock lock(mutex_);
                    ++store_calls_;
                    hanging_cv_.wait(lock, [this] { return !hang_; });
                    if (store_problem_.empty()) return ok_status();
                    return make_error(Stage::store, store_problem_);
                },
                .database = [this]() -> Result<JobCounts> {
                    std::lock_guard lock(mutex_);
                    ++database_calls_;
                    if (!database_problem_.empty()) {
                        return make_error(Stage::commit, database_problem_);
                    }
                    return counts_;
                }};
    }
    void store_fails(std::string why) {
        std::lock_guard lock(mutex_);
        store_problem_ = std::move(why);
    }
    void database_fails(std::string why) {
        std::lock_guard lock(mutex_);
        database_problem_ = std::move(why);
    }
    void set_counts(JobCounts c) {
        std::lock_guard lock(mutex_);
        counts_ = std::move(c);
    }
    void hang(bool on) {
        {
            std::lock_guard lock(mutex_);
            hang_ = on;
        }
        hanging_cv_.notify_all();
    }
    int store_calls() {
        std::lock_guard lock(mutex_);
        return store_calls_;
    }
    int database_calls() {
        std::lock_guard lock(mutex_);
        return database_calls_;
    }

  private:
    std::mutex mutex_;
    std::condition_variable hanging_cv_;
    bool hang_ = false;
    int store_calls_ = 0;
    int database_calls_ = 0;
    std::string store_problem_;
    std::string database_problem_;
    JobCounts counts_{{"pending", 1}, {"complete", 7}};
};

HealthMonitorOptions quick(std::function<void()> on_recovered = {}) {
    return {
        .interval = 20ms, .stalled_after = 200ms, .on_store_recovered = std::move(on_recovered)};
}

TEST(HealthMonitor, NotReadyBeforeTheFirstCheckThenReadyWithTheCounts) {
    FakeProbes fake;
    fake.hang(true);
    HealthMonitor monitor(fake.probes(), quick());
    EXPECT_FALSE(monitor.readiness().ready);
    monitor.start();
    ASSERT_TRUE(eventually([&] { return fake.store_calls() == 1; }));
    const Readiness first = monitor.readiness();
    EXPECT_FALSE(first.ready);
    EXPECT_EQ(first.reason, "the first check of the store and database is still running");
    EXPECT_FALSE(monitor.job_counts().has_value());

    fake.hang(false);
    ASSERT_TRUE(eventually([&] { return monitor.readiness().ready; }));
    ASSERT_TRUE(monitor.job_counts().has_value());
    EXPECT_EQ(monitor.job_counts()->at("complete"), 7);
    fake.set_counts({{"complete", 9}});
    EXPECT_TRUE(eventually([&] { return monitor.job_counts()->at("complete") == 9; }));
}

TEST(HealthMonitor, AFailedStoreCheckIsTheReasonWithItsAge) {
    FakeProbes fake;
    fake.store_fails("connection refused");
    HealthMonitor monitor(fake.probes(), quick());
    monitor.start();
    ASSERT_TRUE(eventually([&] {
        return fake.store_calls() >= 1 && !monitor.readiness().ready &&
               monitor.readiness().reason.find("store") == 0;
    }));
    EXPECT_EQ(monitor.readiness().reason,
              "store unreachable: connection refused (checked 0 s ago)");
    // The database still answers, so the gauges stay fed.
    EXPECT_TRUE(monitor.job_counts().has_value());
}

TEST(HealthMonitor, AFailedDatabaseReadIsTheReasonAndKeepsTheLastCounts) {
    FakeProbes fake;
    HealthMonitor monitor(fake.probes(), quick());
    monitor.start();
    ASSERT_TRUE(eventually([&] { return monitor.readiness().ready; }));
    fake.database_fails("database is locked");
    ASSERT_TRUE(eventually([&] { return !monitor.readiness().ready; }));
    EXPECT_EQ(
        monitor.readiness().reason.rfind("database unreadable: database is locked (checked ", 0),
        0u)
        << monitor.readiness().reason;
    ASSERT_TRUE(monitor.job_counts().has_value());
    EXPECT_EQ(monitor.job_counts()->at("complete"), 7);
}

// A store that never answers: readiness says so (with how long) without waiting for it.
TEST(HealthMonitor, AHangingStoreIsReportedWithoutBlockingTheCaller) {
    FakeProbes fake;
    HealthMonitor monitor(fake.probes(), quick());
    monitor.start();
    ASSERT_TRUE(eventually([&] { return monitor.readiness().ready; }));
    fake.hang(true);
    ASSERT_TRUE(eventually([&] { return !monitor.readiness().ready; }, 3s));
    const auto t0 = std::chrono::steady_clock::now();
    const Readiness r = monitor.readiness();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 50ms);
    EXPECT_EQ(r.reason.rfind("store unreachable: no answer for ", 0), 0u) << r.reason;
    EXPECT_NE(r.reason.find("(check still running)"), std::string::npos) << r.reason;
    fake.hang(false);
    EXPECT_TRUE(eventually([&] { return monitor.readiness().ready; }));
}

TEST(HealthMonitor, CountsAndAnnouncesEveryRecoveryOfTheStore) {
    FakeProbes fake;
    std::atomic<int> announced{0};
    HealthMonitor monitor(fake.probes(), quick([&] { ++announced; }));
    fake.store_fails("503 Slow Down");
    monitor.start();
    ASSERT_TRUE(eventually([&] { return fake.store_calls() >= 2; }));
    EXPECT_EQ(monitor.store_recoveries(), 0u);
    fake.store_fails("");
    ASSERT_TRUE(eventually([&] { return monitor.store_recoveries() == 1; }));
    // The callback runs right after the count moves, on the monitor's thread.
    EXPECT_TRUE(eventually([&] { return announced == 1; }));

    // A check that hangs past stalled_after and then answers is a recovery too.
    fake.hang(true);
    ASSERT_TRUE(eventually([&] { return !monitor.readiness().ready; }, 3s));
    fake.hang(false);
    ASSERT_TRUE(eventually([&] { return monitor.store_recoveries() == 2; }));
    EXPECT_TRUE(eventually([&] { return announced == 2; }));
    const int calls = fake.store_calls();
    ASSERT_TRUE(eventually([&] { return fake.store_calls() >= calls + 3; }));
    EXPECT_EQ(monitor.store_recoveries(), 2u) << "good checks in a row are no recoveries";
}

// Deferred jobs wait for the database too: its recovery is announced once per outage, and
// neither a store recovery nor good checks in a row announce it.
TEST(HealthMonitor, AnnouncesTheDatabaseAnsweringAgainOncePerOutage) {
    FakeProbes fake;
    std::atomic<int> store_announced{0};
    std::atomic<int> database_announced{0};
    HealthMonitor monitor(fake.probes(), {.interval = 20ms,
                                          .stalled_after = 200ms,
                                          .on_store_recovered = [&] { ++store_announced; },
                                          .on_database_recovered = [&] { ++database_announced; }});
    fake.database_fails("server closed the connection unexpectedly");
    monitor.start();
    ASSERT_TRUE(eventually([&] { return fake.database_calls() >= 3; }));
    EXPECT_EQ(database_announced, 0) << "a database that never answered did not recover";
    fake.database_fails("");
    ASSERT_TRUE(eventually([&] { return database_announced == 1; }));
    int calls = fake.database_calls();
    ASSERT_TRUE(eventually([&] { return fake.database_calls() >= calls + 3; }));
    EXPECT_EQ(database_announced, 1) << "good checks in a row are no recoveries";

    fake.database_fails("connection refused");
    ASSERT_TRUE(eventually([&] { return !monitor.readiness().ready; }));
    fake.database_fails("");
    ASSERT_TRUE(eventually([&] { return database_announced == 2; }));
    calls = fake.database_calls();
    ASSERT_TRUE(eventually([&] { return fake.database_calls() >= calls + 3; }));
    EXPECT_EQ(database_announced, 2);
    EXPECT_EQ(store_announced, 0) << "the store never failed";
}

TEST(HealthMonitor, StopDoesNotWaitForTheInterval) {
    FakeProbes fake;
    HealthMonitor monitor(fake.probes(), {.interval = 60s});
    monitor.start();
    ASSERT_TRUE(eventually([&] { return monitor.readiness().ready; }));
    const auto t0 = std::chrono::steady_clock::now();
    monitor.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    monitor.stop();  // idempotent
}

}  // namespace
}  // namespace imgspool
