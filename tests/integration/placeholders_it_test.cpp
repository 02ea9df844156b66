// Progressive-loading placeholders through the real daemon: a profile with
// placeholder = ["blurhash", "lqip"] records both with the job (images, derivative_cache), shows
// them in `status ID` and `process`, and a cache hit carries the same ones; a profile without
// them records none.
#include <string>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

constexpr std::string_view kLqipPrefix = "data:image/webp;base64,";

// A profile with one small WebP variant, and placeholders when `placeholder` is a TOML array.
DaemonConfig gallery(const std::string& placeholder) {
    DaemonConfig c;
    c.profile = "gallery";
    c.extra_toml = "\n[profiles.gallery]\n" +
                   (placeholder.empty() ? "" : "placeholder = " + placeholder + "\n") +
                   "[[profiles.gallery.variant]]\nname = \"small\"\nwidth = 200\nheight = 200\n"
                   "formats = [\"webp\"]\n";
    return c;
}

// The placeholders as the images table has them.
struct Recorded {
    std::string blurhash, lqip;
};

class PlaceholdersIt : public SpoolFixture {
  protected:
    Recorded recorded(const std::string& upload_id) {
        const std::vector<Row> rows =
            query("select blurhash, lqip from images where upload_id = ?1", {upload_id});
        EXPECT_EQ(rows.size(), 1u) << upload_id;
        return rows.empty() ? Recorded{} : Recorded{rows[0].at("blurhash"), rows[0].at("lqip")};
    }

    nlohmann::json status_json(const std::string& upload_id) {
        const CommandResult r =
            run_imgspool({"status", "-c", config_path().string(), upload_id, "--json"}, root());
        EXPECT_EQ(r.status.code, 0) << r.err;
        return nlohmann::json::parse(r.out, nullptr, false);
    }
};

TEST_F(PlaceholdersIt, AreRecordedShownByStatusAndCarriedByACacheHit) {
    write_config(gallery(R"(["blurhash", "lqip"])"));
    const std::string source = make_jpeg({.width = 1200, .height = 800, .seed = 70});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));

    write_file(inbox() / "first.jpg", source);
    const std::optional<Row> first = wait_complete("first.jpg");
    ASSERT_TRUE(first) << daemon_log();
    const std::string id = first->at("id");
    const Recorded made = recorded(id);
    EXPECT_EQ(made.blurhash.size(), 28u) << made.blurhash;  // 4 x 3 components: landscape
    EXPECT_TRUE(made.lqip.starts_with(kLqipPrefix)) << made.lqip;
    EXPECT_LT(made.lqip.size(), 1024u);
    // The cached set keeps them for the next drop of the same bytes.
    EXPECT_EQ(query("select blurhash, lqip from derivative_cache where upload_id = ?1", {id}),
              (std::vector<Row>{{{"blurhash", made.blurhash}, {"lqip", made.lqip}}}));

    const nlohmann::json detail = status_json(id);
    ASSERT_TRUE(detail.is_object());
    EXPECT_EQ(detail.at("placeholders"),
              (nlohmann::json{{"blurhash", made.blurhash}, {"lqip", made.lqip}}));
    const CommandResult table = run_imgspool({"status", "-c", config_path().string(), id}, root());
    EXPECT_EQ(table.status.code, 0) << table.err;
    EXPECT_NE(table.out.find("blurhash       " + made.blurhash + "\n"), std::string::npos)
        << table.out;
    EXPECT_NE(table.out.find("lqip           " + made.lqip + "\n"), std::string::npos) << table.out;

    write_file(inbox() / "again.jpg", source);
    const std::optional<Row> again = wait_complete("again.jpg");
    ASSERT_TRUE(again) << daemon_log();
    EXPECT_EQ(again->at("cache_hit"), "1");
    const Recorded hit = recorded(again->at("id"));
    EXPECT_EQ(hit.blurhash, made.blurhash);
    EXPECT_EQ(hit.lqip, made.lqip);
    EXPECT_EQ(status_json(again->at("id")).at("placeholders"), detail.at("placeholders"));
}

TEST_F(PlaceholdersIt, AProfileWithoutThemRecordsNone) {
    write_config(gallery(""));
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "plain.jpg", make_jpeg({.width = 800, .height = 600, .seed = 71}));
    const std::optional<Row> done_job = wait_complete("plain.jpg");
    ASSERT_TRUE(done_job) << daemon_log();
    const Recorded none = recorded(done_job->at("id"));
    EXPECT_EQ(none.blurhash, "");  // NULL
    EXPECT_EQ(none.lqip, "");
    EXPECT_EQ(status_json(done_job->at("id")).at("placeholders"), nlohmann::json::object());
}

TEST_F(PlaceholdersIt, ProcessPrintsThemWithTheOutputs) {
    write_config(gallery(R"(["lqip"])"));
    const stdfs::path portrait = outside() / "portrait.png";
    write_file(portrait, make_png({.width = 600, .height = 900, .seed = 72}));
    const CommandResult r =
        run_imgspool({"process", "-c", config_path().string(), portrait.string()}, root());
    ASSERT_EQ(r.status.code, 0) << r.err;
    const std::vector<nlohmann::json> lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), 1u) << r.out;
    ASSERT_TRUE(lines[0].contains("placeholders") && lines[0]["placeholders"].is_object())
        << lines[0].dump();
    const nlohmann::json& p = lines[0].at("placeholders");
    EXPECT_FALSE(p.contains("blurhash")) << "not asked for: " << p.dump();
    const std::string lqip = p.value("lqip", "");
    EXPECT_TRUE(lqip.starts_with(kLqipPrefix)) << p.dump();
    EXPECT_EQ(recorded(lines[0].value("upload_id", "")).lqip, lqip);
}

}  // namespace
}  // namespace imgspool::it
