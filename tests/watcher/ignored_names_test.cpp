#include "watcher/ignored_names.hpp"

#include <gtest/gtest.h>

#include "watcher/spool_watcher.hpp"

using imgspool::is_ignored_folder_name;
using imgspool::is_ignored_name;

TEST(IgnoredNames, FinalNamesAreTaken) {
    EXPECT_FALSE(is_ignored_name("photo.jpg"));
    EXPECT_FALSE(is_ignored_name("scan 01.tiff"));
    EXPECT_FALSE(is_ignored_name("partial.jpg"));  // ".part" only counts as a suffix
    EXPECT_FALSE(is_ignored_name("tmp"));
}

TEST(IgnoredNames, DotfilesAndRsyncTemporariesAreIgnored) {
    EXPECT_TRUE(is_ignored_name(".DS_Store"));
    EXPECT_TRUE(is_ignored_name(".photo.jpg.Xy12Ab"));  // rsync writes ".name.XXXXXX"
    EXPECT_TRUE(is_ignored_name(""));
}

TEST(IgnoredNames, TemporarySuffixesAreIgnoredInAnyCase) {
    EXPECT_TRUE(is_ignored_name("photo.jpg.part"));
    EXPECT_TRUE(is_ignored_name("photo.jpg.filepart"));
    EXPECT_TRUE(is_ignored_name("photo.jpg.tmp"));
    EXPECT_TRUE(is_ignored_name("photo.jpg.crdownload"));
    EXPECT_TRUE(is_ignored_name("PHOTO.JPG.PART"));
    EXPECT_TRUE(is_ignored_name("~WRL0001.TMP"));
}

TEST(IgnoredNames, OnlyHiddenFoldersAreIgnored) {
    EXPECT_TRUE(is_ignored_folder_name(".sync"));
    EXPECT_FALSE(is_ignored_folder_name("batch"));
    EXPECT_FALSE(is_ignored_folder_name("upload.tmp"));
}
