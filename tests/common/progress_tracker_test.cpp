// The liveness check behind the systemd watchdog, on a fake clock: beating and parked threads are
// alive, a thread whose step stops moving is named once the limit has passed.
#include "common/progress_tracker.hpp"

#include <gtest/gtest.h>

namespace imgspool {
namespace {

using namespace std::chrono_literals;
using Clock = ProgressTracker::Clock;

constexpr Clock::duration kLimit = 10s;

class ProgressTrackerTest : public ::testing::Test {
  protected:
    // One watchdog check at t0 + at.
    std::vector<std::string> check(Clock::duration at) { return tracker.stalled(t0 + at, kLimit); }

    ProgressTracker tracker;
    const Clock::time_point t0 = Clock::time_point{} + 1000h;
};

TEST_F(ProgressTrackerTest, AWorkerThatKeepsMovingStaysAlive) {
    auto worker = tracker.add("worker 1");
    for (int s = 0; s <= 60; s += 5) {
        worker->beat();
        EXPECT_TRUE(check(std::chrono::seconds(s)).empty()) << "at " << s << " s";
    }
}

TEST_F(ProgressTrackerTest, AFrozenWorkerIsNotAliveOnceItsStepOutlastsTheLimit) {
    auto worker = tracker.add("worker 1");
    auto other = tracker.add("worker 2");
    worker->unpark();  // took a job, then hangs in its first step
    other->park();
    EXPECT_TRUE(check(0s).empty());
    EXPECT_TRUE(check(5s).empty());
    EXPECT_TRUE(check(10s).empty());  // exactly the limit: still alive
    const auto stuck = check(15s);
    ASSERT_EQ(stuck.size(), 1u);
    EXPECT_EQ(stuck[0], "worker 1 (no progress for 15 s)");
    EXPECT_EQ(check(20s).size(), 1u);
}

TEST_F(ProgressTrackerTest, AWorkerThatMovesAgainIsAliveAgain) {
    auto worker = tracker.add("worker 1");
    worker->unpark();
    EXPECT_TRUE(check(0s).empty());
    EXPECT_EQ(check(11s).size(), 1u);
    worker->beat();  // the stuck upload timed out; the job moved on
    EXPECT_TRUE(check(12s).empty());
    EXPECT_TRUE(check(22s).empty());
    EXPECT_EQ(check(23s).size(), 1u);
}

TEST_F(ProgressTrackerTest, AParkedWorkerIsAliveHoweverLongItWaits) {
    auto idle = tracker.add("worker 1");
    idle->park();
    EXPECT_TRUE(check(0s).empty());
    EXPECT_TRUE(check(1h).empty());
    idle->unpark();  // a job arrives and never moves
    EXPECT_TRUE(check(1h + 1s).empty());
    EXPECT_EQ(check(1h + 12s).size(), 1u);
}

TEST_F(ProgressTrackerTest, AStepIsTimedFromTheFirstCheckThatSawIt) {
    auto worker = tracker.add("watcher settler");
    EXPECT_TRUE(check(0s).empty());
    worker->beat();  // between two checks: its time counts from the check at 5 s
    EXPECT_TRUE(check(5s).empty());
    EXPECT_TRUE(check(15s).empty());
    EXPECT_EQ(check(16s).size(), 1u);
}

TEST_F(ProgressTrackerTest, AHeartbeatWhoseOwnerEndedIsForgotten) {
    auto worker = tracker.add("worker 1");
    worker->unpark();
    EXPECT_TRUE(check(0s).empty());
    worker.reset();  // the thread ended (a stopped watcher, a pool that stopped)
    EXPECT_TRUE(check(1h).empty());
}

TEST_F(ProgressTrackerTest, EveryStuckThreadIsNamed) {
    auto a = tracker.add("watcher reader");
    auto b = tracker.add("worker 2");
    auto c = tracker.add("worker 3");
    c->park();
    EXPECT_TRUE(check(0s).empty());
    const auto stuck = check(30s);
    ASSERT_EQ(stuck.size(), 2u);
    EXPECT_EQ(stuck[0], "watcher reader (no progress for 30 s)");
    EXPECT_EQ(stuck[1], "worker 2 (no progress for 30 s)");
}

TEST(Heartbeat, UntrackedHeartbeatsWorkWithoutATracker) {
    auto beat = heartbeat_in(nullptr, "worker 1");
    const auto before = beat->state();
    beat->beat();
    EXPECT_NE(beat->state(), before);
    EXPECT_EQ(beat->name(), "worker 1");
}

TEST(Heartbeat, ParkingIsPartOfTheStateAndEveryCallMovesIt) {
    Heartbeat h("w");
    h.park();
    const auto parked = h.state();
    EXPECT_EQ(parked & 1u, 1u);
    h.park();
    EXPECT_NE(h.state(), parked);  // a park after a park still counts as a move
    h.unpark();
    EXPECT_EQ(h.state() & 1u, 0u);
}

}  // namespace
}  // namespace imgspool
