#include "watcher/file_state.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "temp_dir.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;
using imgspool::testing::put_file;
using imgspool::testing::TempDir;

TEST(FileState, DescribesASymlinkNotItsTarget) {
    TempDir dir;
    put_file(dir.path() / "target.jpg", "12345");
    stdfs::create_symlink(dir.path() / "target.jpg", dir.path() / "link.jpg");

    auto target = lstat_state(dir.path() / "target.jpg");
    auto link = lstat_state(dir.path() / "link.jpg");
    ASSERT_TRUE(target && link);
    EXPECT_TRUE(target->regular());
    EXPECT_EQ(target->size, 5);
    EXPECT_FALSE(link->regular());
    EXPECT_EQ(link->type, S_IFLNK);
    EXPECT_FALSE(lstat_state(dir.path() / "missing"));
}

TEST(FileState, ChangesWhenSizeOrMtimeChange) {
    TempDir dir;
    const stdfs::path p = dir.path() / "a.jpg";
    put_file(p, "abc");
    auto before = lstat_state(p);
    ASSERT_TRUE(before);
    EXPECT_EQ(*before, *lstat_state(p));

    struct timespec times[2] = {{0, UTIME_OMIT}, {1000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
    auto touched = lstat_state(p);
    EXPECT_NE(*before, *touched);
    EXPECT_EQ(touched->size, before->size);
}

TEST(FileState, ListsFolderWithoutFollowingSymlinks) {
    TempDir dir;
    put_file(dir.path() / "real" / "a.jpg", "a");
    stdfs::create_directory(dir.path() / "real" / "sub");
    stdfs::create_directory_symlink(dir.path() / "real", dir.path() / "linked");

    auto entries = list_folder(dir.path() / "real");
    std::sort(entries.begin(), entries.end(),
              [](const FolderEntry& a, const FolderEntry& b) { return a.name < b.name; });
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].name, "a.jpg");
    EXPECT_TRUE(entries[0].state.regular());
    EXPECT_EQ(entries[1].name, "sub");
    EXPECT_TRUE(entries[1].state.directory());

    EXPECT_TRUE(list_folder(dir.path() / "linked").empty());  // a symlinked folder is not entered
    auto top = list_folder(dir.path());
    auto linked = std::find_if(top.begin(), top.end(),
                               [](const FolderEntry& e) { return e.name == "linked"; });
    ASSERT_NE(linked, top.end());
    EXPECT_EQ(linked->state.type, S_IFLNK);
}
