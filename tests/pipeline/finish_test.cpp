#include "pipeline/finish.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;

namespace {

class FinishTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/imgspool-finish-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        spool_ = SpoolLayout{"s", tmpl, "web"};
    }
    void TearDown() override { stdfs::remove_all(spool_.root); }
    stdfs::path put(const stdfs::path& p, const std::string& data) {
        stdfs::create_directories(p.parent_path());
        std::ofstream(p) << data;
        return p;
    }
    std::string slurp(const stdfs::path& p) { return fs::read_file(p).value(); }
    SpoolLayout spool_;
};

TEST_F(FinishTest, DoneKeepsRelativePathAndNeverOverwrites) {
    put(spool_.done() / "sub/a.jpg", "earlier");
    auto from = put(spool_.work() / "id1/sub/a.jpg", "new");
    auto r = move_to_done(spool_, from, "sub/a.jpg");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), spool_.done() / "sub/a.1.jpg");
    EXPECT_EQ(slurp(spool_.done() / "sub/a.jpg"), "earlier");
    EXPECT_EQ(slurp(spool_.done() / "sub/a.1.jpg"), "new");
}

TEST_F(FinishTest, FailedWritesErrorJsonBesideTheOriginal) {
    auto from = put(spool_.work() / "id2/b.png", "bad");
    FailureNote note{"id2", "s", "b.png", make_error(Stage::validate, "image is 50x50, too small")};
    auto r = move_to_failed(spool_, from, "b.png", note);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), spool_.failed() / "b.png");
    auto j = nlohmann::json::parse(slurp(spool_.failed() / "b.png.error.json"));
    EXPECT_EQ(j["upload_id"], "id2");
    EXPECT_EQ(j["stage"], "validate");
    EXPECT_EQ(j["error"], "image is 50x50, too small");
    EXPECT_EQ(j["source"], "b.png");
    EXPECT_FALSE(stdfs::exists(from));
}

TEST_F(FinishTest, FailedNeverOverwritesAUsersErrorJson) {
    // Somebody's own file already sits where our note would go: pick another name.
    put(spool_.failed() / "c.jpg.error.json", "user's own file");
    auto from = put(spool_.work() / "id3/c.jpg", "x");
    FailureNote note{"id3", "s", "c.jpg", make_error(Stage::render, "truncated")};
    auto r = move_to_failed(spool_, from, "c.jpg", note);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value(), spool_.failed() / "c.1.jpg");
    EXPECT_EQ(slurp(spool_.failed() / "c.jpg.error.json"), "user's own file");
    EXPECT_TRUE(stdfs::exists(spool_.failed() / "c.1.jpg.error.json"));
}

TEST_F(FinishTest, RemoveWorkFolderKeepsFilesLeftBehind) {
    stdfs::create_directories(spool_.work() / "id4/a/b");
    remove_work_folder(spool_, "id4");
    EXPECT_FALSE(stdfs::exists(spool_.work() / "id4"));
    put(spool_.work() / "id5/a/keep.jpg", "x");
    remove_work_folder(spool_, "id5");
    EXPECT_TRUE(stdfs::exists(spool_.work() / "id5/a/keep.jpg"));
}

}  // namespace
