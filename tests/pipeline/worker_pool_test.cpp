#include "pipeline/worker_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

using namespace imgspool;

namespace {

Job job_named(const std::string& id) {
    Job j;
    j.upload_id = id;
    return j;
}

}  // namespace

TEST(BoundedQueue, PushBlocksWhileFull) {
    BoundedQueue<int> q(2);
    ASSERT_TRUE(q.push(1));
    ASSERT_TRUE(q.push(2));
    std::atomic<bool> pushed{false};
    std::thread producer([&] {
        q.push(3);
        pushed = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(pushed.load()) << "push must wait for room (back-pressure)";
    EXPECT_EQ(q.pop(), 1);
    producer.join();
    EXPECT_TRUE(pushed.load());
    EXPECT_EQ(q.size(), 2u);
}

TEST(BoundedQueue, TryPushNeverWaitsAndKeepsTheItemWhenFull) {
    BoundedQueue<std::string> q(1);
    std::string first = "a";
    std::string second = "b";
    EXPECT_TRUE(q.try_push(first));
    EXPECT_FALSE(q.try_push(second));
    EXPECT_EQ(second, "b") << "a refused item stays with the caller";
    EXPECT_EQ(q.pop(), "a");
    EXPECT_TRUE(q.try_push(second));
    q.close(false);
    std::string late = "c";
    EXPECT_FALSE(q.try_push(late));
    EXPECT_EQ(q.capacity(), 1u);
}

TEST(BoundedQueue, CloseWithoutDrainLeavesItems) {
    BoundedQueue<int> q(4);
    q.push(1);
    q.push(2);
    q.close(false);
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_FALSE(q.push(3));
    EXPECT_EQ(q.take_remaining().size(), 2u);
}

TEST(BoundedQueue, CloseWithDrainHandsOutTheRest) {
    BoundedQueue<int> q(4);
    q.push(1);
    q.close(true);
    EXPECT_EQ(q.pop(), 1);
    EXPECT_FALSE(q.pop().has_value());
}

TEST(WorkerPool, RunsEveryJobOnceWhenDrained) {
    std::mutex m;
    std::multiset<std::string> seen;
    WorkerPool pool(3, 2, [&](const Job& j) {
        std::lock_guard lock(m);
        seen.insert(j.upload_id);
    });
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.submit(job_named(std::to_string(i))));
    pool.stop(true);
    EXPECT_EQ(seen.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(seen.count(std::to_string(i)), 1u);
}

TEST(WorkerPool, StopWithoutDrainFinishesRunningJobsOnly) {
    std::atomic<int> started{0};
    std::atomic<int> finished{0};
    std::atomic<bool> release{false};
    WorkerPool pool(1, 10, [&](const Job&) {
        ++started;
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        ++finished;
    });
    for (int i = 0; i < 5; ++i) pool.submit(job_named(std::to_string(i)));
    while (started == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::thread stopper([&] { pool.stop(false); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    release = true;
    stopper.join();
    EXPECT_EQ(started.load(), 1);
    EXPECT_EQ(finished.load(), 1);
    EXPECT_EQ(pool.queue_depth(), 4u);
    EXPECT_FALSE(pool.submit(job_named("late")));
}

TEST(WorkerPool, AJobThatThrowsIsHandedToTheCrashHandlerAndTheWorkerGoesOn) {
    std::mutex m;
    std::vector<std::pair<std::string, std::string>> crashed;
    std::multiset<std::string> ran;
    WorkerPool pool(
        1, 10,
        [&](const Job& j) {
            if (j.upload_id == "bad") throw std::runtime_error("type_error 316");
            if (j.upload_id == "odd") throw 42;  // not even a std::exception
            std::lock_guard lock(m);
            ran.insert(j.upload_id);
        },
        [&](const Job& j, const std::string& what) {
            std::lock_guard lock(m);
            crashed.emplace_back(j.upload_id, what);
            if (j.upload_id == "odd") throw std::runtime_error("the crash handler fails too");
        });
    for (const char* id : {"a", "bad", "b", "odd", "c"}) ASSERT_TRUE(pool.submit(job_named(id)));
    pool.stop(true);
    // One worker thread ran all five: the exceptions ended neither it nor the process.
    EXPECT_EQ(ran, (std::multiset<std::string>{"a", "b", "c"}));
    ASSERT_EQ(crashed.size(), 2u);
    EXPECT_EQ(crashed[0].first, "bad");
    EXPECT_EQ(crashed[0].second, "type_error 316");
    EXPECT_EQ(crashed[1].first, "odd");
    EXPECT_FALSE(crashed[1].second.empty());
}

// The watchdog's view of the pool (checks at made-up times): idle workers are parked, a job
// that beats at its steps is alive, a job stuck in one step is named once the limit has passed.
TEST(WorkerPool, WorkersBeatInTheProgressTracker) {
    using namespace std::chrono_literals;
    ProgressTracker progress;
    std::atomic<bool> release{false};
    std::atomic<int> step{0};
    WorkerPool pool(
        2, 4,
        [&](const Job& j, Heartbeat& heartbeat) {
            if (j.upload_id == "stuck") {
                step = 1;
                while (!release) std::this_thread::sleep_for(1ms);
                return;
            }
            for (int i = 0; i < 3; ++i) heartbeat.beat();
        },
        &progress);
    const auto t0 = ProgressTracker::Clock::now();
    const auto limit = 10s;
    std::this_thread::sleep_for(50ms);  // both workers waiting for a job
    EXPECT_TRUE(progress.stalled(t0, limit).empty());
    EXPECT_TRUE(progress.stalled(t0 + 1h, limit).empty()) << "an idle worker is never stuck";

    ASSERT_TRUE(pool.submit(job_named("stuck")));
    while (step == 0) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(progress.stalled(t0 + 2h, limit).empty());  // first sight of the busy worker
    const auto stuck = progress.stalled(t0 + 2h + 11s, limit);
    ASSERT_EQ(stuck.size(), 1u);
    EXPECT_EQ(stuck[0].rfind("worker ", 0), 0u) << stuck[0];

    release = true;
    pool.stop(true);
    EXPECT_TRUE(progress.stalled(t0 + 3h, limit).empty()) << "a stopped pool is forgotten";
}
