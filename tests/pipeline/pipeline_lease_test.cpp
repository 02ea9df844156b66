// A run whose job was adopted by another node meanwhile (every write to the job record answers
// Stage::lease) is abandoned: the original stays in work/<id>/, nothing reaches done/ or failed/,
// the stored objects stay (the adopter writes the same keys), nothing is retried.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "pipeline/finish.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/render.hpp"
#include "store/sqlite_job_db.hpp"
#include "tests/pipeline/lease_losing_job_db.hpp"
#include "tests/pipeline/pipeline_test_support.hpp"
#include "tests/store/job_db_reads.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;
using imgspool::test::FakeStore;
using imgspool::test::LeaseLosingJobDb;
using imgspool::test::make_jpeg;
using Update = LeaseLosingJobDb::Update;

namespace {

class CountingObserver final : public JobObserver {
  public:
    void job_started(const Job&) override { ++started; }
    void job_finished(const JobOutcome&) override { ++finished; }
    void job_deferred(const JobOutcome&) override { ++deferred; }
    void job_abandoned(const JobOutcome& out) override {
        ++abandoned;
        last_abandoned = out;
    }
    // The pipeline reports on the calling thread here: plain counters do.
    int started = 0, finished = 0, deferred = 0, abandoned = 0;
    JobOutcome last_abandoned;
};

class PipelineLeaseTest : public imgspool::test::PipelineFixture {
  protected:
    static void SetUpTestSuite() { ASSERT_TRUE(init_vips("pipeline_lease_test").ok()); }

    // Runs `job` through a pipeline whose job record loses the claim at `update`'s nth call.
    JobOutcome run_losing_at(const Job& job, Update update, int nth = 1) {
        LeaseLosingJobDb db(*db_, update, nth);
        Pipeline p(settings_, db, store_, &observer_);
        JobOutcome out;
        EXPECT_NO_THROW(out = p.run(job));
        EXPECT_GE(db.refused(), 1) << "the claim was never lost";
        return out;
    }

    // What every abandoned run leaves: the original where it was, for the adopter.
    void expect_abandoned(const Job& job, const JobOutcome& out) {
        EXPECT_TRUE(out.abandoned);
        EXPECT_FALSE(out.success);
        EXPECT_FALSE(out.deferred);
        EXPECT_FALSE(out.retry_at) << "an abandoned job is not run again here";
        ASSERT_TRUE(out.error);
        EXPECT_EQ(out.error->stage, Stage::lease);
        EXPECT_EQ(out.error->reason, LeaseLosingJobDb::kReason);
        EXPECT_TRUE(out.final_path.empty());
        EXPECT_TRUE(stdfs::exists(job.work_path)) << "the adopter's file left work/";
        EXPECT_FALSE(stdfs::exists(spool_.done())) << "something reached done/";
        EXPECT_FALSE(stdfs::exists(spool_.failed())) << "something reached failed/";
        EXPECT_EQ(observer_.abandoned, 1);
        EXPECT_EQ(observer_.finished, 0);
        EXPECT_EQ(observer_.deferred, 0);
        EXPECT_EQ(observer_.last_abandoned.upload_id, job.upload_id);
    }

    CountingObserver observer_;
};

TEST_F(PipelineLeaseTest, LostAtStartAttemptStopsBeforeAnything) {
    const Job job = drop("a.jpg", make_jpeg(640, 480, 1));
    const JobOutcome out = run_losing_at(job, Update::start_attempt);
    expect_abandoned(job, out);
    EXPECT_EQ(store_.calls, 0);
    const auto rec = find_job(*db_, job.upload_id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, "pending");
    EXPECT_EQ(rec->attempts, 0) << "the refused attempt was counted";
}

TEST_F(PipelineLeaseTest, LostAtSetSourceStopsBeforeRendering) {
    const Job job = drop("a.jpg", make_jpeg(640, 480, 2));
    const JobOutcome out = run_losing_at(job, Update::set_source);
    expect_abandoned(job, out);
    EXPECT_EQ(store_.calls, 0);
    const auto rec = find_job(*db_, job.upload_id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, "processing");
    EXPECT_TRUE(rec->source_hash.empty());
}

// Progress is recorded at 10, 60 and 90: the third comes after the store step.
TEST_F(PipelineLeaseTest, LostAtProgressAfterTheStoreKeepsTheStoredObjects) {
    const Job job = drop("a.jpg", make_jpeg(640, 480, 3));
    const JobOutcome out = run_losing_at(job, Update::set_progress, 3);
    expect_abandoned(job, out);
    EXPECT_EQ(store_.calls, 1);
    EXPECT_EQ(store_.objects_.size(), 7u) << "stored objects were deleted";
    const auto rec = find_job(*db_, job.upload_id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, "processing");
    EXPECT_EQ(rec->progress, 60);
}

TEST_F(PipelineLeaseTest, LostAtCompleteKeepsTheStoredObjectsAndCommitsNothing) {
    const Job job = drop("a.jpg", make_jpeg(640, 480, 4));
    const JobOutcome out = run_losing_at(job, Update::complete);
    expect_abandoned(job, out);
    EXPECT_EQ(store_.objects_.size(), 7u) << "stored objects were deleted";
    EXPECT_TRUE(store_.objects_.count("images/" + job.upload_id + "/small.webp"));
    const auto rec = find_job(*db_, job.upload_id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, "processing");
    EXPECT_TRUE(rec->outputs.empty());
    // The run let go of the file: the adopter's run finishes it normally.
    Pipeline adopter(settings_, *db_, store_);
    EXPECT_TRUE(adopter.run(job).success);
    EXPECT_TRUE(stdfs::exists(spool_.done() / "a.jpg"));
}

TEST_F(PipelineLeaseTest, LostWhenRecordingAValidationFailureLeavesTheFileInWork) {
    const Job job = drop("notes.jpg", "just some text, not an image");
    const JobOutcome out = run_losing_at(job, Update::fail);
    expect_abandoned(job, out);
    EXPECT_FALSE(stdfs::exists(spool_.failed() / "notes.jpg.error.json"));
    const auto rec = find_job(*db_, job.upload_id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, "processing");
    EXPECT_TRUE(rec->error.empty());
}

// A store that refuses for good: the run would delete every key it meant to write, but those are
// the adopter's keys too, and the adopter may have written them already.
TEST_F(PipelineLeaseTest, LostWhenRecordingAStoreFailureKeepsTheAdoptersObjects) {
    const Job job = drop("a.jpg", make_jpeg(640, 480, 5));
    const std::string adopters = "images/" + job.upload_id + "/small.webp";
    store_.objects_[adopters] = "written by the adopter";
    store_.fail = FakeStore::Failure::permanent;
    const JobOutcome out = run_losing_at(job, Update::fail);
    expect_abandoned(job, out);
    EXPECT_EQ(store_.objects_.count(adopters), 1u) << "the adopter's object was deleted";
}

// The counterpart: while the claim holds, a recorded failure still deletes those keys.
TEST_F(PipelineLeaseTest, ARecordedStoreFailureStillDeletesTheRunsKeys) {
    const Job job = drop("a.jpg", make_jpeg(640, 480, 6));
    store_.objects_["images/" + job.upload_id + "/small.webp"] = "an earlier run's";
    store_.fail = FakeStore::Failure::permanent;
    Pipeline p(settings_, *db_, store_, &observer_);
    const JobOutcome out = p.run(job);
    EXPECT_FALSE(out.abandoned);
    EXPECT_FALSE(out.success);
    EXPECT_TRUE(store_.objects_.empty());
    EXPECT_TRUE(stdfs::exists(spool_.failed() / "a.jpg"));
    EXPECT_EQ(find_job(*db_, job.upload_id)->status, "failed");
    EXPECT_EQ(observer_.finished, 1);
    EXPECT_EQ(observer_.abandoned, 0);
}

TEST_F(PipelineLeaseTest, LostWhenRecordingADeferralIsNotRetried) {
    const Job job = drop("a.jpg", make_jpeg(640, 480, 7));
    store_.fail = FakeStore::Failure::transient;
    const JobOutcome out = run_losing_at(job, Update::defer);
    expect_abandoned(job, out);
    const auto rec = find_job(*db_, job.upload_id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, "processing");
    EXPECT_TRUE(rec->next_attempt_at.empty());
    EXPECT_TRUE(rec->last_error.empty());
}

TEST_F(PipelineLeaseTest, RecoveryOfAFailedJobWhoseClaimIsLostLeavesTheFile) {
    const Job job = drop("b.jpg", "not an image");
    JobRecord record = *find_job(*db_, job.upload_id);
    record.status = "failed";
    record.error_stage = "validate";
    record.error = "not an image";
    LeaseLosingJobDb db(*db_, Update::fail);
    Pipeline p(settings_, db, store_, &observer_);
    const JobOutcome out = p.finish_failed(job, record);
    EXPECT_TRUE(out.abandoned);
    EXPECT_FALSE(out.retry_at);
    EXPECT_TRUE(stdfs::exists(job.work_path));
    EXPECT_FALSE(stdfs::exists(spool_.failed()));
}

TEST_F(PipelineLeaseTest, AWorkerExceptionAfterTheClaimWasLostLeavesTheFile) {
    const Job job = drop("c.jpg", "x");
    LeaseLosingJobDb db(*db_, Update::fail);
    EXPECT_NO_THROW(fail_after_exception(db, job, "boom", &observer_));
    EXPECT_EQ(db.refused(), 1);
    EXPECT_TRUE(stdfs::exists(job.work_path));
    EXPECT_FALSE(stdfs::exists(spool_.failed()));
    EXPECT_EQ(find_job(*db_, job.upload_id)->status, "pending");
    EXPECT_EQ(observer_.abandoned, 1);
    EXPECT_EQ(observer_.finished, 0);
    EXPECT_TRUE(observer_.last_abandoned.abandoned);
}

// The fan-out passes the event on like the others.
TEST(ObserverFanOut, PassesAbandonedJobsOn) {
    CountingObserver a, b;
    ObserverFanOut fan({&a, &b});
    JobOutcome out;
    out.upload_id = "u1";
    out.abandoned = true;
    fan.job_abandoned(out);
    EXPECT_EQ(a.abandoned, 1);
    EXPECT_EQ(b.abandoned, 1);
    EXPECT_EQ(b.last_abandoned.upload_id, "u1");
    EXPECT_EQ(a.finished + b.finished, 0);
}

}  // namespace
