// Files that are not acceptable images end in failed/ with NAME.error.json saying why, the job
// is recorded as failed with the same reason, and the daemon carries on.
#include <algorithm>
#include <string>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

using RejectsTest = SpoolFixture;

struct Reject {
    std::string name;
    std::string bytes;
    std::vector<std::string> stages;         // acceptable stages
    std::vector<std::string> reason_any;     // lower-case, one must appear
    std::vector<std::string> reason_also{};  // lower-case, one must appear (if given)
};

std::string garbage(size_t n, unsigned seed) {
    std::string out(n, '\0');
    unsigned x = seed * 2654435761u + 1;
    for (char& c : out) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 16);
    }
    return out;
}

TEST_F(RejectsTest, BadFilesLandInFailedWithTheirReasonAndTheDaemonCarriesOn) {
    // Files incomplete by their format (truncated, empty) wait for the rest: 2 s here.
    write_config({.limits = {{"max_width", 10000}, {"min_width", 100}, {"min_height", 100}},
                  .daemon = {{"abandon_after_s", "2"}}});

    const std::string good = make_jpeg({.width = 640, .height = 480, .seed = 40});
    const std::string corrupt = std::string("\xFF\xD8\xFF\xE0", 4) + garbage(20000, 1);
    const std::string truncated = good.substr(0, good.size() * 6 / 10);
    const std::vector<Reject> rejects = {
        {"corrupt.jpg",
         corrupt,
         {"validate", "render"},
         {"damaged", "corrupt", "invalid", "not a jpeg", "premature", "bogus", "unsupported marker",
          "incomplete"}},
        {"truncated.jpg",
         truncated,
         {"validate", "render"},
         {"truncated", "premature", "damaged", "incomplete", "corrupt", "end of"}},
        {"tiny.jpg",
         make_jpeg({.width = 50, .height = 50, .seed = 41}),
         {"validate"},
         {"50x50"},
         {"minimum", "small"}},
        {"wide.png",
         make_png({.width = 10001, .height = 120, .seed = 42}),
         {"validate"},
         {"10001"},
         {"maximum", "large", "wide", "limit"}},
        {"pixel.jpg", gif_bytes(), {"validate"}, {"1x1"}, {"minimum", "small"}},
        {"notes.jpg",
         "These are my notes, not a picture.\n",
         {"validate"},
         {"not a jpeg", "unsupported", "unknown format", "magic", "not an image"}},
        {"empty.jpg", "", {"validate"}, {"empty", "0 bytes", "zero"}},
    };

    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    for (const Reject& r : rejects) write_file(inbox() / r.name, r.bytes);

    for (const Reject& r : rejects) {
        SCOPED_TRACE(r.name);
        const std::optional<Row> job = wait_failed(r.name);
        if (!job) {
            ADD_FAILURE() << r.name << " did not reach failed/ (with " << r.name
                          << ".error.json) and a failed job; jobs: " << jobs_for(r.name).size();
            continue;
        }
        Row j = *job;
        EXPECT_EQ(read_file(failed() / r.name), r.bytes) << "the original must be kept as it was";
        const nlohmann::json note = read_json(failed() / (r.name + ".error.json"));
        ASSERT_TRUE(note.is_object());
        EXPECT_EQ(note.value("upload_id", ""), j["id"]);
        EXPECT_EQ(note.value("spool", ""), "main");
        EXPECT_EQ(note.value("source", ""), r.name);
        const std::string stage = note.value("stage", "");
        const std::string error = note.value("error", "");
        RecordProperty(r.name, stage + ": " + error);  // in the XML report, for reviewers
        EXPECT_NE(std::find(r.stages.begin(), r.stages.end(), stage), r.stages.end())
            << "stage " << stage << ", error: " << error;
        EXPECT_TRUE(contains_any(error, r.reason_any)) << "error.json says: " << error;
        if (r.reason_also.size() > 0) {
            EXPECT_TRUE(contains_any(error, r.reason_also)) << "error.json says: " << error;
        }
        EXPECT_EQ(j["error"], error) << "database and error.json disagree";
        EXPECT_EQ(j["error_stage"], stage);
        EXPECT_EQ(jobs_for(r.name).size(), 1u);
        EXPECT_FALSE(stdfs::exists(done() / r.name));
        EXPECT_FALSE(stdfs::exists(objects() / "images" / j["id"]))
            << "a failed job left objects in the store";
    }
    EXPECT_EQ(files_under(inbox()), std::vector<std::string>{});

    ASSERT_TRUE(daemon_running()) << "the daemon died on a bad file";
    write_file(inbox() / "good.jpg", good);
    EXPECT_TRUE(wait_complete("good.jpg")) << "the daemon no longer processes good files";
    EXPECT_TRUE(wait_for([&] { return files_under(work()).empty(); }, 10s))
        << "work/ still holds files";
}

TEST_F(RejectsTest, TooManyBytesIsRejectedBeforeDecoding) {
    const std::string big = make_jpeg({.width = 800, .height = 600, .seed = 43, .noise = 20});
    write_config({.limits = {{"max_bytes", static_cast<long long>(big.size() / 2)}}});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "big.jpg", big);
    const std::optional<Row> job = wait_failed("big.jpg");
    ASSERT_TRUE(job);
    const nlohmann::json note = read_json(failed() / "big.jpg.error.json");
    EXPECT_EQ(note.value("stage", ""), "validate");
    EXPECT_TRUE(contains_any(note.value("error", ""), {std::to_string(big.size())})) << note.dump();
    EXPECT_TRUE(
        contains_any(note.value("error", ""), {"limit", "larger", "too large", "more than"}))
        << note.dump();
}

}  // namespace
}  // namespace imgspool::it
