#include "pipeline/finish.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "store/sqlite_job_db.hpp"
#include "tests/store/job_db_reads.hpp"

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

TEST_F(FinishTest, NoteOfANameThatIsNotUtf8IsValidJsonWithTheExactBytes) {
    const std::string name = "\xff\xfe caf\xe9.jpg";
    auto from = put(spool_.work() / "id6" / name, "text, not an image");
    FailureNote note{"id6", "s", name, make_error(Stage::validate, "not an image")};
    auto r = move_to_failed(spool_, from, name, note);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r.value(), spool_.failed() / name);  // the original keeps its exact bytes
    const auto j = nlohmann::json::parse(slurp(spool_.failed() / (name + ".error.json")));
    EXPECT_EQ(j["source"], "\\xff\\xfe caf\\xe9.jpg");
    EXPECT_EQ(j["source_bytes_hex"], "fffe20636166e92e6a7067");
    EXPECT_EQ(j["file"], "\\xff\\xfe caf\\xe9.jpg");
    EXPECT_EQ(j["file_bytes_hex"], "fffe20636166e92e6a7067");
}

TEST_F(FinishTest, NoteOfAUtf8NameHasNoHex) {
    const std::string name = std::string("new\nline \x01\x1b caf\xc3\xa9.jpg");
    auto from = put(spool_.work() / "id7" / name, "x");
    FailureNote note{"id7", "s", "sub/" + name, make_error(Stage::validate, "not an image")};
    auto r = move_to_failed(spool_, from, "sub/" + name, note);
    ASSERT_TRUE(r.ok()) << r.error().message();
    const auto j = nlohmann::json::parse(slurp(spool_.failed() / "sub" / (name + ".error.json")));
    EXPECT_EQ(j["source"], "sub/" + name);
    EXPECT_EQ(j["file"], name);
    EXPECT_FALSE(j.contains("source_bytes_hex"));
    EXPECT_FALSE(j.contains("file_bytes_hex"));
}

TEST(FailureNoteName, ShortNamesGetNameDotErrorJson) {
    EXPECT_EQ(failure_note_name("a.jpg"), "a.jpg.error.json");
    const std::string n244(244, 'x');  // 244 + 11 = 255: still fits
    EXPECT_EQ(failure_note_name(n244), n244 + ".error.json");
}

TEST(FailureNoteName, LongNamesGetAShortenedNameWithAHashOfTheWholeName) {
    const std::string a = std::string(250, 'x') + ".jpg";  // 254 bytes
    const std::string b = std::string(250, 'x') + ".png";  // same first bytes, other name
    const std::string na = failure_note_name(a);
    const std::string nb = failure_note_name(b);
    EXPECT_EQ(na.size(), fs::kNameMax);
    EXPECT_TRUE(na.starts_with(std::string(235, 'x') + "~")) << na;
    EXPECT_TRUE(na.ends_with(".error.json")) << na;
    EXPECT_NE(na, nb);                    // the hash tells them apart
    EXPECT_EQ(na, failure_note_name(a));  // and is stable
    // A UTF-8 name is cut between characters, never inside one.
    std::string euros;
    for (int i = 0; i < 84; ++i) euros += "\xe2\x82\xac";  // 252 bytes
    const std::string ne = failure_note_name(euros);
    ASSERT_LE(ne.size(), fs::kNameMax);
    EXPECT_EQ(ne.find('~'), 234u);  // 78 euro signs: 235 would split the 79th
}

TEST_F(FinishTest, LongNamesGetAShortenedNoteThatNamesTheOriginal) {
    for (const std::size_t len : {254u, 255u}) {
        SCOPED_TRACE(len);
        const std::string name = std::string(len - 4, 'n') + ".jpg";
        const std::string id = "long" + std::to_string(len);
        auto from = put(spool_.work() / id / name, "x");
        FailureNote note{id, "s", name, make_error(Stage::validate, "not an image")};
        auto r = move_to_failed(spool_, from, name, note);
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(r.value(), spool_.failed() / name);
        const stdfs::path note_path = spool_.failed() / failure_note_name(name);
        ASSERT_TRUE(stdfs::exists(note_path));
        const auto j = nlohmann::json::parse(slurp(note_path));
        EXPECT_EQ(j["file"], name);
        EXPECT_EQ(j["source"], name);
        EXPECT_EQ(j["upload_id"], id);
    }
}

TEST_F(FinishTest, AClashOnA255ByteNameGetsASuffixThatFits) {
    const std::string name = std::string(251, 'c') + ".jpg";
    put(spool_.failed() / name, "an earlier file");
    auto from = put(spool_.work() / "id8" / name, "x");
    FailureNote note{"id8", "s", name, make_error(Stage::validate, "not an image")};
    auto r = move_to_failed(spool_, from, name, note);
    ASSERT_TRUE(r.ok()) << r.error().message();
    const std::string moved = r.value().filename().native();
    EXPECT_EQ(moved, std::string(249, 'c') + ".1.jpg");
    EXPECT_EQ(slurp(spool_.failed() / name), "an earlier file");
    const auto j = nlohmann::json::parse(slurp(spool_.failed() / failure_note_name(moved)));
    EXPECT_EQ(j["file"], moved);
    EXPECT_EQ(j["source"], name);
}

TEST_F(FinishTest, ANoteThatCannotBeWrittenLeavesTheOriginalInWorkAndNoNote) {
    if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only folders";
    auto from = put(spool_.work() / "id9/d.jpg", "x");
    stdfs::create_directories(spool_.failed());
    stdfs::permissions(spool_.failed(), stdfs::perms::owner_read | stdfs::perms::owner_exec);
    FailureNote note{"id9", "s", "d.jpg", make_error(Stage::validate, "not an image")};
    auto r = move_to_failed(spool_, from, "d.jpg", note);
    stdfs::permissions(spool_.failed(), stdfs::perms::owner_all);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().reason.find("failure note"), std::string::npos) << r.error().reason;
    EXPECT_TRUE(stdfs::exists(from));
    EXPECT_TRUE(stdfs::is_empty(spool_.failed()));
}

TEST_F(FinishTest, FailAfterExceptionRecordsTheJobFailedAndWritesTheNote) {
    auto db = SqliteJobDb::open(spool_.root / "state/imgspool.db");
    ASSERT_TRUE(db.ok()) << db.error().message();
    const std::string name = "\xff.jpg";
    auto from = put(spool_.work() / "id10" / name, "x");
    ASSERT_TRUE(db.value()->insert_job("id10", "s", "\\xff.jpg", "web").ok());
    const Job job{"id10", spool_, from, name};
    fail_after_exception(*db.value(), job, "boom");
    const auto rec = find_job(*db.value(), "id10");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->status, "failed");
    EXPECT_NE(rec->error.find("boom"), std::string::npos) << rec->error;
    EXPECT_TRUE(stdfs::exists(spool_.failed() / name));
    const auto j = nlohmann::json::parse(slurp(spool_.failed() / (name + ".error.json")));
    EXPECT_EQ(j["stage"], "internal");
    EXPECT_FALSE(stdfs::exists(spool_.work() / "id10"));
}

TEST_F(FinishTest, FailAfterExceptionMovesACommittedJobToDone) {
    auto db = SqliteJobDb::open(spool_.root / "state/imgspool.db");
    ASSERT_TRUE(db.ok()) << db.error().message();
    auto from = put(spool_.work() / "id11/e.jpg", "x");
    ASSERT_TRUE(db.value()->insert_job("id11", "s", "e.jpg", "web").ok());
    ASSERT_TRUE(db.value()->complete("id11", {}, "").ok());
    fail_after_exception(*db.value(), Job{"id11", spool_, from, "e.jpg"}, "late throw");
    EXPECT_EQ(find_job(*db.value(), "id11")->status, "complete");
    EXPECT_TRUE(stdfs::exists(spool_.done() / "e.jpg"));
    EXPECT_FALSE(stdfs::exists(spool_.failed() / "e.jpg"));
}

}  // namespace
