#include "store/local_store.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "common/fs.hpp"
#include "tests/store/temp_dir.hpp"

namespace imgspool {
namespace {

namespace stdfs = std::filesystem;

std::vector<stdfs::path> files_under(const stdfs::path& dir) {
    std::vector<stdfs::path> out;
    for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
        if (!e.is_directory()) out.push_back(stdfs::relative(e.path(), dir));
    }
    std::sort(out.begin(), out.end());
    return out;
}

TEST(LocalStore, WritesBytesThatReadBackWithoutTempLeftovers) {
    test::TempDir tmp;
    LocalStore store(tmp.path() / "objects", "");
    std::string jpeg("\xFF\xD8\xFF\0binary\0data", 16);
    std::string png(100000, 'p');
    ASSERT_TRUE(store
                    .put_all({{"images/u1/small.jpg", "image/jpeg", jpeg},
                              {"images/u1/large.png", "image/png", png}})
                    .ok());
    EXPECT_EQ(*fs::read_file(tmp.path() / "objects/images/u1/small.jpg"), jpeg);
    EXPECT_EQ(*fs::read_file(tmp.path() / "objects/images/u1/large.png"), png);
    EXPECT_EQ(files_under(tmp.path()), (std::vector<stdfs::path>{"objects/images/u1/large.png",
                                                                 "objects/images/u1/small.jpg"}));
}

TEST(LocalStore, ReplacesAnObjectStoredBefore) {
    test::TempDir tmp;
    LocalStore store(tmp.path(), "");
    ASSERT_TRUE(store.put_all({{"k/a.jpg", "image/jpeg", "first"}}).ok());
    ASSERT_TRUE(store.put_all({{"k/a.jpg", "image/jpeg", "second"}}).ok());
    EXPECT_EQ(*fs::read_file(tmp.path() / "k/a.jpg"), "second");
    EXPECT_EQ(files_under(tmp.path()), (std::vector<stdfs::path>{"k/a.jpg"}));
}

TEST(LocalStore, RefusesKeysThatWouldLeaveTheRoot) {
    test::TempDir tmp;
    LocalStore store(tmp.path() / "root", "");
    for (std::string key : {"../escaped.jpg", "/tmp/escaped.jpg", "a/../../escaped.jpg", "",
                            "a//b.jpg", "./a.jpg", "a/.."}) {
        auto st = store.put_all({{"fine/first.jpg", "image/jpeg", "x"}, {key, "image/jpeg", "x"}});
        ASSERT_FALSE(st.ok()) << key;
        EXPECT_EQ(st.error().stage, Stage::store);
        EXPECT_NE(st.error().reason.find("would leave the store folder"), std::string::npos)
            << st.error().reason;
    }
    // Nothing written at all, not even the valid first object.
    EXPECT_TRUE(files_under(tmp.path()).empty());
}

TEST(LocalStore, ReportsAWriteFailureAsAStoreError) {
    test::TempDir tmp;
    ASSERT_TRUE(fs::write_file_atomic(tmp.path() / "blocker", "a file, not a folder").ok());
    LocalStore store(tmp.path(), "");
    auto st = store.put_all({{"blocker/a.jpg", "image/jpeg", "x"}});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::store);
    EXPECT_NE(st.error().reason.find("cannot store blocker/a.jpg"), std::string::npos)
        << st.error().reason;
}

TEST(LocalStore, UrlsUnderThePublicBase) {
    LocalStore with_slash("/srv/images", "https://cdn.example.com/img/");
    EXPECT_EQ(with_slash.url_for("images/u1/small.jpg"),
              "https://cdn.example.com/img/images/u1/small.jpg");
    LocalStore without_slash("/srv/images", "https://cdn.example.com");
    EXPECT_EQ(without_slash.url_for("/images/u1/small.jpg"),
              "https://cdn.example.com/images/u1/small.jpg");
    EXPECT_EQ(without_slash.url_for("my spool/a+b.jpg"),
              "https://cdn.example.com/my%20spool/a%2Bb.jpg");
}

TEST(LocalStore, FileUrlsWithoutABase) {
    LocalStore store("/srv/images", "");
    EXPECT_EQ(store.url_for("images/u1/small.jpg"), "file:///srv/images/images/u1/small.jpg");
    LocalStore relative("objects", "");
    EXPECT_EQ(relative.url_for("a.jpg"),
              "file://" + (stdfs::current_path() / "objects/a.jpg").string());
}

TEST(LocalStore, CheckCreatesTheRootAndLeavesNoProbe) {
    test::TempDir tmp;
    LocalStore store(tmp.path() / "new/objects", "");
    ASSERT_TRUE(store.check().ok());
    EXPECT_TRUE(stdfs::is_directory(tmp.path() / "new/objects"));
    EXPECT_TRUE(files_under(tmp.path()).empty());
}

TEST(LocalStore, CheckFailsWhenTheRootCannotBeCreated) {
    test::TempDir tmp;
    ASSERT_TRUE(fs::write_file_atomic(tmp.path() / "file", "x").ok());
    LocalStore store(tmp.path() / "file/objects", "");
    auto st = store.check();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::store);
    EXPECT_NE(st.error().reason.find("cannot create the store folder"), std::string::npos)
        << st.error().reason;
    EXPECT_EQ(LocalStore("", "").check().ok(), false);
}

TEST(LocalStore, DescribesItsRoot) {
    EXPECT_EQ(LocalStore("/srv/images", "https://cdn").describe(), "local:/srv/images");
}

}  // namespace
}  // namespace imgspool
