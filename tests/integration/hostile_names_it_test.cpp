// File names are bytes: names that are not UTF-8, that hold a newline or control characters,
// that start with a dash, or that are 254 or 255 bytes long, as valid and as invalid images, in
// the inbox and in a subfolder whose own name is hostile. Each lands in done/ or failed/ under
// its exact name, every failure has a readable note, and the daemon, `status --json` and
// `process` all keep working and print valid JSON.
#include <sqlite3.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/printable_name.hpp"
#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

using HostileNamesTest = SpoolFixture;

// "stem + tail" padded with 'L' before the tail to exactly `size` bytes.
std::string sized(const std::string& stem, const std::string& tail, std::size_t size) {
    return stem + std::string(size - stem.size() - tail.size(), 'L') + tail;
}

// Hostile stems; each becomes STEM-ok.jpg (a real JPEG) and STEM-bad.jpg (text).
struct Hostile {
    std::string what;
    std::string ok;
    std::string bad;
};

std::vector<Hostile> hostile_names() {
    std::vector<Hostile> names;
    for (const auto& [what, stem] : std::vector<std::pair<std::string, std::string>>{
             {"not UTF-8", "\xff\xfe"},
             {"latin-1", "caf\xe9"},
             {"newline", "new\nline"},
             {"control characters", std::string("ctl\x01\x1b[31m")},
             {"leading dash", "-rf"},
             {"leading double dash", "--help"}}) {
        names.push_back({what, stem + "-ok.jpg", stem + "-bad.jpg"});
    }
    names.push_back({"255 bytes", sized("ok", ".jpg", 255), sized("bad", ".jpg", 255)});
    names.push_back({"254 bytes", sized("ok", ".jpg", 254), sized("bad", ".jpg", 254)});
    names.push_back(
        {"255 bytes, not UTF-8", sized("\xff ok", ".jpg", 255), sized("\xff bad", ".jpg", 255)});
    return names;
}

// A folder name that is itself hostile: not UTF-8, with a newline, starting with a dash.
const std::string kHostileFolder = "-sub\xfe\nfolder";

// The note in `dir` whose "file" is the printable name of `file` (a shortened note name says
// which original it belongs to only inside).
std::optional<nlohmann::json> note_for(const stdfs::path& dir, const std::string& file) {
    std::error_code ec;
    for (const auto& entry : stdfs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().native();
        if (!name.ends_with(".error.json") || !entry.is_regular_file()) continue;
        nlohmann::json note = read_json(entry.path());  // throws on bad JSON: a test failure
        if (note.value("file", "") == printable_name(file)) return note;
    }
    return std::nullopt;
}

// Checks a failed file's note: valid JSON, printable source and file, the exact bytes in hex
// when the name is not UTF-8, and the note's own name.
void expect_note(const stdfs::path& failed_dir, const std::string& relative,
                 const std::string& file) {
    SCOPED_TRACE("note of " + printable_name(relative));
    const std::optional<nlohmann::json> note = note_for(failed_dir, file);
    ASSERT_TRUE(note) << "no note names " << printable_name(file);
    EXPECT_EQ(note->value("source", ""), printable_name(relative));
    EXPECT_EQ(note->value("stage", ""), "validate");
    EXPECT_FALSE(note->value("error", "").empty());
    if (is_valid_utf8(relative)) {
        EXPECT_FALSE(note->contains("source_bytes_hex"));
    } else {
        EXPECT_EQ(note->value("source_bytes_hex", ""), hex_bytes(relative));
    }
    if (!is_valid_utf8(file)) {
        EXPECT_EQ(note->value("file_bytes_hex", ""), hex_bytes(file));
    }
    if (file.size() + 11 <= 255) {
        EXPECT_TRUE(stdfs::exists(failed_dir / (file + ".error.json")));
    }
}

TEST_F(HostileNamesTest, EveryNameLandsUnderItsExactNameWithAReadableNote) {
    start_daemon();
    wait_until_watching();

    // What is dropped: relative path -> whether it is a real image.
    std::vector<std::pair<std::string, bool>> dropped;
    unsigned seed = 100;
    const ImageSpec spec{.width = 320, .height = 240};
    ASSERT_TRUE(stdfs::create_directory(inbox() / kHostileFolder));
    for (const Hostile& h : hostile_names()) {
        for (const std::string& dir : {std::string(), kHostileFolder + "/"}) {
            write_file(inbox() / (dir + h.ok), make_jpeg({spec.width, spec.height, ++seed}));
            write_file(inbox() / (dir + h.bad), "plain text, not an image: " + h.what + "\n");
            dropped.emplace_back(dir + h.ok, true);
            dropped.emplace_back(dir + h.bad, false);
        }
    }

    for (const auto& [relative, image] : dropped) {
        SCOPED_TRACE(printable_name(relative));
        const stdfs::path final_path = (image ? done() : failed()) / relative;
        ASSERT_TRUE(wait_for([&] { return stdfs::exists(stdfs::symlink_status(final_path)); }, 60s))
            << "not in " << (image ? "done/" : "failed/") << " under its exact name\n"
            << tree();
        const stdfs::path file = stdfs::path(relative).filename();
        if (!image) {
            ASSERT_TRUE(
                wait_for([&] { return note_for(final_path.parent_path(), file).has_value(); }));
            expect_note(final_path.parent_path(), relative, file.native());
        }
        // The database holds the printable form of the name; its row is final before the move.
        std::optional<Row> job;
        ASSERT_TRUE(wait_for(
            [&] {
                job = finished_job(printable_name(relative));
                return job.has_value();
            },
            5s))
            << "no finished job with source_name " << printable_name(relative);
        EXPECT_EQ(job->at("status"), image ? "complete" : "failed");
    }
    EXPECT_EQ(files_under(work()), std::vector<std::string>{});
    EXPECT_TRUE(daemon_running()) << daemon_log();

    // Still taking files after all that.
    wait_until_watching("after.jpg");
    EXPECT_TRUE(daemon_running());

    // Every log line is one JSON object (a newline in a name is escaped).
    std::istringstream log(daemon_log());
    int lines = 0;
    for (std::string line; std::getline(log, line);) {
        if (line.empty() || line.front() != '{') continue;  // the fixture's start markers
        EXPECT_TRUE(nlohmann::json::accept(line)) << printable_name(line);
        ++lines;
    }
    EXPECT_GT(lines, 0);

    // status --json: valid JSON naming the failures in printable form.
    const CommandResult json =
        run_imgspool({"status", "-c", config_path().string(), "--json"}, root());
    ASSERT_EQ(json.status.code, 0) << json.status.describe() << json.err;
    nlohmann::json status;
    ASSERT_NO_THROW(status = nlohmann::json::parse(json.out)) << printable_name(json.out);
    std::set<std::string> failed_sources;
    for (const auto& f : status["failures_today"]) failed_sources.insert(f.value("source", ""));
    for (const auto& [relative, image] : dropped) {
        if (!image) {
            EXPECT_TRUE(failed_sources.count(printable_name(relative))) << printable_name(relative);
        }
    }
    EXPECT_EQ(status.value("failed", -1), static_cast<int>(dropped.size() / 2));

    // status for people: no raw control characters from a name reach the terminal.
    const CommandResult table = run_imgspool({"status", "-c", config_path().string()}, root());
    ASSERT_EQ(table.status.code, 0) << table.status.describe() << table.err;
    EXPECT_EQ(table.out.find('\x1b'), std::string::npos);
    EXPECT_EQ(table.out.find('\x01'), std::string::npos);
    EXPECT_NE(table.out.find("\\xff\\xfe-bad.jpg"), std::string::npos) << table.out;
    EXPECT_TRUE(daemon_running());
}

TEST_F(HostileNamesTest, ProcessPrintsValidJsonLinesForHostileNames) {
    std::vector<std::pair<stdfs::path, bool>> files;  // path -> real image
    unsigned seed = 300;
    for (const Hostile& h : hostile_names()) {
        files.emplace_back(outside() / h.ok, true);
        files.emplace_back(outside() / h.bad, false);
        write_file(files[files.size() - 2].first,
                   make_jpeg({.width = 320, .height = 240, .seed = ++seed}));
        write_file(files.back().first, "not an image\n");
    }
    std::vector<std::string> args = {"process", "-c", config_path().string()};
    for (const auto& [path, image] : files) args.push_back(path.native());
    const CommandResult r = run_imgspool(args, root());
    ASSERT_TRUE(r.status.exited) << r.status.describe() << "\n" << printable_name(r.err);
    EXPECT_EQ(r.status.code, 1) << "some files are not images";

    std::vector<nlohmann::json> lines;
    ASSERT_NO_THROW(lines = json_lines(r.out)) << printable_name(r.out);
    ASSERT_EQ(lines.size(), files.size()) << printable_name(r.out);
    for (const auto& [path, image] : files) {
        SCOPED_TRACE(printable_name(path.native()));
        const nlohmann::json* line = nullptr;
        for (const auto& l : lines) {
            if (l.value("file", "") == printable_name(path.native())) line = &l;
        }
        ASSERT_NE(line, nullptr) << printable_name(r.out);
        EXPECT_EQ(line->value("status", ""), image ? "complete" : "failed");
        if (is_valid_utf8(path.native())) {
            EXPECT_FALSE(line->contains("file_bytes_hex"));
        } else {
            EXPECT_EQ(line->value("file_bytes_hex", ""), hex_bytes(path.native()));
        }
        const std::string name = path.filename().native();
        EXPECT_TRUE(stdfs::exists((image ? done() : failed()) / name)) << tree();
        if (!image) expect_note(failed(), name, name);
        EXPECT_TRUE(stdfs::exists(path)) << "process copies; the user's file stays";
    }
    EXPECT_EQ(files_under(work()), std::vector<std::string>{});
}

// Writes `bytes` into every text column of upload_jobs for one job, as a program other than
// imgspool (or an older version) might have: status must still print valid JSON.
void overwrite_job_text(const stdfs::path& db_file, const std::string& upload_id,
                        const std::string& bytes) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* stmt = nullptr;
    const char* sql =
        "UPDATE upload_jobs SET source_name = ?1, error = ?1, error_stage = ?1, spool = ?1 "
        "WHERE id = ?2";
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_bind_text(stmt, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, upload_id.c_str(), -1, SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

TEST_F(HostileNamesTest, StatusPrintsValidJsonWhateverTheDatabaseHolds) {
    // PostgreSQL refuses text that is not UTF-8 (22021), so such rows cannot exist there.
    if (on_postgres()) GTEST_SKIP() << "writes bytes that are not UTF-8 into the SQLite file";
    const stdfs::path bad = outside() / "bad.jpg";
    write_file(bad, "not an image\n");
    const CommandResult r =
        run_imgspool({"process", "-c", config_path().string(), bad.string()}, root());
    ASSERT_EQ(r.status.code, 1) << r.status.describe() << r.err;
    const std::vector<nlohmann::json> lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), 1u) << r.out;
    const std::string id = lines[0].value("upload_id", "");
    ASSERT_FALSE(id.empty());
    const std::string raw = std::string("\xff\xfe new\nline \x1b[31m caf\xe9", 22);
    overwrite_job_text(db_path(), id, raw);

    const CommandResult summary =
        run_imgspool({"status", "-c", config_path().string(), "--json"}, root());
    ASSERT_EQ(summary.status.code, 0) << summary.status.describe() << summary.err;
    nlohmann::json s;
    ASSERT_NO_THROW(s = nlohmann::json::parse(summary.out)) << printable_name(summary.out);
    ASSERT_EQ(s["failures_today"].size(), 1u) << summary.out;
    EXPECT_EQ(s["failures_today"][0].value("source", ""), printable_name(raw));
    EXPECT_EQ(s["failures_today"][0].value("reason", ""), printable_name(raw));

    const CommandResult one =
        run_imgspool({"status", "-c", config_path().string(), id, "--json"}, root());
    ASSERT_EQ(one.status.code, 0) << one.status.describe() << one.err;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(one.out)) << printable_name(one.out);
    EXPECT_EQ(j.value("source", ""), printable_name(raw));
    EXPECT_EQ(j.value("spool", ""), printable_name(raw));

    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"status", "-c", config_path().string()},
          std::vector<std::string>{"status", "-c", config_path().string(), id}}) {
        const CommandResult table = run_imgspool(args, root());
        ASSERT_EQ(table.status.code, 0) << table.status.describe() << table.err;
        EXPECT_EQ(table.out.find('\x1b'), std::string::npos) << printable_name(table.out);
        EXPECT_NE(table.out.find("\\xff\\xfe new\\x0aline \\x1b[31m caf\\xe9"), std::string::npos)
            << table.out;
    }
}

}  // namespace
}  // namespace imgspool::it
