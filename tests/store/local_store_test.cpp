#include "store/local_store.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
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

// A small tmpfs mounted on dir for one test (needs CAP_SYS_ADMIN; tests skip without it).
class SmallTmpfs {
  public:
    SmallTmpfs(const stdfs::path& dir, const char* options) : dir_(dir) {
        stdfs::create_directories(dir);
        if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options) == 0) {
            mounted_ = true;
        } else {
            why_not_ = std::string("cannot mount a tmpfs here (") + std::strerror(errno) +
                       "); run as root to test a full or read-only store";
        }
    }
    ~SmallTmpfs() {
        if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    }
    SmallTmpfs(const SmallTmpfs&) = delete;
    SmallTmpfs& operator=(const SmallTmpfs&) = delete;

    bool mounted() const { return mounted_; }
    const std::string& why_not() const { return why_not_; }

  private:
    stdfs::path dir_;
    bool mounted_ = false;
    std::string why_not_;
};

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
        EXPECT_FALSE(st.error().transient);
    }
    // Nothing written at all, not even the valid first object.
    EXPECT_TRUE(files_under(tmp.path()).empty());
}

TEST(LocalStore, ReportsAWriteFailureAsAStoreError) {
    test::TempDir tmp;
    ASSERT_TRUE(
        fs::write_file_atomic(tmp.path() / "blocker", "a file, not a folder", fs::Existing::replace)
            .ok());
    LocalStore store(tmp.path(), "");
    auto st = store.put_all({{"blocker/a.jpg", "image/jpeg", "x"}});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::store);
    EXPECT_NE(st.error().reason.find("cannot store blocker/a.jpg"), std::string::npos)
        << st.error().reason;
    EXPECT_FALSE(st.error().transient) << "a file where a folder must be will not go away";
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
    ASSERT_TRUE(fs::write_file_atomic(tmp.path() / "file", "x", fs::Existing::replace).ok());
    LocalStore store(tmp.path() / "file/objects", "");
    auto st = store.check();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::store);
    EXPECT_NE(st.error().reason.find("cannot create the store folder"), std::string::npos)
        << st.error().reason;
    EXPECT_EQ(LocalStore("", "").check().ok(), false);
}

TEST(LocalStore, AFullDiskIsTransientNamesThePathAndLeavesNothingPartial) {
    test::TempDir tmp;
    const stdfs::path root = tmp.path() / "objects";
    SmallTmpfs disk(root, "size=1m");
    if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
    LocalStore store(root, "");
    const std::string fits(300 * 1024, 'a');
    const std::string too_big(900 * 1024, 'b');
    const Status st = store.put_all({{"images/u1/small.jpg", "image/jpeg", fits},
                                     {"images/u1/large.jpg", "image/jpeg", too_big}});
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(st.error().transient) << st.error().message();
    EXPECT_EQ(st.error().stage, Stage::store);
    EXPECT_EQ(st.error().file, (root / "images/u1/large.jpg").string());
    EXPECT_NE(st.error().reason.find("cannot store images/u1/large.jpg"), std::string::npos)
        << st.error().reason;
    EXPECT_NE(st.error().reason.find("No space left on device"), std::string::npos)
        << st.error().reason;
    // The object that fitted stays for the retry; no temporary file and no partial object.
    EXPECT_EQ(files_under(root), (std::vector<stdfs::path>{"images/u1/small.jpg"}));
    EXPECT_EQ(*fs::read_file(root / "images/u1/small.jpg"), fits);

    const Status again = store.put_all({{"images/u2/small.jpg", "image/jpeg", too_big}});
    ASSERT_FALSE(again.ok());
    EXPECT_TRUE(again.error().transient);
    EXPECT_EQ(files_under(root), (std::vector<stdfs::path>{"images/u1/small.jpg"}));

    // Removing the keys of both jobs (a missing one is fine) removes their folders too.
    ASSERT_TRUE(
        store.remove_all({"images/u1/small.jpg", "images/u1/large.jpg", "images/u2/small.jpg"})
            .ok());
    EXPECT_TRUE(files_under(root).empty());
    EXPECT_FALSE(stdfs::exists(root / "images")) << "empty folders of removed objects stay";
    // Once there is room again, the same job stores.
    ASSERT_TRUE(store.put_all({{"images/u1/large.jpg", "image/jpeg", too_big}}).ok());
    EXPECT_EQ(*fs::read_file(root / "images/u1/large.jpg"), too_big);
}

TEST(LocalStore, AReadOnlyStoreIsTransient) {
    test::TempDir tmp;
    const stdfs::path root = tmp.path() / "objects";
    SmallTmpfs disk(root, "size=1m");
    if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
    ASSERT_EQ(::mount(nullptr, root.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, "size=1m"), 0)
        << std::strerror(errno);
    LocalStore store(root, "");
    const Status st = store.put_all({{"images/u1/small.jpg", "image/jpeg", "x"}});
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(st.error().transient) << st.error().message();
    EXPECT_NE(st.error().reason.find("Read-only file system"), std::string::npos)
        << st.error().reason;
    const Status checked = store.check();
    ASSERT_FALSE(checked.ok());
    EXPECT_TRUE(checked.error().transient) << checked.error().message();
}

TEST(LocalStore, APermanentFailureRemovesWhatThePutWrote) {
    test::TempDir tmp;
    ASSERT_TRUE(
        fs::write_file_atomic(tmp.path() / "blocker", "a file, not a folder", fs::Existing::replace)
            .ok());
    LocalStore store(tmp.path(), "");
    const Status st = store.put_all(
        {{"images/u1/small.jpg", "image/jpeg", "x"}, {"blocker/large.jpg", "image/jpeg", "y"}});
    ASSERT_FALSE(st.ok());
    EXPECT_FALSE(st.error().transient) << st.error().message();
    EXPECT_EQ(files_under(tmp.path()), (std::vector<stdfs::path>{"blocker"}));
    EXPECT_FALSE(stdfs::exists(tmp.path() / "images"));
}

TEST(LocalStore, RemoveAllRemovesAndAMissingKeyIsFine) {
    test::TempDir tmp;
    LocalStore store(tmp.path(), "");
    ASSERT_TRUE(store
                    .put_all({{"images/u1/a.jpg", "image/jpeg", "a"},
                              {"images/u1/b.jpg", "image/jpeg", "b"},
                              {"images/u2/a.jpg", "image/jpeg", "c"}})
                    .ok());
    ASSERT_TRUE(
        store.remove_all({"images/u1/a.jpg", "images/u1/b.jpg", "images/u1/never.jpg"}).ok());
    EXPECT_EQ(files_under(tmp.path()), (std::vector<stdfs::path>{"images/u2/a.jpg"}));
    EXPECT_FALSE(stdfs::exists(tmp.path() / "images/u1"));
    ASSERT_TRUE(store.remove_all({"images/u1/a.jpg"}).ok()) << "removing twice is fine";
    const Status unsafe = store.remove_all({"../outside.jpg"});
    ASSERT_FALSE(unsafe.ok());
    EXPECT_FALSE(unsafe.error().transient);
    EXPECT_NE(unsafe.error().reason.find("would leave the store folder"), std::string::npos);
}

TEST(LocalStore, FailuresThatPassAreTransientThoseOnlyAPersonFixesAreNot) {
    for (int err : {ENOSPC, EDQUOT, EROFS, EIO, EINTR, EAGAIN, ENOMEM, EMFILE, ESTALE}) {
        EXPECT_TRUE(is_transient_store_errno(err)) << std::strerror(err);
    }
    for (int err : {EACCES, EPERM, ENOTDIR, EISDIR, ENAMETOOLONG, ELOOP, EINVAL, EEXIST}) {
        EXPECT_FALSE(is_transient_store_errno(err)) << std::strerror(err);
    }
}

TEST(LocalStore, DescribesItsRoot) {
    EXPECT_EQ(LocalStore("/srv/images", "https://cdn").describe(), "local:/srv/images");
}

}  // namespace
}  // namespace imgspool
