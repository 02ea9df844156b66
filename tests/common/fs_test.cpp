#include "common/fs.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace stdfs = std::filesystem;
using namespace imgspool;

namespace {

class FsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/imgspool-fs-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { stdfs::remove_all(dir_); }
    void put(const stdfs::path& p, const std::string& data) {
        stdfs::create_directories(p.parent_path());
        std::ofstream(p) << data;
    }
    std::string slurp(const stdfs::path& p) {
        auto r = fs::read_file(p);
        return r ? r.value() : "<error>";
    }
    stdfs::path dir_;
};

TEST_F(FsTest, RenameNoReplaceRefusesToOverwrite) {
    put(dir_ / "a", "new");
    put(dir_ / "b", "user data");
    Status st = fs::rename_noreplace(dir_ / "a", dir_ / "b");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(slurp(dir_ / "b"), "user data");
    EXPECT_EQ(slurp(dir_ / "a"), "new");
}

TEST_F(FsTest, RenameNoReplaceCreatesParents) {
    put(dir_ / "a", "x");
    ASSERT_TRUE(fs::rename_noreplace(dir_ / "a", dir_ / "deep/er/b").ok());
    EXPECT_EQ(slurp(dir_ / "deep/er/b"), "x");
    EXPECT_FALSE(stdfs::exists(dir_ / "a"));
}

TEST_F(FsTest, MoveUniqueAddsSuffixOnClash) {
    put(dir_ / "done/photo.jpg", "first");
    put(dir_ / "in/photo.jpg", "second");
    put(dir_ / "in2/photo.jpg", "third");
    auto r = fs::move_unique(dir_ / "in/photo.jpg", dir_ / "done/photo.jpg");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), dir_ / "done/photo.1.jpg");
    auto r2 = fs::move_unique(dir_ / "in2/photo.jpg", dir_ / "done/photo.jpg");
    ASSERT_TRUE(r2.ok());
    EXPECT_EQ(r2.value(), dir_ / "done/photo.2.jpg");
    EXPECT_EQ(slurp(dir_ / "done/photo.jpg"), "first");
    EXPECT_EQ(slurp(dir_ / "done/photo.1.jpg"), "second");
    EXPECT_EQ(slurp(dir_ / "done/photo.2.jpg"), "third");
}

TEST_F(FsTest, MoveUniqueReportsAMissingSource) {
    auto r = fs::move_unique(dir_ / "nope.jpg", dir_ / "done/nope.jpg");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().reason.find("No such file"), std::string::npos) << r.error().reason;
}

TEST_F(FsTest, ReadFileRefusesSymlinks) {
    put(dir_ / "target", "secret");
    stdfs::create_symlink(dir_ / "target", dir_ / "link");
    auto r = fs::read_file(dir_ / "link");
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(slurp(dir_ / "target"), "secret");
}

TEST_F(FsTest, WriteFileAtomicReplacesWholeFile) {
    ASSERT_TRUE(fs::write_file_atomic(dir_ / "x/state.json", "{\"a\":1}").ok());
    ASSERT_TRUE(fs::write_file_atomic(dir_ / "x/state.json", "{}").ok());
    EXPECT_EQ(slurp(dir_ / "x/state.json"), "{}");
    EXPECT_EQ(std::distance(stdfs::directory_iterator(dir_ / "x"), stdfs::directory_iterator()), 1);
}

}  // namespace
