#include "upload/part_file.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace imgspool::upload {
namespace {

namespace stdfs = std::filesystem;

class PartFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char dir_template[] = "/tmp/imgspool-part-XXXXXX";
        ASSERT_NE(mkdtemp(dir_template), nullptr);
        dir_ = dir_template;
    }
    void TearDown() override { stdfs::remove_all(dir_); }
    std::size_t files() const {
        return static_cast<std::size_t>(std::distance(stdfs::directory_iterator(dir_), {}));
    }
    stdfs::path dir_;
};

TEST_F(PartFileTest, WritesARandomlyNamedFileAndRemovesItWhenDropped) {
    stdfs::path path;
    {
        Result<PartFile> part = PartFile::create(dir_);
        ASSERT_TRUE(part.ok()) << part.error().message();
        path = part->path();
        EXPECT_EQ(path.parent_path(), dir_);
        EXPECT_EQ(path.extension(), ".part");
        EXPECT_EQ(path.stem().string().size(), 32u);  // 128 bits in hex
        ASSERT_TRUE(part->write("hello ").ok());
        ASSERT_TRUE(part->write("world").ok());
        EXPECT_EQ(part->size(), 11u);
        ASSERT_TRUE(part->close().ok());
        std::ifstream in(path, std::ios::binary);
        EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "hello world");
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777 & ~0640u, 0u);  // at most rw-r-----, whatever the umask
    }
    EXPECT_FALSE(stdfs::exists(path));
    EXPECT_EQ(files(), 0u);
}

TEST_F(PartFileTest, LeavesAReleasedFileAlone) {
    stdfs::path path;
    {
        Result<PartFile> part = PartFile::create(dir_);
        ASSERT_TRUE(part.ok());
        path = part->path();
        ASSERT_TRUE(part->write("x").ok());
        ASSERT_TRUE(part->close().ok());
        part->release();
    }
    EXPECT_TRUE(stdfs::exists(path));
}

TEST_F(PartFileTest, MovingHandsOverTheFileOnce) {
    Result<PartFile> a = PartFile::create(dir_);
    Result<PartFile> b = PartFile::create(dir_);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NE(a->path(), b->path());
    EXPECT_EQ(files(), 2u);
    *b = std::move(*a);  // b's own file goes, a's moves over
    EXPECT_EQ(files(), 1u);
    EXPECT_FALSE(a->valid());
    EXPECT_TRUE(b->valid());
    PartFile c(std::move(*b));
    EXPECT_FALSE(b->valid());
    EXPECT_EQ(files(), 1u);
}

TEST_F(PartFileTest, FailsWithTheReasonWhenTheFolderIsMissing) {
    Result<PartFile> part = PartFile::create(dir_ / "missing");
    ASSERT_FALSE(part.ok());
    EXPECT_EQ(part.error().stage, Stage::claim);
    EXPECT_EQ(part.error().reason, "cannot create the upload file: No such file or directory");
    EXPECT_FALSE(part.error().transient);
}

// Daemons sharing a spool (nodes) stream into the same work/: each name says whose it is.
TEST_F(PartFileTest, AnOwnersFilesCarryItsName) {
    Result<PartFile> part = PartFile::create(dir_, "node-a.example");
    ASSERT_TRUE(part.ok()) << part.error().message();
    const std::string name = part->path().filename().string();
    EXPECT_EQ(name.rfind("node-a.example.", 0), 0u) << name;
    EXPECT_EQ(name.size(), std::string("node-a.example.").size() + 32 + 5) << name;
    EXPECT_TRUE(is_part_name_of(name, "node-a.example"));
    EXPECT_FALSE(is_part_name_of(name, "node-a")) << "a node whose name starts another's";
    EXPECT_FALSE(is_part_name_of(name, "node-a.example.com"));
    EXPECT_FALSE(is_part_name_of(name, ""));

    Result<PartFile> plain = PartFile::create(dir_);
    ASSERT_TRUE(plain.ok());
    const std::string plain_name = plain->path().filename().string();
    EXPECT_TRUE(is_part_name_of(plain_name, ""));
    EXPECT_FALSE(is_part_name_of(plain_name, "node-a.example"));
}

TEST(PartFileNames, OnlyTheExactShapeMatches) {
    const std::string hex = "0123456789abcdef0123456789abcdef";
    EXPECT_TRUE(is_part_name_of("a." + hex + ".part", "a"));
    EXPECT_TRUE(is_part_name_of(hex + ".part", ""));
    EXPECT_FALSE(is_part_name_of("a.b." + hex + ".part", "a"));
    EXPECT_FALSE(is_part_name_of("a." + hex + ".partial", "a"));
    EXPECT_FALSE(is_part_name_of("a." + hex.substr(1) + "X.part", "a")) << "not hex";
    EXPECT_FALSE(is_part_name_of("a." + hex + "0.part", "a")) << "too long";
    EXPECT_FALSE(is_part_name_of("photo.jpg.part", "")) << "not an upload's name";
}

}  // namespace
}  // namespace imgspool::upload
