// Job manifests (*.job.json) against the real daemon: sources on a test origin the test starts on
// 127.0.0.1 and 127.0.0.2 (tests/fetch/origin), allowed in the config, end complete or failed
// with the right reason; with the default config every private or loopback source is refused
// before a connection is made (the origin counts what reaches it).
#include <cstdio>

#include "tests/fetch/origin_server.hpp"
#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

using fetch_test::OriginServer;

// A TOML (and JSON) basic string.
std::string quoted(const std::string& s) {
    return nlohmann::json(s).dump();
}

// Runs a shell command, returns its stdout (the sqlite3 CLI, as an operator would).
std::string shell(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
    return out;
}

class ManifestIt : public SpoolFixture {
  protected:
    void SetUp() override {
        SpoolFixture::SetUp();
        if (HasFatalFailure()) return;
        if (auto why = OriginServer::unavailable()) GTEST_SKIP() << *why;
        photo_ = make_jpeg({.width = 900, .height = 700, .seed = 41});
        origin_ = std::make_unique<OriginServer>(std::map<std::string, std::string>{
            {"photo.jpg", photo_}, {"small.png", make_png({.width = 300, .height = 200})}});
    }

    void TearDown() override {
        if (HasFailure() && origin_) std::cerr << "origin: " << origin_->stats().dump() << "\n";
        SpoolFixture::TearDown();
        origin_.reset();
    }

    // The test origin's addresses allowed; quick timeouts and retries.
    void start_allowing_origin(std::map<std::string, long long> limits = {}) {
        DaemonConfig c;
        c.settle_ms = 200;
        c.limits = std::move(limits);
        c.daemon = {{"retry_min_s", "1"}, {"retry_max_s", "1"}, {"abandon_after_s", "6"}};
        c.extra_toml =
            "\n[fetch]\nallow_hosts = [\"127.0.0.1\", \"127.0.0.2\"]\n"
            "connect_timeout_s = 2\ntimeout_s = 2\n";
        write_config(c);
        start_daemon();
        wait_until_watching();
    }

    void start_with_default_fetch() {
        DaemonConfig c;
        c.settle_ms = 200;
        write_config(c);
        start_daemon();
        wait_until_watching();
    }

    void drop_manifest(const std::string& name, const nlohmann::json& manifest) {
        write_file(inbox() / name, manifest.dump());
    }

    std::optional<Row> failed_with(const std::string& name, std::chrono::milliseconds t = 30s) {
        auto row = wait_failed(name, t);
        if (row) {
            EXPECT_EQ(row->at("error_stage"), "fetch") << row->at("error");
        }
        return row;
    }

    std::string photo_;
    std::unique_ptr<OriginServer> origin_;
};

TEST_F(ManifestIt, AnImageUrlCompletesWithItsRequestQueryableInSqlite) {
    start_allowing_origin();
    drop_manifest("gen-1.job.json",
                  {{"source", origin_->url1("/img/photo.jpg")},
                   {"profile", "dall-e"},
                   {"user_id", "u-42"},
                   {"tool", "dall-e"},
                   {"ref", "client-7"},
                   {"metadata", {{"prompt", "a lighthouse at dusk"}, {"seed", 7}}}});
    auto job = wait_complete("gen-1.job.json");
    ASSERT_TRUE(job) << daemon_log();
    EXPECT_EQ(job->at("source_hash"), sha256_hex(photo_)) << "cached by the fetched bytes";
    EXPECT_EQ(job->at("profile"), "dall-e");
    EXPECT_EQ(job->at("width"), "900");

    if (on_postgres()) {
        // The same question in PostgreSQL's JSON syntax, through the fixture's libpq reader.
        const auto rows = query(
            "select origin, user_id, tool, ref, source_url, metadata->>'prompt' as prompt "
            "from upload_jobs where id = ?1",
            {job->at("id")});
        ASSERT_EQ(rows.size(), 1u);
        EXPECT_EQ(rows[0].at("origin") + "|" + rows[0].at("user_id") + "|" + rows[0].at("tool") +
                      "|" + rows[0].at("ref") + "|" + rows[0].at("source_url") + "|" +
                      rows[0].at("prompt"),
                  "manifest|u-42|dall-e|client-7|" + origin_->url1("/img/photo.jpg") +
                      "|a lighthouse at dusk");
    } else {
        const std::string sql =
            "select origin, user_id, tool, ref, source_url, json_extract(metadata, '$.prompt') "
            "from upload_jobs where id = '" +
            job->at("id") + "'";
        EXPECT_EQ(shell("sqlite3 -separator '|' " + quoted(db_path().string()) + " " + quoted(sql)),
                  "manifest|u-42|dall-e|client-7|" + origin_->url1("/img/photo.jpg") +
                      "|a lighthouse at dusk\n");
    }

    const CommandResult status =
        run_imgspool({"status", job->at("id"), "-c", config_path().string(), "--json"}, root());
    ASSERT_EQ(status.status.code, 0) << status.err;
    const auto shown = nlohmann::json::parse(status.out);
    EXPECT_EQ(shown.at("user_id"), "u-42") << status.out;
    EXPECT_EQ(shown.at("metadata").at("prompt"), "a lighthouse at dusk") << status.out;
    EXPECT_EQ(shown.at("source_url"), origin_->url1("/img/photo.jpg"));
    EXPECT_TRUE(stdfs::exists(done() / "gen-1.job.json"));
}

TEST_F(ManifestIt, RedirectsAreFollowedAndTransientErrorsRetried) {
    start_allowing_origin();
    drop_manifest("chain.job.json",
                  {{"source", origin_->url2("/redirect/2?to=" + origin_->url1("/img/small.png"))}});
    drop_manifest("flaky.job.json", {{"source", origin_->url1("/flaky/k1?img=photo.jpg")}});
    auto chain = wait_complete("chain.job.json");
    ASSERT_TRUE(chain) << daemon_log();
    EXPECT_EQ(chain->at("format"), "png");
    auto flaky = wait_complete("flaky.job.json", 60s);
    ASSERT_TRUE(flaky) << daemon_log();
    EXPECT_GE(std::stoi(flaky->at("attempts")), 3) << "500, 500, then 200";
}

TEST_F(ManifestIt, BadSourcesFailWithTheirReason) {
    start_allowing_origin({{"max_bytes", 2 * 1024 * 1024}});
    drop_manifest("missing.job.json", {{"source", origin_->url1("/status/404")}});
    drop_manifest("huge.job.json", {{"source", origin_->url1("/huge?bytes=2147483648&chunked=1")}});
    drop_manifest("html.job.json", {{"source", origin_->url1("/html-as-jpeg")}});
    drop_manifest("ftp.job.json", {{"source", "ftp://127.0.0.1/x.jpg"}});
    drop_manifest("broken.job.json", nlohmann::json("not an object"));

    auto missing = failed_with("missing.job.json");
    ASSERT_TRUE(missing) << daemon_log();
    EXPECT_NE(missing->at("error").find("404"), std::string::npos) << missing->at("error");

    auto huge = failed_with("huge.job.json");
    ASSERT_TRUE(huge) << daemon_log();
    EXPECT_NE(huge->at("error").find("larger than"), std::string::npos) << huge->at("error");
    // Cut at max_bytes while streaming: the origin sent little more than the limit.
    EXPECT_LT(origin_->stats().at("huge_sent").get<long long>(), 2LL * 1024 * 1024 + (8LL << 20));

    auto html = wait_failed("html.job.json");
    ASSERT_TRUE(html) << daemon_log();
    EXPECT_EQ(html->at("error_stage"), "validate") << html->at("error");

    auto ftp = wait_failed("ftp.job.json");
    ASSERT_TRUE(ftp) << daemon_log();
    EXPECT_NE(ftp->at("error").find("must start with http://"), std::string::npos)
        << ftp->at("error");
    auto broken = wait_failed("broken.job.json");
    ASSERT_TRUE(broken) << daemon_log();
    EXPECT_NE(broken->at("error").find("manifest"), std::string::npos) << broken->at("error");
    EXPECT_TRUE(stdfs::exists(failed() / "missing.job.json.error.json"));
}

TEST_F(ManifestIt, AStalledOriginTimesOutAndIsGivenUpAfterAbandonAfter) {
    start_allowing_origin();
    drop_manifest("slow.job.json", {{"source", origin_->url1("/trickle?bps=100&total=100000")}});
    // timeout_s = 2 per try, retried each second, failed once the job is 6 s old.
    auto slow = failed_with("slow.job.json", 40s);
    ASSERT_TRUE(slow) << daemon_log();
    EXPECT_TRUE(contains_any(slow->at("error"), {"timed out", "timeout"})) << slow->at("error");
    EXPECT_NE(slow->at("error").find("abandon_after_s"), std::string::npos) << slow->at("error");
    EXPECT_GE(std::stoi(slow->at("attempts")), 2);
}

TEST_F(ManifestIt, TheDefaultConfigRefusesPrivateAndLoopbackSourcesBeforeConnecting) {
    start_with_default_fetch();
    const std::string port = std::to_string(origin_->port1());
    const std::map<std::string, std::string> sources = {
        {"v4-loopback", "http://127.0.0.1:" + port + "/img/photo.jpg"},
        {"v6-loopback", "http://[::1]:" + port + "/img/photo.jpg"},
        {"mapped", "http://[::ffff:127.0.0.1]:" + port + "/img/photo.jpg"},
        {"name", "http://localhost:" + port + "/img/photo.jpg"},
        {"private", "http://10.0.0.5/img/photo.jpg"},
        {"metadata", "http://169.254.169.254/latest/meta-data/"},
    };
    for (const auto& [name, url] : sources) drop_manifest(name + ".job.json", {{"source", url}});
    for (const auto& [name, url] : sources) {
        auto row = failed_with(name + ".job.json");
        ASSERT_TRUE(row) << name << "\n" << daemon_log();
        EXPECT_NE(row->at("error").find("refused"), std::string::npos)
            << name << ": " << row->at("error");
    }
    EXPECT_EQ(origin_->requests(), 0) << "no request may reach a refused address";
}

TEST_F(ManifestIt, ARedirectFromAnAllowedHostToAPrivateOneIsRefused) {
    DaemonConfig c;
    c.settle_ms = 200;
    c.extra_toml = "\n[fetch]\nallow_hosts = [\"127.0.0.2\"]\n";
    write_config(c);
    start_daemon();
    wait_until_watching();
    const std::string to = origin_->url1("/img/photo.jpg");
    drop_manifest("hop.job.json", {{"source", origin_->url2("/redirect/0?to=" + to)}});
    auto row = failed_with("hop.job.json");
    ASSERT_TRUE(row) << daemon_log();
    EXPECT_NE(row->at("error").find("refused"), std::string::npos) << row->at("error");
    const auto stats = origin_->stats();
    EXPECT_EQ(stats.at("listeners").value("127.0.0.1", 0), 0) << stats.dump();
    EXPECT_GE(stats.at("listeners").value("127.0.0.2", 0), 1) << stats.dump();
}

}  // namespace
}  // namespace imgspool::it
