#include "pipeline/source_read.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/watcher/temp_dir.hpp"

namespace imgspool {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

// Bytes of an unknown format: the reader does not judge them, validation does.
const std::string kPlain = "plain bytes that are no image format at all";
// A PNG signature with nothing after it: incomplete by its own format.
const std::string kPngStart = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(20, 'x');

void write(const stdfs::path& p, const std::string& bytes,
           std::ios::openmode mode = std::ios::trunc) {
    std::ofstream out(p, std::ios::binary | mode);
    out << bytes;
}

class SourceReadTest : public ::testing::Test {
  protected:
    testing::TempDir dir;
    stdfs::path file = dir.path() / "a.jpg";
    SourceReadLimits limits{1024 * 1024, 3600s};
    std::optional<FileState> seen;
};

TEST_F(SourceReadTest, ReadsTheBytesOfAnUnchangedFile) {
    write(file, kPlain);
    const auto claimed = lstat_state(file);
    auto read = read_claimed_source(file, claimed, limits, seen);
    ASSERT_TRUE(read.ok()) << read.error().message();
    EXPECT_EQ(read->bytes, kPlain);
    EXPECT_EQ(read->state, *claimed);
}

TEST_F(SourceReadTest, AFileChangedAfterItWasClaimedIsNotUsedAndWaits) {
    write(file, kPlain);
    const auto claimed = lstat_state(file);
    write(file, "more", std::ios::app);
    auto read = read_claimed_source(file, claimed, limits, seen);
    ASSERT_FALSE(read.ok());
    EXPECT_TRUE(read.error().transient);
    EXPECT_EQ(read.error().stage, Stage::claim);
    EXPECT_NE(read.error().reason.find("changed after it was claimed"), std::string::npos)
        << read.error().reason;
    ASSERT_TRUE(seen.has_value());
    EXPECT_EQ(seen->size, static_cast<off_t>(kPlain.size() + 4));
}

TEST_F(SourceReadTest, AFileLargerThanTheLimitFailsBeforeItIsRead) {
    write(file, std::string(2000, 'z'));
    limits.max_bytes = 1000;
    auto read = read_claimed_source(file, std::nullopt, limits, seen);
    ASSERT_FALSE(read.ok());
    EXPECT_FALSE(read.error().transient);
    EXPECT_EQ(read.error().stage, Stage::validate);
}

TEST_F(SourceReadTest, AVanishedFileFails) {
    auto read = read_claimed_source(file, std::nullopt, limits, seen);
    ASSERT_FALSE(read.ok());
    EXPECT_FALSE(read.error().transient);
    EXPECT_NE(read.error().reason.find("vanished"), std::string::npos);
}

TEST_F(SourceReadTest, AnIncompleteFileWaitsUntilItWasLeftAloneTooLong) {
    write(file, kPngStart);
    auto recent = read_claimed_source(file, std::nullopt, limits, seen);
    ASSERT_FALSE(recent.ok());
    EXPECT_TRUE(recent.error().transient);
    EXPECT_NE(recent.error().reason.find("PNG"), std::string::npos) << recent.error().reason;

    const timespec old[2] = {{0, UTIME_OMIT}, {1'000'000'000, 0}};  // modified in 2001
    ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), old, 0), 0);
    auto abandoned = read_claimed_source(file, std::nullopt, limits, seen);
    ASSERT_FALSE(abandoned.ok());
    EXPECT_FALSE(abandoned.error().transient);
    EXPECT_EQ(abandoned.error().stage, Stage::validate);
}

}  // namespace
}  // namespace imgspool
