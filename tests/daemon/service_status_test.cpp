// The STATUS= line and the day's done/failed counts behind it.
#include "daemon/service_status.hpp"
#include "store/sqlite_job_db.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace imgspool {
namespace {

JobOutcome outcome(bool success) {
    JobOutcome out;
    out.success = success;
    return out;
}

TEST(ServiceStatus, IsOneLineWithEveryCount) {
    EXPECT_EQ(format_service_status({.in_flight = 2,
                                     .queued = 5,
                                     .waiting = 1,
                                     .deferred = 3,
                                     .done_today = 40,
                                     .failed_today = 7}),
              "2 in flight, 5 queued, 1 waiting, 3 deferred; today 40 done, 7 failed");
}

TEST(JobsToday, CountsDecidedJobs) {
    JobsToday today;
    today.job_finished(outcome(true));
    today.job_finished(outcome(true));
    today.job_finished(outcome(false));
    EXPECT_EQ(today.counts().done, 2);
    EXPECT_EQ(today.counts().failed, 1);
}

TEST(JobsToday, AFailureThatRunsAgainIsCountedOnce) {
    JobsToday today;
    JobOutcome not_recorded = outcome(false);  // the database refused the failure: runs again
    not_recorded.retry_at = std::chrono::system_clock::now();
    today.job_finished(not_recorded);
    EXPECT_EQ(today.counts().failed, 0);
    JobOutcome committed = outcome(true);  // committed, its move to done/ is retried
    committed.retry_at = std::chrono::system_clock::now();
    today.job_finished(committed);
    EXPECT_EQ(today.counts().done, 1);
}

TEST(JobsToday, IsSeededFromTheDatabase) {
    std::string dir = (std::filesystem::temp_directory_path() / "status-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    {
        auto db = SqliteJobDb::open(std::filesystem::path(dir) / "imgspool.db");
        ASSERT_TRUE(db) << db.error().message();
        JobDb& d = *db.value();
        for (const char* id : {"a", "b", "c"}) {
            ASSERT_TRUE(d.insert_job(id, "default", std::string(id) + ".jpg", "web"));
            ASSERT_TRUE(d.start_attempt(id));
        }
        ASSERT_TRUE(d.complete("a", {}, ""));
        ASSERT_TRUE(d.complete("b", {}, ""));
        ASSERT_TRUE(d.fail("c", make_error(Stage::validate, "not an image")));
        JobsToday today;
        today.seed(d);
        today.job_finished(outcome(true));
        EXPECT_EQ(today.counts().done, 3);
        EXPECT_EQ(today.counts().failed, 1);
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace imgspool
