#include "pipeline/pipeline.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "pipeline/render.hpp"
#include "store/sqlite_job_db.hpp"
#include "tests/pipeline/pipeline_test_support.hpp"
#include "tests/store/job_db_reads.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;
using imgspool::test::FakeStore;
using imgspool::test::make_jpeg;

namespace {

class PipelineTest : public imgspool::test::PipelineFixture {
  protected:
    static void SetUpTestSuite() { ASSERT_TRUE(init_vips("pipeline_test").ok()); }
};

TEST_F(PipelineTest, GoodJpegIsRenderedStoredCommittedAndMovedToDone) {
    Pipeline p(settings_, *db_, store_);
    Job job = drop("sub/a.jpg", make_jpeg(640, 480, 1));
    JobOutcome out = p.run(job);
    ASSERT_TRUE(out.success) << out.error->message();
    EXPECT_EQ(out.outputs.size(), 7u);  // 3 sizes x (jpeg, webp) + original
    EXPECT_EQ(store_.objects_.size(), 7u);
    EXPECT_TRUE(store_.objects_.count("images/" + job.upload_id + "/small.webp"));
    EXPECT_TRUE(store_.objects_.count("images/" + job.upload_id + "/original.jpg"));
    EXPECT_EQ(out.final_path, spool_.done() / "sub/a.jpg");
    EXPECT_TRUE(stdfs::exists(spool_.done() / "sub/a.jpg"));
    EXPECT_FALSE(stdfs::exists(spool_.work() / job.upload_id));
    auto rec = find_job(*db_, job.upload_id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, "complete");
    EXPECT_EQ(rec->progress, 100);
    EXPECT_EQ(rec->width, 640);
    EXPECT_EQ(rec->format, "jpeg");
    EXPECT_EQ(rec->source_hash.size(), 64u);
}

TEST_F(PipelineTest, SameBytesAgainReuseTheCachedSet) {
    Pipeline p(settings_, *db_, store_);
    const std::string bytes = make_jpeg(400, 300, 2);
    JobOutcome first = p.run(drop("a.jpg", bytes));
    ASSERT_TRUE(first.success);
    JobOutcome second = p.run(drop("b.jpg", bytes));
    ASSERT_TRUE(second.success);
    EXPECT_TRUE(second.cache_hit);
    EXPECT_EQ(store_.calls, 1) << "a cache hit stores nothing";
    ASSERT_EQ(second.outputs.size(), first.outputs.size());
    for (size_t i = 0; i < first.outputs.size(); ++i) {
        EXPECT_EQ(second.outputs[i].url, first.outputs[i].url);
    }
    EXPECT_TRUE(stdfs::exists(spool_.done() / "b.jpg"));
}

TEST_F(PipelineTest, ChangedProfileSettingsRenderAfresh) {
    const std::string bytes = make_jpeg(400, 300, 3);
    {
        Pipeline p(settings_, *db_, store_);
        ASSERT_TRUE(p.run(drop("a.jpg", bytes)).success);
    }
    settings_.profiles["web"].variants[0].outputs[0].quality = 70;
    Pipeline changed(settings_, *db_, store_);
    JobOutcome out = changed.run(drop("b.jpg", bytes));
    ASSERT_TRUE(out.success);
    EXPECT_FALSE(out.cache_hit);
    EXPECT_EQ(store_.calls, 2);
}

// A reload swaps the settings: a job claimed before keeps the ones it was claimed with (its
// key layout and limits), a job claimed after gets the new ones.
TEST_F(PipelineTest, AJobKeepsTheSettingsItWasClaimedWithAcrossASwap) {
    Pipeline p(settings_, *db_, store_);
    Job before = drop("before.jpg", make_jpeg(640, 480, 11));
    before.settings = p.current().settings();

    PipelineSettings next = settings_;
    next.key_template = "reloaded/{upload_id}/{variant}.{ext}";
    next.limits.min_width = 1000;  // 640x480 is too small now
    p.current().set_settings(std::make_shared<const PipelineSettings>(next));
    Job after = drop("after.jpg", make_jpeg(640, 480, 12));
    after.settings = p.current().settings();

    const JobOutcome first = p.run(before);
    EXPECT_TRUE(first.success) << (first.error ? first.error->message() : "");
    EXPECT_TRUE(store_.objects_.count("images/" + before.upload_id + "/small.jpg"));
    const JobOutcome second = p.run(after);
    EXPECT_FALSE(second.success);
    ASSERT_TRUE(second.error.has_value());
    EXPECT_EQ(second.error->stage, Stage::validate);
    EXPECT_NE(second.error->reason.find("1000"), std::string::npos) << second.error->reason;

    // A job without a snapshot of its own (resumed after a restart) runs with the current ones.
    next.limits.min_width = 100;
    p.current().set_settings(std::make_shared<const PipelineSettings>(next));
    Job resumed = drop("resumed.jpg", make_jpeg(640, 480, 13));
    const JobOutcome third = p.run(resumed);
    EXPECT_TRUE(third.success) << (third.error ? third.error->message() : "");
    EXPECT_TRUE(store_.objects_.count("reloaded/" + resumed.upload_id + "/small.jpg"));
}

// A store swapped in is used by the jobs that start afterwards; the old one is released once
// no job holds it.
TEST_F(PipelineTest, JobsStartingAfterAStoreSwapUseTheNewStore) {
    auto old_store = std::make_shared<FakeStore>();
    auto new_store = std::make_shared<FakeStore>();
    Pipeline p(settings_, *db_, old_store);
    const JobOutcome first = p.run(drop("a.jpg", make_jpeg(640, 480, 21)));
    EXPECT_TRUE(first.success);
    EXPECT_EQ(old_store->objects_.size(), 7u);

    std::weak_ptr<FakeStore> old_ref = old_store;
    old_store.reset();
    p.current().set_store(new_store);
    EXPECT_TRUE(old_ref.expired());
    const JobOutcome second = p.run(drop("b.jpg", make_jpeg(640, 480, 22)));
    EXPECT_TRUE(second.success);
    EXPECT_EQ(new_store->objects_.size(), 7u);
}

TEST_F(PipelineTest, FailedUploadFailsTheJobAndIsNotCached) {
    Pipeline p(settings_, *db_, store_);
    const std::string bytes = make_jpeg(400, 300, 4);
    store_.fail = FakeStore::Failure::permanent;
    Job job = drop("c.jpg", bytes);
    JobOutcome out = p.run(job);
    ASSERT_FALSE(out.success);
    EXPECT_EQ(out.error->stage, Stage::store);
    EXPECT_TRUE(stdfs::exists(spool_.failed() / "c.jpg"));
    auto note = nlohmann::json::parse(fs::read_file(spool_.failed() / "c.jpg.error.json").value());
    EXPECT_EQ(note["stage"], "store");
    EXPECT_NE(note["error"].get<std::string>().find("SlowDown"), std::string::npos);
    auto rec = find_job(*db_, job.upload_id);
    EXPECT_EQ(rec->status, "failed");
    EXPECT_EQ(rec->error_stage, "store");

    // S3 is back: dropping the file again renders and stores it for real.
    store_.fail = FakeStore::Failure::none;
    JobOutcome retry = p.run(drop("c.jpg", bytes));
    ASSERT_TRUE(retry.success);
    EXPECT_FALSE(retry.cache_hit);
    EXPECT_EQ(store_.objects_.size(), 7u);
}

TEST_F(PipelineTest, InvalidFileGoesToFailedWithTheValidatorsReason) {
    Pipeline p(settings_, *db_, store_);
    Job job = drop("notes.jpg", "just some text, not an image");
    JobOutcome out = p.run(job);
    ASSERT_FALSE(out.success);
    EXPECT_EQ(out.error->stage, Stage::validate);
    EXPECT_EQ(store_.calls, 0);
    EXPECT_TRUE(stdfs::exists(spool_.failed() / "notes.jpg.error.json"));
}

TEST_F(PipelineTest, OversizedFileIsRefusedBeforeReading) {
    settings_.limits.max_bytes = 1000;
    Pipeline p(settings_, *db_, store_);
    JobOutcome out = p.run(drop("big.jpg", make_jpeg(400, 300, 5)));
    ASSERT_FALSE(out.success);
    EXPECT_EQ(out.error->stage, Stage::validate);
    EXPECT_NE(out.error->reason.find("limit of 1000 bytes"), std::string::npos)
        << out.error->reason;
}

TEST_F(PipelineTest, RecoveryOfACommittedJobOnlyMovesIt) {
    Pipeline p(settings_, *db_, store_);
    const std::string bytes = make_jpeg(300, 300, 6);
    Job first = drop("d.jpg", bytes);
    ASSERT_TRUE(p.run(first).success);
    // Simulate a crash after commit and before the move: the original is back in work/.
    Job again = first;
    stdfs::create_directories(again.work_path.parent_path());
    stdfs::rename(spool_.done() / "d.jpg", again.work_path);
    const int calls = store_.calls;
    const std::optional<JobRecord> record = find_job(*db_, first.upload_id);
    ASSERT_TRUE(record);
    JobOutcome out = p.finish_completed(again, *record);
    EXPECT_TRUE(out.success);
    EXPECT_EQ(store_.calls, calls);
    EXPECT_TRUE(stdfs::exists(spool_.done() / "d.jpg"));
    EXPECT_FALSE(stdfs::exists(spool_.done() / "d.1.jpg"));
}

}  // namespace
