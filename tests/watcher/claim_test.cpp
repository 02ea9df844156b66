#include "watcher/claim.hpp"

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "temp_dir.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;
using imgspool::testing::put_file;
using imgspool::testing::TempDir;

namespace {

class ClaimTest : public ::testing::Test {
  protected:
    TempDir dir;
    SpoolLayout spool{"photos", dir.path(), "web"};

    static std::string slurp(const stdfs::path& p) {
        auto r = fs::read_file(p);
        return r ? r.value() : "<unreadable>";
    }
};

}  // namespace

TEST_F(ClaimTest, MovesIntoWorkUnderTheUploadId) {
    put_file(spool.inbox() / "sub" / "a.jpg", "image");
    auto c = claim(spool, spool.inbox() / "sub" / "a.jpg", "u1");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->upload_id, "u1");
    EXPECT_EQ(c->relative, "sub/a.jpg");
    EXPECT_EQ(c->work_path, spool.work() / "u1" / "sub" / "a.jpg");
    EXPECT_EQ(slurp(c->work_path), "image");
    EXPECT_FALSE(stdfs::exists(spool.inbox() / "sub" / "a.jpg"));
}

TEST_F(ClaimTest, RefusesSymlinksAndLeavesThemAlone) {
    put_file(dir.path() / "secret", "not yours");
    stdfs::create_directories(spool.inbox());
    stdfs::create_symlink(dir.path() / "secret", spool.inbox() / "l.jpg");
    auto c = claim(spool, spool.inbox() / "l.jpg", "u1");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().stage, Stage::claim);
    EXPECT_NE(c.error().reason.find("symbolic link"), std::string::npos);
    EXPECT_TRUE(stdfs::is_symlink(spool.inbox() / "l.jpg"));
    EXPECT_FALSE(stdfs::exists(spool.work() / "u1"));
}

TEST_F(ClaimTest, NeverOverwrites) {
    put_file(spool.inbox() / "a.jpg", "new");
    put_file(spool.work() / "u1" / "a.jpg", "already claimed");
    auto c = claim(spool, spool.inbox() / "a.jpg", "u1");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().stage, Stage::claim);
    EXPECT_EQ(slurp(spool.work() / "u1" / "a.jpg"), "already claimed");
    EXPECT_EQ(slurp(spool.inbox() / "a.jpg"), "new");
}

TEST_F(ClaimTest, RefusesMissingFilesAndFilesOutsideTheInbox) {
    stdfs::create_directories(spool.inbox());
    auto missing = claim(spool, spool.inbox() / "gone.jpg", "u1");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().reason.find("vanished"), std::string::npos);

    put_file(spool.done() / "x.jpg", "x");
    EXPECT_FALSE(claim(spool, spool.done() / "x.jpg", "u1").ok());
    EXPECT_FALSE(claim(spool, spool.inbox() / ".." / "done" / "x.jpg", "u1").ok());
    EXPECT_FALSE(claim(spool, spool.inbox(), "u1").ok());
    put_file(spool.inbox() / "b.jpg", "b");
    EXPECT_FALSE(claim(spool, spool.inbox() / "b.jpg", "../escape").ok());
    EXPECT_TRUE(stdfs::exists(spool.inbox() / "b.jpg"));
}

TEST_F(ClaimTest, ListClaimedFindsEveryRegularFileByUpload) {
    put_file(spool.work() / "u1" / "a.jpg", "a");
    put_file(spool.work() / "u2" / "sub" / "b.jpg", "b");
    put_file(spool.work() / "stray.txt", "not in an upload folder");
    stdfs::create_symlink(spool.work() / "u1" / "a.jpg", spool.work() / "u2" / "link.jpg");
    auto claimed = list_claimed(spool);
    ASSERT_EQ(claimed.size(), 2u);
    EXPECT_EQ(claimed[0].upload_id, "u1");
    EXPECT_EQ(claimed[0].relative, "a.jpg");
    EXPECT_EQ(claimed[0].work_path, spool.work() / "u1" / "a.jpg");
    EXPECT_EQ(claimed[1].upload_id, "u2");
    EXPECT_EQ(claimed[1].relative, "sub/b.jpg");
}

TEST_F(ClaimTest, ListClaimedOfAMissingWorkFolderIsEmpty) {
    EXPECT_TRUE(list_claimed(spool).empty());
}

TEST(UploadId, IsARandomLowercaseUuid) {
    std::string a = new_upload_id();
    std::string b = new_upload_id();
    EXPECT_NE(a, b);
    ASSERT_EQ(a.size(), 36u);
    EXPECT_EQ(a[14], '4');  // version 4
    for (char ch : a)
        EXPECT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || ch == '-');
}
