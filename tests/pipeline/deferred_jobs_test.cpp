#include "pipeline/deferred_jobs.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/retry_delay.hpp"

namespace imgspool {
namespace {

using namespace std::chrono_literals;
using Clock = DeferredJobs::Clock;

Job job_named(const std::string& id) {
    return Job{id,
               SpoolLayout{"photos", "/spool", "web"},
               "/spool/work/" + id + "/a.jpg",
               "a.jpg",
               std::nullopt,
               0};
}

// Collects what the scheduler hands on.
class Received {
  public:
    bool add(Job job) {
        std::lock_guard lock(mutex_);
        ids_.push_back(job.upload_id);
        changed_.notify_all();
        return accept_;
    }
    std::vector<std::string> wait_for(std::size_t n, std::chrono::milliseconds limit = 5s) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, limit, [&] { return ids_.size() >= n; });
        return ids_;
    }
    void refuse() { accept_ = false; }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> ids_;
    bool accept_ = true;
};

TEST(DeferredJobs, HandsJobsOnInTheOrderTheyAreDue) {
    Received got;
    DeferredJobs deferred([&](Job j) { return got.add(std::move(j)); });
    deferred.start();
    const auto now = Clock::now();
    deferred.add(job_named("late"), now + 300ms);
    deferred.add(job_named("early"), now + 100ms);
    deferred.add(job_named("overdue"), now - 1s);
    EXPECT_EQ(got.wait_for(3), (std::vector<std::string>{"overdue", "early", "late"}));
    EXPECT_EQ(deferred.size(), 0u);
}

TEST(DeferredJobs, NothingIsHandedOnBeforeItsTime) {
    Received got;
    DeferredJobs deferred([&](Job j) { return got.add(std::move(j)); });
    deferred.start();
    deferred.add(job_named("later"), Clock::now() + 1h);
    EXPECT_TRUE(got.wait_for(1, 200ms).empty());
    EXPECT_EQ(deferred.size(), 1u);
}

TEST(DeferredJobs, ReleaseAllMakesEveryJobDueNow) {
    Received got;
    DeferredJobs deferred([&](Job j) { return got.add(std::move(j)); });
    deferred.start();
    deferred.add(job_named("a"), Clock::now() + 1h);
    deferred.add(job_named("b"), Clock::now() + 2h);
    deferred.release_all();
    EXPECT_EQ(got.wait_for(2).size(), 2u);
}

TEST(DeferredJobs, StopKeepsWaitingJobsAndAStoppingReceiverEndsTheThread) {
    Received got;
    got.refuse();
    DeferredJobs deferred([&](Job j) { return got.add(std::move(j)); });
    deferred.start();
    deferred.add(job_named("refused"), Clock::now());
    deferred.add(job_named("kept"), Clock::now() + 1h);
    EXPECT_EQ(got.wait_for(1).size(), 1u);
    deferred.stop();
    EXPECT_EQ(deferred.size(), 1u);
}

TEST(RetryDelay, DoublesFromTheFirstWaitUpToTheCapWithJitter) {
    const RetrySettings settings{1000ms, 8000ms};
    std::mt19937_64 rng(42);
    for (int round = 0; round < 200; ++round) {
        for (int deferrals = 0; deferrals < 8; ++deferrals) {
            const auto full = std::min(8000ms, 1000ms * (1 << deferrals));
            const auto d = retry_delay(deferrals, settings, rng);
            EXPECT_GE(d, full / 2) << deferrals;
            EXPECT_LE(d, full) << deferrals;
        }
    }
}

TEST(RetryDelay, ACapBelowTheFirstWaitIsTheFirstWait) {
    std::mt19937_64 rng(1);
    const auto d = retry_delay(5, RetrySettings{2000ms, 500ms}, rng);
    EXPECT_GE(d, 1000ms);
    EXPECT_LE(d, 2000ms);
}

}  // namespace
}  // namespace imgspool
