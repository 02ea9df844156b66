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

TEST(NumberedName, AddsTheSuffixBeforeTheExtension) {
    EXPECT_EQ(fs::numbered_name("photo.jpg", 1), "photo.1.jpg");
    EXPECT_EQ(fs::numbered_name("archive.tar.gz", 12), "archive.tar.12.gz");
    EXPECT_EQ(fs::numbered_name("noext", 2), "noext.2");
    EXPECT_EQ(fs::numbered_name(".hidden", 3), ".hidden.3");
    EXPECT_EQ(fs::numbered_name("\xff\xfe.jpg", 1), "\xff\xfe.1.jpg");
}

TEST(NumberedName, ShortensTheStemOfALongNameAndKeepsTheExtension) {
    const std::string name = std::string(251, 'a') + ".jpg";  // 255 bytes
    const std::string n1 = fs::numbered_name(name, 1);
    EXPECT_EQ(n1.size(), fs::kNameMax);
    EXPECT_EQ(n1, std::string(249, 'a') + ".1.jpg");
    const std::string n1234 = fs::numbered_name(name, 1234);
    EXPECT_EQ(n1234, std::string(246, 'a') + ".1234.jpg");
    // A 254-byte name gets a suffix that fits as well.
    EXPECT_LE(fs::numbered_name(std::string(250, 'b') + ".png", 7).size(), fs::kNameMax);
}

TEST(NumberedName, CutsAtAUtf8Boundary) {
    std::string stem = "a";
    for (int i = 0; i < 83; ++i) stem += "\xe2\x82\xac";  // 1 + 83 euro signs: 250 bytes
    const std::string name = stem + ".jpg";               // 254 bytes
    const std::string n = fs::numbered_name(name, 1);
    ASSERT_TRUE(n.ends_with(".1.jpg")) << n;
    // 249 bytes are free for the stem; 249 would split the 83rd euro sign, so 82 are kept.
    const std::string kept = n.substr(0, n.size() - 6);
    EXPECT_EQ(kept.size(), 1u + 82 * 3);
    EXPECT_EQ(stem.compare(0, kept.size(), kept), 0);
}

TEST(NumberedName, AnExtensionAsLongAsTheNameIsNotKept) {
    const std::string name = "a." + std::string(253, 'x');  // 255 bytes, all "extension"
    const std::string n = fs::numbered_name(name, 1);
    EXPECT_EQ(n.size(), fs::kNameMax);
    EXPECT_TRUE(n.ends_with(".1")) << n;
    EXPECT_TRUE(n.starts_with("a.xxx")) << n;
}

TEST_F(FsTest, MoveUniqueGivesA255ByteNameASuffixThatFits) {
    const std::string name = std::string(251, 'L') + ".jpg";
    put(dir_ / "done" / name, "first");
    put(dir_ / "in" / name, "second");
    auto r = fs::move_unique(dir_ / "in" / name, dir_ / "done" / name);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value().filename().native(), std::string(249, 'L') + ".1.jpg");
    EXPECT_EQ(slurp(r.value()), "second");
    EXPECT_EQ(slurp(dir_ / "done" / name), "first");
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
    ASSERT_TRUE(
        fs::write_file_atomic(dir_ / "x/state.json", "{\"a\":1}", fs::Existing::replace).ok());
    ASSERT_TRUE(fs::write_file_atomic(dir_ / "x/state.json", "{}", fs::Existing::replace).ok());
    EXPECT_EQ(slurp(dir_ / "x/state.json"), "{}");
    EXPECT_EQ(std::distance(stdfs::directory_iterator(dir_ / "x"), stdfs::directory_iterator()), 1);
}

TEST_F(FsTest, WriteFileAtomicKeepingNeverReplacesAndLeavesNoTemporary) {
    put(dir_ / "note.json", "theirs");
    EXPECT_FALSE(fs::write_file_atomic(dir_ / "note.json", "ours", fs::Existing::keep).ok());
    EXPECT_EQ(slurp(dir_ / "note.json"), "theirs");
    // A 255-byte name: the temporary beside it must still fit.
    const std::string longest(fs::kNameMax, 'n');
    ASSERT_TRUE(fs::write_file_atomic(dir_ / longest, "ours", fs::Existing::keep).ok());
    EXPECT_EQ(slurp(dir_ / longest), "ours");
    EXPECT_EQ(std::distance(stdfs::directory_iterator(dir_), stdfs::directory_iterator()), 2);
    EXPECT_EQ(stdfs::status(dir_ / longest).permissions() & stdfs::perms::others_read,
              stdfs::perms::others_read);
}

}  // namespace
