// The one-shot commands: process, status, check-config, --version and --help.
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/integration/web_outputs.hpp"

namespace imgspool::it {
namespace {

using CommandsTest = SpoolFixture;

TEST_F(CommandsTest, ProcessRendersEachFileAndLeavesTheInputsAlone) {
    const std::string jpeg = make_jpeg({.width = 1000, .height = 850, .seed = 60});
    const std::string png = make_png({.width = 900, .height = 820, .seed = 61});
    const stdfs::path a = outside() / "a.jpg";
    const stdfs::path b = outside() / "b.png";
    write_file(a, jpeg);
    write_file(b, png);

    const CommandResult r =
        run_imgspool({"process", "-c", config_path().string(), a.string(), b.string()}, root());
    ASSERT_TRUE(r.status.exited) << r.status.describe() << "\n" << r.err;
    EXPECT_EQ(r.status.code, 0) << r.err;
    const std::vector<nlohmann::json> lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), 2u) << r.out;

    struct Expect {
        stdfs::path file;
        std::string format;
        int w, h;
    };
    const Expect expect[] = {{a, "jpeg", 1000, 850}, {b, "png", 900, 820}};
    for (const Expect& e : expect) {
        SCOPED_TRACE(e.file.string());
        const nlohmann::json* line = nullptr;
        for (const auto& l : lines) {
            if (l.value("file", "") == e.file.string()) line = &l;
        }
        ASSERT_NE(line, nullptr) << "no line with \"file\": " << e.file << " in\n" << r.out;
        EXPECT_EQ(line->value("status", ""), "complete") << line->dump();
        const std::string id = line->value("upload_id", "");
        ASSERT_FALSE(id.empty());
        ASSERT_TRUE(line->contains("outputs") && (*line)["outputs"].is_object()) << line->dump();
        std::set<std::string> urls;
        for (const auto& [k, v] : (*line)["outputs"].items()) urls.insert(v.get<std::string>());
        EXPECT_EQ(urls, expected_urls(id, e.format));
        EXPECT_TRUE(web_outputs_ok(objects(), id, e.format, e.w, e.h));
        const std::optional<Row> job = this->job(id);
        ASSERT_TRUE(job);
        EXPECT_EQ(job->at("status"), "complete");
        EXPECT_EQ(recorded_urls(*this, id), urls);
        // The copy, not the user's file, went through the spool.
        EXPECT_TRUE(stdfs::exists(done() / e.file.filename())) << files_under(done()).size();
    }
    // The user's files are where they were, byte for byte.
    EXPECT_EQ(read_file(a), jpeg);
    EXPECT_EQ(read_file(b), png);
    EXPECT_EQ(files_under(work()), std::vector<std::string>{});

    // status: counts, then one job in text and JSON.
    const CommandResult counts =
        run_imgspool({"status", "-c", config_path().string(), "--json"}, root());
    EXPECT_EQ(counts.status.code, 0) << counts.err;
    const nlohmann::json c = nlohmann::json::parse(counts.out);
    EXPECT_EQ(c.value("complete", -1), 2) << counts.out;
    EXPECT_EQ(c.value("failed", -1), 0) << counts.out;

    const CommandResult table = run_imgspool({"status", "-c", config_path().string()}, root());
    EXPECT_EQ(table.status.code, 0) << table.err;
    EXPECT_TRUE(contains_any(table.out, {"complete"})) << table.out;
    EXPECT_TRUE(contains_any(table.out, {"2"})) << table.out;

    const std::string id = lines[0].value("upload_id", "");
    const CommandResult one =
        run_imgspool({"status", "-c", config_path().string(), id, "--json"}, root());
    EXPECT_EQ(one.status.code, 0) << one.err;
    const nlohmann::json detail = nlohmann::json::parse(one.out);
    EXPECT_EQ(detail.value("upload_id", ""), id);
    EXPECT_EQ(detail.value("status", ""), "complete");

    const CommandResult one_text =
        run_imgspool({"status", "-c", config_path().string(), id}, root());
    EXPECT_EQ(one_text.status.code, 0) << one_text.err;
    EXPECT_NE(one_text.out.find(id), std::string::npos) << one_text.out;
    EXPECT_NE(one_text.out.find("complete"), std::string::npos) << one_text.out;

    const CommandResult unknown = run_imgspool(
        {"status", "-c", config_path().string(), "00000000-0000-0000-0000-000000000000"}, root());
    EXPECT_NE(unknown.status.code, 0) << "an unknown upload_id must be an error";
}

TEST_F(CommandsTest, ProcessExitsOneWhenAFileFailsAndSaysWhy) {
    const std::string good = make_jpeg({.width = 400, .height = 300, .seed = 62});
    const std::string bad = "not an image at all\n";
    const stdfs::path g = outside() / "good.jpg";
    const stdfs::path b = outside() / "bad.jpg";
    write_file(g, good);
    write_file(b, bad);

    const CommandResult r =
        run_imgspool({"process", "-c", config_path().string(), g.string(), b.string()}, root());
    ASSERT_TRUE(r.status.exited) << r.status.describe();
    EXPECT_EQ(r.status.code, 1) << r.out << r.err;
    const std::vector<nlohmann::json> lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), 2u) << r.out;
    for (const nlohmann::json& l : lines) {
        if (l.value("file", "") == g.string()) {
            EXPECT_EQ(l.value("status", ""), "complete") << l.dump();
        } else {
            EXPECT_EQ(l.value("file", ""), b.string()) << l.dump();
            EXPECT_EQ(l.value("status", ""), "failed") << l.dump();
            EXPECT_EQ(l.value("stage", ""), "validate") << l.dump();
            EXPECT_TRUE(contains_any(l.value("error", ""),
                                     {"not a jpeg", "unsupported", "unknown format", "magic"}))
                << l.dump();
            const std::string id = l.value("upload_id", "");
            const std::optional<Row> job = this->job(id);
            ASSERT_TRUE(job) << "no job row for the failed file";
            EXPECT_EQ(job->at("status"), "failed");
            EXPECT_EQ(job->at("error"), l.value("error", ""));
        }
    }
    EXPECT_EQ(read_file(g), good);
    EXPECT_EQ(read_file(b), bad);
    EXPECT_TRUE(stdfs::exists(failed() / "bad.jpg"));
    EXPECT_TRUE(stdfs::exists(failed() / "bad.jpg.error.json"));
    EXPECT_TRUE(stdfs::exists(done() / "good.jpg"));
}

TEST_F(CommandsTest, ProcessRefusesSymlinksWithoutReadingThem) {
    const std::string bytes = make_jpeg({.width = 400, .height = 300, .seed = 63});
    write_file(outside() / "target.jpg", bytes);
    stdfs::create_symlink(outside() / "target.jpg", outside() / "link.jpg");
    const CommandResult r = run_imgspool(
        {"process", "-c", config_path().string(), (outside() / "link.jpg").string()}, root());
    EXPECT_EQ(r.status.code, 1) << r.out << r.err;
    const std::vector<nlohmann::json> lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), 1u) << r.out;
    EXPECT_EQ(lines[0].value("status", ""), "failed");
    EXPECT_TRUE(stdfs::is_symlink(outside() / "link.jpg"));
    EXPECT_EQ(read_file(outside() / "target.jpg"), bytes);
}

TEST_F(CommandsTest, CheckConfigPrintsTheEffectiveConfig) {
    const CommandResult r = run_imgspool({"check-config", "-c", config_path().string()}, root());
    EXPECT_EQ(r.status.code, 0) << r.err;
    EXPECT_NE(r.out.find("state_dir"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(state_dir().string()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("settle_ms"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("300"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("main"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(kCdn), std::string::npos) << r.out;
    // Debian 12's libvips has libheif with libaom and cgif: both optional encoders.
    EXPECT_NE(r.err.find("encodes AVIF: yes; GIF: yes"), std::string::npos) << r.err;
}

TEST_F(CommandsTest, CheckConfigNamesTheProfileAndKeyOfANewFormatProblem) {
    DaemonConfig c;
    c.extra_toml =
        "\n[profiles.modern]\navif_effort = 12\n[[profiles.modern.variant]]\nname = \"v\"\n";
    write_config(c);
    const CommandResult effort =
        run_imgspool({"check-config", "-c", config_path().string()}, root());
    EXPECT_NE(effort.status.code, 0);
    EXPECT_NE(effort.err.find("[profiles.modern] avif_effort"), std::string::npos) << effort.err;

    c.extra_toml =
        "\n[profiles.modern]\n[[profiles.modern.variant]]\nname = \"v\"\n"
        "width = 100\nheight = 100\ncrop = \"attention\"\n";
    write_config(c);
    const CommandResult crop = run_imgspool({"check-config", "-c", config_path().string()}, root());
    EXPECT_NE(crop.status.code, 0);
    EXPECT_NE(crop.err.find("crop = \"attention\" needs fit = \"cover\""), std::string::npos)
        << crop.err;
}

TEST_F(CommandsTest, CheckConfigNamesAnUnknownKey) {
    DaemonConfig c;
    std::string text = config_text(c);
    // An unknown key inside a known section.
    const std::string marker = "queue_max = 64\n";
    text.replace(text.find(marker), marker.size(), marker + "setle_ms = 300\n");
    write_file(config_path(), text);
    const CommandResult r = run_imgspool({"check-config", "-c", config_path().string()}, root());
    ASSERT_TRUE(r.status.exited);
    EXPECT_NE(r.status.code, 0);
    EXPECT_NE(r.err.find("setle_ms"), std::string::npos) << r.err;

    // A bad value names its key too.
    c.settle_ms = -5;
    write_config(c);
    const CommandResult bad = run_imgspool({"check-config", "-c", config_path().string()}, root());
    EXPECT_NE(bad.status.code, 0);
    EXPECT_NE(bad.err.find("settle_ms"), std::string::npos) << bad.err;

    // And the daemon refuses to start on it.
    const CommandResult run = run_imgspool({"run", "-c", config_path().string()}, root(), 20s);
    ASSERT_TRUE(run.status.exited)
        << "run with a bad config did not exit: " << run.status.describe();
    EXPECT_NE(run.status.code, 0);
}

TEST_F(CommandsTest, VersionAndHelp) {
    const CommandResult v = run_imgspool({"--version"}, root());
    EXPECT_EQ(v.status.code, 0);
    EXPECT_NE(v.out.find("imgspool"), std::string::npos) << v.out;
    EXPECT_NE(v.out.find_first_of("0123456789"), std::string::npos) << v.out;

    const CommandResult h = run_imgspool({"--help"}, root());
    EXPECT_EQ(h.status.code, 0);
    for (const char* word : {"run", "process", "status", "check-config"}) {
        EXPECT_NE(h.out.find(word), std::string::npos) << word << " missing from --help";
    }
}

// A profile whose large and small variants carry a red 64 x 32 mark.png (next to the config
// file, named relative to it) south-east, on variants at least 400 px wide.
DaemonConfig watermarked_config() {
    const std::string mark =
        "watermark = { image = \"mark.png\", gravity = \"south-east\", margin = 16, "
        "opacity = 1, min_width = 400 }\n";
    return DaemonConfig{.profile = "marked",
                        .extra_toml =
                            "\n[profiles.marked]\n"
                            "[[profiles.marked.variant]]\nname = \"large\"\n"
                            "width = 800\nheight = 800\nfit = \"cover\"\n" +
                            mark +
                            "[[profiles.marked.variant]]\nname = \"small\"\n"
                            "width = 150\nheight = 150\nfit = \"cover\"\n" +
                            mark};
}

bool is_red(const std::array<double, 3>& rgb) {
    return rgb[0] > 215 && rgb[1] < 40 && rgb[2] < 40;
}

TEST_F(CommandsTest, ADroppedPhotosWideVariantCarriesTheWatermarkAndTheNarrowOneDoesNot) {
    write_file(root() / "mark.png", make_solid_png(64, 32, {255, 0, 0}));
    write_config(watermarked_config());
    const CommandResult check =
        run_imgspool({"check-config", "-c", config_path().string()}, root());
    EXPECT_EQ(check.status.code, 0) << check.err;
    EXPECT_NE(check.out.find("watermark = { image = \"" + (root() / "mark.png").string()),
              std::string::npos)
        << check.out;

    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "photo.jpg",
               make_jpeg({.width = 1200, .height = 1000, .seed = 90, .noise = 2}));
    const std::optional<Row> job = wait_complete("photo.jpg");
    ASSERT_TRUE(job) << daemon_log();
    const stdfs::path outputs = objects() / "images" / job->at("id");

    // large: 800 x 800, the mark at x 720..783, y 752..783; the 16 px margin is the photo.
    const stdfs::path large = outputs / "large.jpg";
    ASSERT_EQ(read_image(large).width, 800) << read_image(large).error;
    for (const auto& [x, y] : {std::pair{722, 754}, std::pair{781, 754}, std::pair{722, 781},
                               std::pair{781, 781}, std::pair{751, 767}}) {
        EXPECT_TRUE(is_red(read_pixel(large, x, y))) << x << "," << y;
    }
    EXPECT_FALSE(is_red(read_pixel(large, 795, 795)));
    EXPECT_FALSE(is_red(read_pixel(large, 700, 767)));

    // small: 150 px, under min_width: no mark (it would sit at x 70..133, y 102..133), nor one
    // scaled down from large's.
    const stdfs::path small = outputs / "small.jpg";
    ASSERT_EQ(read_image(small).width, 150) << read_image(small).error;
    for (const auto& [x, y] : {std::pair{72, 104}, std::pair{131, 131}, std::pair{100, 117},
                               std::pair{141, 143}, std::pair{145, 145}, std::pair{148, 148}}) {
        EXPECT_FALSE(is_red(read_pixel(small, x, y))) << x << "," << y;
    }
}

}  // namespace
}  // namespace imgspool::it
