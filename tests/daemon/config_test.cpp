#include "daemon/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include <vips/vips.h>

#include "pipeline/render.hpp"

namespace imgspool {
namespace {

namespace fs = std::filesystem;

const char* const kEnvVars[] = {"S3_BUCKET",
                                "S3_REGION",
                                "S3_ENDPOINT",
                                "S3_ACCESS_KEY_ID",
                                "S3_SECRET_ACCESS_KEY",
                                "AWS_ACCESS_KEY_ID",
                                "AWS_SECRET_ACCESS_KEY",
                                "AWS_SESSION_TOKEN",
                                "AWS_REGION",
                                "CDN_URL",
                                "ENABLE_METRICS",
                                "METRICS_PORT",
                                "METRICS_BIND",
                                "FETCH_S3_ACCESS_KEY_ID",
                                "FETCH_S3_SECRET_ACCESS_KEY",
                                "FETCH_S3_SESSION_TOKEN",
                                "FETCH_S3_ENDPOINT",
                                "IMGSPOOL_HTTP_TOKEN",
                                "DATABASE_URL",
                                "IMGSPOOL_NODE"};

// Clears every variable the loader reads, and restores them afterwards.
class ConfigTest : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* name : kEnvVars) {
            if (const char* v = getenv(name)) saved_[name] = v;
            unsetenv(name);
        }
    }
    void TearDown() override {
        for (const char* name : kEnvVars) unsetenv(name);
        for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
    }

    static Result<Config> parse(const std::string& text) { return parse_config(text, "test.toml"); }

    // The error message of parsing `text`, which must fail.
    static std::string error_of(const std::string& text) {
        Result<Config> c = parse(text);
        EXPECT_FALSE(c.ok()) << "expected an error for:\n" << text;
        if (c.ok()) return {};
        EXPECT_EQ(c.error().stage, Stage::config);
        return c.error().message();
    }

  private:
    std::map<std::string, std::string> saved_;
};

const std::string kSpool = "[[spool]]\nname = \"a\"\nroot = \"/srv/a\"\n";

std::string host_name() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return host;
}

// A password that must never be printed, and a URL that carries it.
const std::string kPassword = "s3cret-Pa55";
const std::string kDatabaseUrl =
    "postgresql://imgspool:" + kPassword + "@db.example.com:5433/jobs?sslmode=require";

const std::string kS3 =
    kSpool +
    "[store]\nkind = \"s3\"\nbucket = \"b\"\nregion = \"eu-west-1\"\n"
    "access_key_id = \"AKIAFILEKEY123\"\nsecret_access_key = \"file-secret-xyz\"\n";

TEST_F(ConfigTest, ExampleFileLoads) {
    Result<Config> c = load_config(fs::path(IMGSPOOL_SOURCE_DIR) / "imgspool.example.toml");
    ASSERT_TRUE(c.ok()) << c.error().message();
    const fs::path cwd = fs::current_path();
    EXPECT_EQ(c->file, fs::path(IMGSPOOL_SOURCE_DIR) / "imgspool.example.toml");
    EXPECT_EQ(c->daemon.state_dir, cwd / "var");
    EXPECT_EQ(c->database_path(), cwd / "var" / "imgspool.db");
    ASSERT_EQ(c->spools.size(), 1u);
    EXPECT_EQ(c->spools[0].name, "default");
    EXPECT_EQ(c->spools[0].root, cwd / "var" / "spool");
    EXPECT_EQ(c->spools[0].profile, "web");
    EXPECT_EQ(c->store.kind, "local");
    EXPECT_EQ(c->store.path, cwd / "var" / "objects");
    EXPECT_FALSE(c->metrics.enabled);
    EXPECT_TRUE(c->fetch.allow_hosts.empty());
    EXPECT_FALSE(c->fetch.s3_set);
    EXPECT_FALSE(c->http.enabled);
    EXPECT_EQ(c->http.spool, "default");
    EXPECT_EQ(c->http.token, "");
}

TEST_F(ConfigTest, DefaultsApplyToAbsentKeys) {
    Result<Config> c = parse(kSpool);
    ASSERT_TRUE(c.ok()) << c.error().message();
    const fs::path cwd = fs::current_path();
    EXPECT_EQ(c->file, "test.toml");
    EXPECT_EQ(c->daemon.state_dir, cwd / "var");
    EXPECT_EQ(c->daemon.workers, 0);
    EXPECT_EQ(c->daemon.settle_ms, 2000);
    EXPECT_EQ(c->daemon.rescan_s, 30);
    EXPECT_EQ(c->daemon.queue_max, 64);
    EXPECT_EQ(c->daemon.node, host_name());
    EXPECT_EQ(c->database.url, "");  // SQLite
    EXPECT_EQ(c->database.pool_size, 0);
    EXPECT_EQ(c->database.connect_timeout_s, 5);
    EXPECT_EQ(c->database.statement_timeout_s, 30);
    EXPECT_EQ(c->spools[0].root, "/srv/a");
    EXPECT_EQ(c->spools[0].profile, "web");
    EXPECT_EQ(c->spools[0].watch, WatchMode::inotify);
    EXPECT_EQ(c->spools[0].poll, std::chrono::seconds(2));
    EXPECT_EQ(c->store.kind, "local");
    EXPECT_EQ(c->store.path, cwd / "var" / "objects");
    EXPECT_EQ(c->store.public_base_url, "");
    EXPECT_EQ(c->store.key_template, "images/{upload_id}/{variant}.{ext}");
    EXPECT_EQ(c->store.s3.region, "us-east-1");
    EXPECT_EQ(c->store.s3.multipart_threshold, 16u * 1024 * 1024);
    EXPECT_EQ(c->limits.max_bytes, 10u * 1024 * 1024);
    EXPECT_EQ(c->limits.min_width, 100);
    EXPECT_EQ(c->limits.max_height, 10000);
    EXPECT_EQ(c->limits.max_pixels, 100'000'000u);
    EXPECT_FALSE(c->metrics.enabled);
    EXPECT_EQ(c->metrics.bind, "127.0.0.1");
    EXPECT_EQ(c->metrics.port, 9091);
    EXPECT_TRUE(c->fetch.allow_hosts.empty());
    EXPECT_EQ(c->fetch.max_redirects, 5);
    EXPECT_EQ(c->fetch.connect_timeout_s, 10);
    EXPECT_EQ(c->fetch.timeout_s, 60);
    EXPECT_FALSE(c->fetch.s3_set);
    EXPECT_FALSE(c->http.enabled);
    EXPECT_EQ(c->http.bind, "127.0.0.1");
    EXPECT_EQ(c->http.port, 8080);
    EXPECT_EQ(c->http.spool, "a");  // the first spool
    EXPECT_EQ(c->http.token, "");
    EXPECT_EQ(c->http.max_connections, 64);
    EXPECT_EQ(c->http.idle_timeout_s, 30);
    EXPECT_EQ(c->http.request_timeout_s, 120);
    EXPECT_EQ(c->profiles.size(), builtin_profiles().size());
    EXPECT_EQ(c->profiles.count("web"), 1u);
    EXPECT_GE(c->effective_workers(), 1);
}

TEST_F(ConfigTest, ReadsEveryPlainKey) {
    Result<Config> c = parse(
        "[daemon]\nstate_dir = \"/var/lib/imgspool\"\nworkers = 3\nsettle_ms = 0\n"
        "rescan_s = 5\nqueue_max = 7\n" +
        kSpool +
        "[store]\npath = \"/srv/objects\"\npublic_base_url = \"https://cdn.example.com/img//\"\n"
        "key_template = \"{spool}/{upload_id}-{variant}.{ext}\"\nmultipart_threshold_mb = 32\n"
        "multipart_part_size_mb = 6\nmax_attempts = 2\nconnect_timeout_ms = 10\n"
        "request_timeout_ms = 20\nparallel_uploads = 3\nmax_connections = 5\n"
        "endpoint = \"http://127.0.0.1:9000/\"\n"
        "[limits]\nmax_bytes = 2048\nmin_width = 10\nmin_height = 20\nmax_width = 30\n"
        "max_height = 40\nmax_pixels = 900\n"
        "[metrics]\nenabled = true\nbind = \"0.0.0.0\"\nport = 9200\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->daemon.state_dir, "/var/lib/imgspool");
    EXPECT_EQ(c->daemon.workers, 3);
    EXPECT_EQ(c->effective_workers(), 3);
    EXPECT_EQ(c->daemon.settle_ms, 0);
    EXPECT_EQ(c->daemon.rescan_s, 5);
    EXPECT_EQ(c->daemon.queue_max, 7);
    EXPECT_EQ(c->store.path, "/srv/objects");
    EXPECT_EQ(c->store.public_base_url, "https://cdn.example.com/img");
    EXPECT_EQ(c->store.key_template, "{spool}/{upload_id}-{variant}.{ext}");
    EXPECT_EQ(c->store.s3.multipart_threshold, 32u * 1024 * 1024);
    EXPECT_EQ(c->store.s3.multipart_part_size, 6u * 1024 * 1024);
    EXPECT_EQ(c->store.s3.max_attempts, 2);
    EXPECT_EQ(c->store.s3.connect_timeout_ms, 10);
    EXPECT_EQ(c->store.s3.request_timeout_ms, 20);
    EXPECT_EQ(c->store.s3.parallel_uploads, 3);
    EXPECT_EQ(c->store.s3.max_connections, 5);
    EXPECT_EQ(c->store.s3.endpoint, "http://127.0.0.1:9000");
    EXPECT_EQ(c->limits.max_bytes, 2048u);
    EXPECT_EQ(c->limits.min_width, 10);
    EXPECT_EQ(c->limits.min_height, 20);
    EXPECT_EQ(c->limits.max_width, 30);
    EXPECT_EQ(c->limits.max_height, 40);
    EXPECT_EQ(c->limits.max_pixels, 900u);
    EXPECT_TRUE(c->metrics.enabled);
    EXPECT_EQ(c->metrics.bind, "0.0.0.0");
    EXPECT_EQ(c->metrics.port, 9200);
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheCurrentFolderLexically) {
    Result<Config> c = parse(
        "[daemon]\nstate_dir = \"./state/../db/\"\n[[spool]]\nname = \"a\"\nroot = \"in/a/\"\n"
        "[store]\npath = \"out\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    const fs::path cwd = fs::current_path();
    EXPECT_EQ(c->daemon.state_dir, cwd / "db");
    EXPECT_EQ(c->spools[0].root, cwd / "in" / "a");
    EXPECT_EQ(c->store.path, cwd / "out");
}

TEST_F(ConfigTest, UnknownKeysAreNamedWhereverTheyAre) {
    EXPECT_NE(error_of(kSpool + "colour = 1\n").find("key \"colour\": unknown key"),
              std::string::npos);
    EXPECT_NE(
        error_of("[daemon]\nwrokers = 2\n" + kSpool).find("[daemon] key \"wrokers\": unknown key"),
        std::string::npos);
    EXPECT_EQ(error_of(kSpool + "[[spool]]\nname = \"b\"\nrooot = \"/srv/b\"\n"),
              "config: test.toml: [[spool]] #2 key \"rooot\": unknown key (line 6)");
    EXPECT_NE(error_of(kSpool + "[store]\nbuckett = \"x\"\n").find("[store] key \"buckett\""),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\nkeep_exif = true\n[[profiles.p.variant]]\n"
                                "name = \"v\"\n")
                  .find("[profiles.p] key \"keep_exif\": unknown key"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\n[[profiles.p.variant]]\nname = \"v\"\nwidht = 3\n")
                  .find("[[profiles.p.variant]] #1 key \"widht\": unknown key"),
              std::string::npos);
}

TEST_F(ConfigTest, WrongTypesAndRangesNameTheKeyAndTheValue) {
    EXPECT_EQ(error_of("[daemon]\nworkers = \"four\"\n" + kSpool),
              "config: test.toml: [daemon] workers: expected an integer 0..256, got \"four\" "
              "(line 2)");
    EXPECT_NE(error_of("[daemon]\nworkers = 257\n" + kSpool)
                  .find("[daemon] workers: expected an integer 0..256, got 257"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[metrics]\nport = 70000\n")
                  .find("[metrics] port: expected an integer 1..65535, got 70000"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[metrics]\nenabled = \"yes\"\n")
                  .find("[metrics] enabled: expected true or false, got \"yes\""),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[limits]\nmax_bytes = -1\n").find("[limits] max_bytes"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[limits]\nmin_width = 500\nmax_width = 400\n")
                  .find("[limits] min_width: 500 is larger than max_width 400"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[store]\nkind = \"ftp\"\n").find("[store] kind"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[store]\npublic_base_url = \"cdn.example.com\"\n")
                  .find("[store] public_base_url: expected an http:// or https:// URL"),
              std::string::npos);
    EXPECT_NE(error_of("daemon = 3\n" + kSpool).find("daemon: expected a table, got 3"),
              std::string::npos);
    EXPECT_NE(error_of("[spool]\nname = \"a\"\nroot = \"/srv/a\"\n")
                  .find("spool: expected an array of tables, got a table"),
              std::string::npos);
    EXPECT_NE(error_of("[[spool]]\nname = \"a b\"\nroot = \"/srv/a\"\n").find("[[spool]] #1 name"),
              std::string::npos);
    EXPECT_NE(error_of("[[spool]]\nname = \"a\"\n").find("[[spool]] #1 root: missing (required)"),
              std::string::npos);
}

TEST_F(ConfigTest, SpoolProblemsNameTheSpool) {
    EXPECT_NE(error_of(kSpool + "[[spool]]\nname = \"a\"\nroot = \"/srv/b\"\n")
                  .find("[[spool]] #2 name: duplicate spool name \"a\""),
              std::string::npos);
    EXPECT_NE(error_of("[[spool]]\nname = \"a\"\nroot = \"/srv/a\"\nprofile = \"nope\"\n")
                  .find("[[spool]] #1 profile: unknown profile \"nope\""),
              std::string::npos);
    EXPECT_NE(error_of("[daemon]\nworkers = 1\n").find("no [[spool]] table"), std::string::npos);
    EXPECT_NE(error_of(kSpool + "[[spool]]\nname = \"b\"\nroot = \"/srv/a/../a/\"\n")
                  .find("[[spool]] #2 root"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[[spool]]\nname = \"b\"\nroot = \"/srv/a/nested\"\n")
                  .find("overlaps the root of [[spool]] #1"),
              std::string::npos);
    EXPECT_NE(
        error_of("[[spool]]\nname = \"b\"\nroot = \"/srv\"\n" + kSpool).find("[[spool]] #2 root"),
        std::string::npos);
    EXPECT_TRUE(parse(kSpool + "[[spool]]\nname = \"b\"\nroot = \"/srv/ab\"\n").ok());
}

TEST_F(ConfigTest, ASpoolIsWatchedOrPolledEveryPollS) {
    Result<Config> c = parse(kSpool + "watch = \"poll\"\n" +
                             "[[spool]]\nname = \"b\"\nroot = \"/srv/b\"\nwatch = \"poll\"\n"
                             "poll_s = 300\n" +
                             "[[spool]]\nname = \"c\"\nroot = \"/srv/c\"\nwatch = \"inotify\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->spools[0].watch, WatchMode::poll);
    EXPECT_EQ(c->spools[0].poll, std::chrono::seconds(2));
    EXPECT_EQ(c->spools[1].watch, WatchMode::poll);
    EXPECT_EQ(c->spools[1].poll, std::chrono::seconds(300));
    EXPECT_EQ(c->spools[2].watch, WatchMode::inotify);

    EXPECT_EQ(error_of(kSpool + "watch = \"fanotify\"\n"),
              "config: test.toml: [[spool]] #1 watch: expected \"inotify\" or \"poll\", got "
              "\"fanotify\" (line 4)");
    EXPECT_NE(
        error_of(kSpool + "watch = true\n").find("[[spool]] #1 watch: expected a string, got true"),
        std::string::npos);
    for (const char* bad : {"0", "301", "-2", "1.5", "\"2\""}) {
        EXPECT_NE(
            error_of(kSpool + "watch = \"poll\"\npoll_s = " + bad + "\n")
                .find("[[spool]] #1 poll_s: expected an integer 1..300, got " + std::string(bad)),
            std::string::npos)
            << bad;
    }
    // Polling was asked for but would not happen: refused, not ignored.
    const std::string not_polled = "[[spool]] #1 poll_s: only used with watch = \"poll\"";
    EXPECT_NE(error_of(kSpool + "poll_s = 5\n").find(not_polled), std::string::npos);
    EXPECT_NE(error_of(kSpool + "watch = \"inotify\"\npoll_s = 5\n").find(not_polled),
              std::string::npos);
}

TEST_F(ConfigTest, ReadsNodeAndDatabaseKeys) {
    Result<Config> c = parse("[daemon]\nnode = \"render-01.example_b\"\n" + kSpool +
                             "[database]\nurl = \"" + kDatabaseUrl +
                             "\"\npool_size = 2\nconnect_timeout_s = 60\n"
                             "statement_timeout_s = 600\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->daemon.node, "render-01.example_b");
    EXPECT_EQ(c->database.url, kDatabaseUrl);
    EXPECT_EQ(c->database.pool_size, 2);
    EXPECT_EQ(c->database.connect_timeout_s, 60);
    EXPECT_EQ(c->database.statement_timeout_s, 600);
    // The other libpq form, and "" (the host name, as when the key is left out).
    c = parse("[daemon]\nnode = \"\"\n" + kSpool +
              "[database]\nurl = \"host=/run/postgresql dbname=jobs\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->daemon.node, host_name());
    EXPECT_EQ(c->database.url, "host=/run/postgresql dbname=jobs");
    EXPECT_TRUE(parse("[daemon]\nnode = \"" + std::string(63, 'n') + "\"\n" + kSpool).ok());
}

TEST_F(ConfigTest, NodeAndDatabaseProblemsNameTheKey) {
    EXPECT_EQ(error_of("[daemon]\nnode = \"a b\"\n" + kSpool),
              "config: test.toml: [daemon] node: expected 1..63 letters, digits, '.', '_' or '-', "
              "got \"a b\" (line 2)");
    for (const std::string& bad :
         {std::string(64, 'n'), std::string("node/1"), std::string("né")}) {
        EXPECT_NE(
            error_of("[daemon]\nnode = \"" + bad + "\"\n" + kSpool).find("[daemon] node: expected"),
            std::string::npos)
            << bad;
    }
    EXPECT_NE(error_of("[daemon]\nnode = 7\n" + kSpool).find("[daemon] node: expected a string"),
              std::string::npos);
    EXPECT_NE(
        error_of(kSpool + "[database]\npool_size = 1\n")
            .find("[database] pool_size: expected 0 (workers + 3) or an integer 2..256, got 1"),
        std::string::npos);
    EXPECT_NE(error_of(kSpool + "[database]\npool_size = 257\n").find("[database] pool_size"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[database]\nconnect_timeout_s = 0\n")
                  .find("[database] connect_timeout_s: expected an integer 1..60, got 0"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[database]\nstatement_timeout_s = 601\n")
                  .find("[database] statement_timeout_s: expected an integer 1..600, got 601"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[database]\nhost = \"db\"\n")
                  .find("[database] key \"host\": unknown key"),
              std::string::npos);
    // A URL that is not libpq's is refused by key, never repeated: it may hold a password.
    for (const std::string& bad :
         {"sqlite:/var/lib/imgspool/" + kPassword, "https://u:" + kPassword + "@db/x",
          "postgresql://u:" + kPassword + "%zz@db/x", "host=db password=" + kPassword + " x"}) {
        const std::string why = error_of(kSpool + "[database]\nurl = \"" + bad + "\"\n");
        EXPECT_NE(why.find("[database] url: "), std::string::npos) << why;
        EXPECT_EQ(why.find(kPassword), std::string::npos) << why;
    }
}

TEST_F(ConfigTest, DatabaseUrlAndNodeComeFromTheEnvironment) {
    setenv("DATABASE_URL", kDatabaseUrl.c_str(), 1);
    setenv("IMGSPOOL_NODE", "node-b", 1);
    Result<Config> c = parse("[daemon]\nnode = \"node-a\"\n" + kSpool +
                             "[database]\nurl = \"postgresql://file@db/file\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->database.url, kDatabaseUrl);
    EXPECT_EQ(c->daemon.node, "node-b");

    setenv("DATABASE_URL", "", 1);  // empty counts as unset
    setenv("IMGSPOOL_NODE", "", 1);
    c = parse(kSpool);
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->database.url, "");
    EXPECT_EQ(c->daemon.node, host_name());

    setenv("DATABASE_URL", ("mysql://root:" + kPassword + "@db/x").c_str(), 1);
    std::string why = error_of(kSpool);
    EXPECT_NE(why.find("DATABASE_URL must be a postgresql://"), std::string::npos) << why;
    EXPECT_EQ(why.find(kPassword), std::string::npos) << why;
    unsetenv("DATABASE_URL");
    setenv("IMGSPOOL_NODE", "two words", 1);
    EXPECT_EQ(error_of(kSpool),
              "config: environment variable IMGSPOOL_NODE: expected 1..63 letters, digits, '.', "
              "'_' or '-', got \"two words\"");
}

TEST_F(ConfigTest, DescribeMasksTheDatabasePasswordAndParsesBack) {
    for (const std::string& url : {kDatabaseUrl, "host=db.example.com user=imgspool password=" +
                                                     kPassword + " dbname=jobs"}) {
        Result<Config> c =
            parse("[daemon]\nnode = \"n1\"\n" + kSpool + "[database]\nurl = \"" + url +
                  "\"\npool_size = 9\n"
                  "connect_timeout_s = 7\nstatement_timeout_s = 70\n");
        ASSERT_TRUE(c.ok()) << c.error().message();
        const std::string text = describe_config(*c);
        EXPECT_EQ(text.find(kPassword), std::string::npos) << text;
        EXPECT_NE(text.find("****"), std::string::npos) << text;
        EXPECT_NE(text.find("db.example.com"), std::string::npos) << text;
        Result<Config> back = parse(text);
        ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << text;
        EXPECT_EQ(back->daemon.node, "n1");
        EXPECT_EQ(back->database.pool_size, 9);
        EXPECT_EQ(back->database.connect_timeout_s, 7);
        EXPECT_EQ(back->database.statement_timeout_s, 70);
        EXPECT_EQ(back->database.url.find(kPassword), std::string::npos);
    }
    Result<Config> sqlite = parse(kSpool);
    ASSERT_TRUE(sqlite.ok());
    EXPECT_NE(describe_config(*sqlite).find("[database]\nurl = \"\""), std::string::npos);
}

TEST_F(ConfigTest, StoreProblemsNameTheKey) {
    EXPECT_NE(error_of(kSpool + "[store]\nkind = \"s3\"\nregion = \"r\"\n").find("[store] bucket"),
              std::string::npos);
    std::string no_secret =
        kSpool + "[store]\nkind = \"s3\"\nbucket = \"b\"\naccess_key_id = \"k\"\n";
    EXPECT_NE(error_of(no_secret).find("[store] secret_access_key"), std::string::npos);
    EXPECT_NE(error_of(kSpool + "[store]\nretry_base_delay_ms = 900\nretry_max_delay_ms = 800\n")
                  .find("[store] retry_base_delay_ms: 900 is larger than retry_max_delay_ms 800"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[store]\nkey_template = \"images/{upload_id}.{ext}\"\n")
                  .find("[store] key_template: "),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[store]\nkey_template = \"{upload_id}/{variant}.{ext}/{x}\"\n")
                  .find("[store] key_template: "),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[store]\nmax_connections = 0\n")
                  .find("[store] max_connections: expected an integer 1..256, got 0"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[store]\nmax_connections = 257\n")
                  .find("[store] max_connections: expected an integer 1..256, got 257"),
              std::string::npos);
}

TEST_F(ConfigTest, SyntaxErrorsGiveTheLine) {
    std::string msg = error_of("[daemon]\nworkers = 2\nsettle_ms 5\n");
    EXPECT_NE(msg.find("config: test.toml: syntax error: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("(line 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("settle_ms 5"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;

    std::string twice = error_of(kSpool + "[daemon]\nworkers = 1\nworkers = 2\n");
    EXPECT_NE(twice.find("(line 6)"), std::string::npos) << twice;
}

TEST_F(ConfigTest, LoadConfigReportsUnreadableFiles) {
    Result<Config> c = load_config("/nonexistent/imgspool.toml");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().file, "/nonexistent/imgspool.toml");
    EXPECT_NE(c.error().reason.find("cannot open"), std::string::npos);
}

TEST_F(ConfigTest, CustomProfileBecomesVariantsAndOutputs) {
    Result<Config> c = parse(
        "[[spool]]\nname = \"a\"\nroot = \"/srv/a\"\nprofile = \"thumbs\"\n"
        "[profiles.thumbs]\nkeep_metadata = true\njpeg_progressive = false\npng_compression = 4\n"
        "webp_effort = 5\nfail_on = \"truncated\"\n"
        "[[profiles.thumbs.variant]]\nname = \"small\"\nwidth = 320\nheight = 200\n"
        "fit = \"cover\"\nenlarge = true\nformats = [\"source\", \"webp\"]\nquality = 70\n"
        "[[profiles.thumbs.variant]]\nname = \"original\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->profiles.size(), builtin_profiles().size() + 1);
    const Profile& p = c->profiles.at("thumbs");
    EXPECT_EQ(p.name, "thumbs");
    EXPECT_TRUE(p.keep_metadata);
    EXPECT_FALSE(p.jpeg_progressive);
    EXPECT_EQ(p.png_compression, 4);
    EXPECT_EQ(p.webp_effort, 5);
    EXPECT_EQ(p.fail_on, FailOn::truncated);
    ASSERT_EQ(p.variants.size(), 2u);
    const Variant& small = p.variants[0];
    EXPECT_EQ(small.name, "small");
    EXPECT_EQ(small.width, 320);
    EXPECT_EQ(small.height, 200);
    EXPECT_EQ(small.fit, Fit::cover);
    EXPECT_TRUE(small.enlarge);
    ASSERT_EQ(small.outputs.size(), 2u);
    EXPECT_EQ(small.outputs[0].format, std::nullopt);
    EXPECT_EQ(small.outputs[0].quality, 70);
    EXPECT_EQ(small.outputs[1].format, Format::webp);
    EXPECT_EQ(small.outputs[1].quality, 70);
    const Variant& original = p.variants[1];
    EXPECT_EQ(original.width, 0);
    EXPECT_EQ(original.height, 0);
    EXPECT_EQ(original.fit, Fit::inside);
    EXPECT_FALSE(original.enlarge);
    ASSERT_EQ(original.outputs.size(), 1u);
    EXPECT_EQ(original.outputs[0].format, std::nullopt);
    EXPECT_EQ(original.outputs[0].quality, 85);
}

TEST_F(ConfigTest, PlaceholdersAreAskedForByNameAndDescribedBack) {
    Result<Config> c = parse(kSpool +
                             "[profiles.both]\nplaceholder = [\"lqip\", \"blurhash\"]\n"
                             "[[profiles.both.variant]]\nname = \"v\"\n"
                             "[profiles.hash]\nplaceholder = [\"blurhash\"]\n"
                             "[[profiles.hash.variant]]\nname = \"v\"\n"
                             "[profiles.none]\n[[profiles.none.variant]]\nname = \"v\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->profiles.at("both").placeholders, (PlaceholderSet{true, true}));
    EXPECT_EQ(c->profiles.at("hash").placeholders, (PlaceholderSet{true, false}));
    EXPECT_EQ(c->profiles.at("none").placeholders, PlaceholderSet{});
    EXPECT_EQ(c->profiles.at("web").placeholders, PlaceholderSet{});

    const std::string text = describe_config(*c);
    EXPECT_NE(text.find("[profiles.both]\nkeep_metadata"), std::string::npos) << text;
    EXPECT_NE(text.find("placeholder = [\"blurhash\", \"lqip\"]"), std::string::npos) << text;
    EXPECT_NE(text.find("placeholder = []"), std::string::npos) << text;
    Result<Config> back = parse(text);
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << text;
    for (const char* name : {"both", "hash", "none"}) {
        EXPECT_EQ(back->profiles.at(name).placeholders, c->profiles.at(name).placeholders) << name;
    }
}

TEST_F(ConfigTest, AnUnknownPlaceholderNamesTheKey) {
    EXPECT_NE(error_of(kSpool + "[profiles.p]\nplaceholder = [\"blurhash\", \"thumbhash\"]\n"
                                "[[profiles.p.variant]]\nname = \"v\"\n")
                  .find("[profiles.p] placeholder: expected \"blurhash\" or \"lqip\", got "
                        "\"thumbhash\""),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\nplaceholder = \"blurhash\"\n"
                                "[[profiles.p.variant]]\nname = \"v\"\n")
                  .find("[profiles.p] placeholder: "),
              std::string::npos);
}

TEST_F(ConfigTest, DecoderStrictnessDefaultsToWarningLikeSharp) {
    Result<Config> c =
        parse(kSpool +
              "[profiles.p]\n[[profiles.p.variant]]\nname = \"v\"\n"
              "[profiles.q]\nfail_on = \"warning\"\n[[profiles.q.variant]]\nname = \"v\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->profiles.at("p").fail_on, FailOn::warning);
    EXPECT_EQ(c->profiles.at("q").fail_on, FailOn::warning);
    EXPECT_EQ(c->profiles.at("web").fail_on, FailOn::warning);
}

TEST_F(ConfigTest, CustomProfileProblemsNameTheKey) {
    EXPECT_NE(error_of(kSpool + "[profiles.web]\n[[profiles.web.variant]]\nname = \"v\"\n")
                  .find("\"web\" is a built-in profile"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\n[[profiles.p.variant]]\nname = \"v\"\n"
                                "formats = [\"tiff\"]\n")
                  .find("[[profiles.p.variant]] #1 formats: expected \"source\", \"jpeg\", "
                        "\"png\", \"webp\", \"avif\" or \"gif\", got \"tiff\""),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\n[[profiles.p.variant]]\nname = \"v\"\n"
                                "fit = \"fill\"\n")
                  .find("[[profiles.p.variant]] #1 fit"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\n[[profiles.p.variant]]\nname = \"v\"\n"
                                "quality = 0\n")
                  .find("[[profiles.p.variant]] #1 quality: expected an integer 1..100, got 0"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\nkeep_metadata = false\n")
                  .find("[profiles.p] variant: missing (required)"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\nfail_on = \"none\"\n[[profiles.p.variant]]\n"
                                "name = \"v\"\n")
                  .find("[profiles.p] fail_on: expected \"truncated\", \"error\" or \"warning\", "
                        "got \"none\""),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\nfail_on = true\n[[profiles.p.variant]]\n"
                                "name = \"v\"\n")
                  .find("[profiles.p] fail_on: expected a string, got true"),
              std::string::npos);
    // Caught by validate_profile: a box needs both sides.
    EXPECT_NE(error_of(kSpool + "[profiles.p]\n[[profiles.p.variant]]\nname = \"v\"\nwidth = 10\n")
                  .find("[profiles.p]: "),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[profiles.p]\n[[profiles.p.variant]]\nname = \"v\"\n"
                                "[[profiles.p.variant]]\nname = \"v\"\n")
                  .find("[profiles.p]: "),
              std::string::npos);
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
    setenv("S3_BUCKET", "env-bucket", 1);
    setenv("AWS_REGION", "ap-south-1", 1);
    setenv("S3_ENDPOINT", "http://127.0.0.1:9000/", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIAAWSKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "aws-secret", 1);
    setenv("AWS_SESSION_TOKEN", "tok", 1);
    setenv("CDN_URL", "https://cdn.example.com/", 1);
    setenv("ENABLE_METRICS", "1", 1);
    setenv("METRICS_PORT", "9300", 1);
    setenv("METRICS_BIND", "0.0.0.0", 1);
    Result<Config> c = parse(kS3);
    ASSERT_TRUE(c.ok()) << c.error().message();
    const S3Config& s3 = c->store.s3;
    EXPECT_EQ(s3.bucket, "env-bucket");
    EXPECT_EQ(s3.region, "ap-south-1");
    EXPECT_EQ(s3.endpoint, "http://127.0.0.1:9000");
    EXPECT_EQ(s3.access_key_id, "AKIAAWSKEY");
    EXPECT_EQ(s3.secret_access_key, "aws-secret");
    EXPECT_EQ(s3.session_token, "tok");
    EXPECT_EQ(c->store.public_base_url, "https://cdn.example.com");
    EXPECT_TRUE(c->metrics.enabled);
    EXPECT_EQ(c->metrics.port, 9300);
    EXPECT_EQ(c->metrics.bind, "0.0.0.0");

    // S3_* wins over AWS_*.
    setenv("S3_REGION", "eu-north-1", 1);
    setenv("S3_ACCESS_KEY_ID", "AKIAS3KEY", 1);
    setenv("S3_SECRET_ACCESS_KEY", "s3-secret", 1);
    setenv("ENABLE_METRICS", "false", 1);
    c = parse(kS3 + "[metrics]\nenabled = true\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->store.s3.region, "eu-north-1");
    EXPECT_EQ(c->store.s3.access_key_id, "AKIAS3KEY");
    EXPECT_EQ(c->store.s3.secret_access_key, "s3-secret");
    EXPECT_FALSE(c->metrics.enabled);
}

TEST_F(ConfigTest, EnvironmentCompletesAnS3StoreAndEmptyMeansUnset) {
    std::string s3_without_credentials = kSpool + "[store]\nkind = \"s3\"\n";
    EXPECT_NE(error_of(s3_without_credentials).find("[store] bucket"), std::string::npos);
    setenv("S3_BUCKET", "b", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIAX", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    EXPECT_TRUE(parse(s3_without_credentials).ok());
    setenv("S3_BUCKET", "", 1);
    EXPECT_NE(error_of(s3_without_credentials).find("[store] bucket"), std::string::npos);
}

TEST_F(ConfigTest, BadEnvironmentValuesNameTheVariable) {
    setenv("METRICS_PORT", "http", 1);
    EXPECT_NE(error_of(kSpool).find("environment variable METRICS_PORT: expected a port 1..65535"),
              std::string::npos);
    setenv("METRICS_PORT", "0", 1);
    EXPECT_NE(error_of(kSpool).find("METRICS_PORT"), std::string::npos);
    setenv("METRICS_PORT", "123456", 1);
    EXPECT_NE(error_of(kSpool).find("METRICS_PORT"), std::string::npos);
    unsetenv("METRICS_PORT");
    setenv("ENABLE_METRICS", "yes", 1);
    EXPECT_NE(error_of(kSpool).find("environment variable ENABLE_METRICS"), std::string::npos);
    unsetenv("ENABLE_METRICS");
    setenv("CDN_URL", "cdn.example.com", 1);
    EXPECT_NE(error_of(kSpool).find("environment variable CDN_URL"), std::string::npos);
}

TEST_F(ConfigTest, DescribeNeverShowsSecrets) {
    setenv("AWS_SESSION_TOKEN", "session-token-value", 1);
    Result<Config> c = parse(kS3);
    ASSERT_TRUE(c.ok()) << c.error().message();
    std::string text = describe_config(*c);
    EXPECT_EQ(text.find("file-secret-xyz"), std::string::npos) << text;
    EXPECT_EQ(text.find("session-token-value"), std::string::npos) << text;
    EXPECT_EQ(text.find("AKIAFILEKEY123"), std::string::npos) << text;
    EXPECT_NE(text.find("access_key_id = \"AKIA****\""), std::string::npos) << text;
    EXPECT_NE(text.find("secret_access_key = \"****\""), std::string::npos) << text;
    EXPECT_NE(text.find("session_token = \"****\""), std::string::npos) << text;
}

const std::string kFetchS3 =
    "[fetch.s3]\nregion = \"eu-west-3\"\nendpoint = \"http://127.0.0.1:9100/\"\n"
    "access_key_id = \"AKIAFETCHKEY99\"\nsecret_access_key = \"fetch-secret-abc\"\n";

TEST_F(ConfigTest, ReadsFetchAndHttpKeys) {
    Result<Config> c =
        parse(kSpool + "[[spool]]\nname = \"uploads\"\nroot = \"/srv/u\"\n" +
              "[fetch]\nallow_hosts = [\"127.0.0.1\", \"10.0.0.0/8\", \"origin.test\"]\n"
              "max_redirects = 0\nconnect_timeout_s = 3\ntimeout_s = 3\n" +
              kFetchS3 +
              "max_attempts = 2\nconnect_timeout_ms = 50\nrequest_timeout_ms = 900\n"
              "max_connections = 4\nretry_base_delay_ms = 10\nretry_max_delay_ms = 20\n"
              "session_token = \"st\"\n"
              "[http]\nenabled = true\nbind = \"::1\"\nport = 8181\nspool = \"uploads\"\n"
              "token = \"tok-123\"\nmax_connections = 1024\nidle_timeout_s = 1\n"
              "request_timeout_s = 3600\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    const FetchConfig& f = c->fetch;
    EXPECT_EQ(f.allow_hosts, (std::vector<std::string>{"127.0.0.1", "10.0.0.0/8", "origin.test"}));
    EXPECT_EQ(f.max_redirects, 0);
    EXPECT_EQ(f.connect_timeout_s, 3);
    EXPECT_EQ(f.timeout_s, 3);
    EXPECT_TRUE(f.s3_set);
    EXPECT_EQ(f.s3.bucket, "");
    EXPECT_EQ(f.s3.region, "eu-west-3");
    EXPECT_EQ(f.s3.endpoint, "http://127.0.0.1:9100");
    EXPECT_EQ(f.s3.access_key_id, "AKIAFETCHKEY99");
    EXPECT_EQ(f.s3.secret_access_key, "fetch-secret-abc");
    EXPECT_EQ(f.s3.session_token, "st");
    EXPECT_EQ(f.s3.max_attempts, 2);
    EXPECT_EQ(f.s3.connect_timeout_ms, 50);
    EXPECT_EQ(f.s3.request_timeout_ms, 900);
    EXPECT_EQ(f.s3.max_connections, 4);
    EXPECT_EQ(f.s3.retry_base_delay_ms, 10);
    EXPECT_EQ(f.s3.retry_max_delay_ms, 20);
    // The store's S3 settings are not touched by [fetch.s3].
    EXPECT_EQ(c->store.s3.region, "us-east-1");
    EXPECT_EQ(c->store.s3.access_key_id, "");
    const HttpSettings& h = c->http;
    EXPECT_TRUE(h.enabled);
    EXPECT_EQ(h.bind, "::1");
    EXPECT_EQ(h.port, 8181);
    EXPECT_EQ(h.spool, "uploads");
    EXPECT_EQ(h.token, "tok-123");
    EXPECT_EQ(h.max_connections, 1024);
    EXPECT_EQ(h.idle_timeout_s, 1);
    EXPECT_EQ(h.request_timeout_s, 3600);
}

TEST_F(ConfigTest, FetchRangesNameTheKeyValueAndLine) {
    EXPECT_EQ(error_of(kSpool + "[fetch]\nmax_redirects = 21\n"),
              "config: test.toml: [fetch] max_redirects: expected an integer 0..20, got 21 "
              "(line 5)");
    EXPECT_NE(error_of(kSpool + "[fetch]\nmax_redirects = -1\n")
                  .find("[fetch] max_redirects: expected an integer 0..20, got -1"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\nconnect_timeout_s = 0\n")
                  .find("[fetch] connect_timeout_s: expected an integer 1..300, got 0 (line 5)"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\nconnect_timeout_s = 301\ntimeout_s = 600\n")
                  .find("[fetch] connect_timeout_s: expected an integer 1..300, got 301"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\ntimeout_s = 0\n")
                  .find("[fetch] timeout_s: expected an integer 1..600, got 0"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\ntimeout_s = 601\n")
                  .find("[fetch] timeout_s: expected an integer 1..600, got 601"),
              std::string::npos);
    EXPECT_EQ(error_of(kSpool + "[fetch]\ntimeout_s = 5\nconnect_timeout_s = 6\n"),
              "config: test.toml: [fetch] connect_timeout_s: 6 is larger than timeout_s 5 "
              "(line 6)");
    // The default connect timeout (10 s) is checked against a shorter total too.
    EXPECT_NE(error_of(kSpool + "[fetch]\ntimeout_s = 9\n")
                  .find("[fetch] connect_timeout_s: 10 is larger than timeout_s 9"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\nallow_hosts = \"10.0.0.1\"\n")
                  .find("[fetch] allow_hosts: expected an array of strings, got \"10.0.0.1\""),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\nallow_hosts = [\"a\", 3]\n")
                  .find("[fetch] allow_hosts: expected an array of strings, got an element 3"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\nallow_hosts = [\"10.0.0.0/33\"]\n")
                  .find("[fetch] allow_hosts: \"10.0.0.0/33\" is not a host name"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\nallow_hosts = [\"a\", \"\"]\n")
                  .find("[fetch] allow_hosts: expected host names, IP addresses or CIDR ranges"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch]\nmax_redirect = 3\n")
                  .find("[fetch] key \"max_redirect\": unknown key (line 5)"),
              std::string::npos);
    // The bounds themselves are accepted.
    EXPECT_TRUE(parse(kSpool + "[fetch]\nmax_redirects = 20\nconnect_timeout_s = 300\n"
                               "timeout_s = 600\n")
                    .ok());
    EXPECT_TRUE(parse(kSpool + "[fetch]\nconnect_timeout_s = 1\ntimeout_s = 1\n").ok());
}

TEST_F(ConfigTest, FetchS3IsReadAndCheckedWithoutABucket) {
    EXPECT_EQ(error_of(kSpool + kFetchS3 + "bucket = \"b\"\n"),
              "config: test.toml: [fetch.s3] bucket: not used here: each s3:// source names its "
              "bucket (line 9)");
    EXPECT_NE(error_of(kSpool + kFetchS3 + "multipart_threshold_mb = 8\n")
                  .find("[fetch.s3] key \"multipart_threshold_mb\": unknown key (line 9)"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + kFetchS3 + "max_attempts = 0\n")
                  .find("[fetch.s3] max_attempts: expected an integer 1..20, got 0 (line 9)"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch.s3]\nendpoint = \"minio:9000\"\n")
                  .find("[fetch.s3] endpoint: expected an http:// or https:// URL"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch.s3]\nregion = \"eu-west-1\"\n")
                  .find("[fetch.s3] access_key_id: reading s3:// sources needs it (in the file "
                        "or as FETCH_S3_ACCESS_KEY_ID in the environment)"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch.s3]\naccess_key_id = \"AKIAX\"\n")
                  .find("[fetch.s3] secret_access_key: reading s3:// sources needs it"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[fetch.s3]\nregion = \"\"\naccess_key_id = \"AKIAX\"\n"
                                "secret_access_key = \"s\"\n")
                  .find("[fetch.s3] region: reading s3:// sources needs it (in the file)"),
              std::string::npos);
    // A problem in [fetch] itself is reported before one in [fetch.s3].
    EXPECT_NE(error_of(kSpool + "[fetch]\ntimeout_s = 0\n[fetch.s3]\nbucket = \"b\"\n")
                  .find("[fetch] timeout_s"),
              std::string::npos);
    // The S3 client's own checks run too, on a copy with a stand-in bucket.
    EXPECT_NE(error_of(kSpool + "[fetch.s3]\nregion = \"EU West\"\naccess_key_id = \"AKIAX\"\n"
                                "secret_access_key = \"s\"\n")
                  .find("[fetch.s3]: S3 region \"EU West\" is invalid"),
              std::string::npos);
    // An S3 store does not need [fetch.s3], nor [fetch.s3] an S3 store.
    Result<Config> store_only = parse(kS3);
    ASSERT_TRUE(store_only.ok()) << store_only.error().message();
    EXPECT_FALSE(store_only->fetch.s3_set);
    Result<Config> fetch_only = parse(kSpool + kFetchS3);
    ASSERT_TRUE(fetch_only.ok()) << fetch_only.error().message();
    EXPECT_TRUE(fetch_only->fetch.s3_set);
    EXPECT_EQ(fetch_only->store.kind, "local");
}

TEST_F(ConfigTest, HttpRangesNameTheKeyValueAndLine) {
    EXPECT_EQ(error_of(kSpool + "[http]\nport = 0\n"),
              "config: test.toml: [http] port: expected an integer 1..65535, got 0 (line 5)");
    EXPECT_NE(error_of(kSpool + "[http]\nport = 65536\n")
                  .find("[http] port: expected an integer 1..65535, got 65536"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[http]\nmax_connections = 0\n")
                  .find("[http] max_connections: expected an integer 1..1024, got 0"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[http]\nmax_connections = 1025\n")
                  .find("[http] max_connections: expected an integer 1..1024, got 1025"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[http]\nidle_timeout_s = 0\n")
                  .find("[http] idle_timeout_s: expected an integer 1..3600, got 0"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[http]\nrequest_timeout_s = 3601\n")
                  .find("[http] request_timeout_s: expected an integer 1..3600, got 3601"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[http]\nenabled = \"yes\"\n")
                  .find("[http] enabled: expected true or false, got \"yes\" (line 5)"),
              std::string::npos);
    EXPECT_NE(
        error_of(kSpool + "[http]\ntoken = 42\n").find("[http] token: expected a string, got 42"),
        std::string::npos);
    EXPECT_EQ(error_of(kSpool + "[http]\nbind = \"\"\n"),
              "config: test.toml: [http] bind: expected an IPv4 or IPv6 address such as "
              "\"127.0.0.1\" or \"::1\", got \"\" (line 5)");
    EXPECT_NE(error_of(kSpool + "[http]\nbind = \"localhost\"\n")
                  .find("[http] bind: expected an IPv4 or IPv6 address"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[http]\nbind = \"[::1]\"\n").find("[http] bind"),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[http]\nenable = true\n")
                  .find("[http] key \"enable\": unknown key (line 5)"),
              std::string::npos);
    // A bearer token travels in a header: printable ASCII, no spaces; never echoed.
    const std::string bad_token = error_of(kSpool + "[http]\ntoken = \"two words\"\n");
    EXPECT_NE(bad_token.find("[http] token: only printable ASCII without spaces"),
              std::string::npos)
        << bad_token;
    EXPECT_EQ(bad_token.find("two words"), std::string::npos) << bad_token;
    setenv("IMGSPOOL_HTTP_TOKEN", "tab\there", 1);
    EXPECT_NE(error_of(kSpool).find("[http] token: only printable ASCII"), std::string::npos);
    unsetenv("IMGSPOOL_HTTP_TOKEN");
    EXPECT_TRUE(parse(kSpool + "[http]\ntoken = \"A-z_0.9~+/=#!\"\n").ok());
    EXPECT_TRUE(parse(kSpool + "[http]\nbind = \"0.0.0.0\"\nport = 1\n").ok());
    EXPECT_TRUE(parse(kSpool + "[http]\nbind = \"::\"\nport = 65535\n").ok());
}

TEST_F(ConfigTest, HttpSpoolMustNameASpool) {
    const std::string two = kSpool + "[[spool]]\nname = \"b\"\nroot = \"/srv/b\"\n";
    Result<Config> c = parse(two + "[http]\nspool = \"b\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->http.spool, "b");
    c = parse(two + "[http]\nspool = \"\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->http.spool, "a");
    EXPECT_EQ(error_of(two + "[http]\nenabled = true\nspool = \"c\"\n"),
              "config: test.toml: [http] spool: unknown spool \"c\" (known: a, b)");
    // A typo is an error even while the server is off: enabling it later would fail.
    EXPECT_NE(error_of(two + "[http]\nspool = \"A\"\n").find("[http] spool: unknown spool \"A\""),
              std::string::npos);
}

TEST_F(ConfigTest, HttpPortMustDifferFromTheMetricsPortOnTheSameAddress) {
    const std::string clash =
        kSpool + "[metrics]\nenabled = true\nport = 9300\n[http]\nenabled = true\nport = 9300\n";
    EXPECT_EQ(error_of(clash),
              "config: test.toml: [http] port: 9300 is also [metrics] port on \"127.0.0.1\"; "
              "give the two servers different ports");
    // A wildcard takes the port on every address.
    EXPECT_NE(error_of(kSpool + "[metrics]\nenabled = true\nport = 9300\nbind = \"0.0.0.0\"\n"
                                "[http]\nenabled = true\nport = 9300\n")
                  .find("[http] port: 9300 is also [metrics] port on \"0.0.0.0\""),
              std::string::npos);
    EXPECT_NE(error_of(kSpool + "[metrics]\nenabled = true\nport = 9300\nbind = \"::1\"\n"
                                "[http]\nenabled = true\nport = 9300\nbind = \"0:0::1\"\n")
                  .find("[http] port: 9300"),
              std::string::npos);
    // The environment's metrics port counts, as it is the one served.
    setenv("METRICS_PORT", "8080", 1);
    EXPECT_NE(error_of(kSpool + "[metrics]\nenabled = true\n[http]\nenabled = true\n")
                  .find("[http] port: 8080 is also [metrics] port"),
              std::string::npos);
    unsetenv("METRICS_PORT");
    // No clash: one server off, other ports, or other addresses.
    EXPECT_TRUE(
        parse(kSpool + "[metrics]\nport = 9300\n[http]\nenabled = true\nport = 9300\n").ok());
    EXPECT_TRUE(
        parse(kSpool + "[metrics]\nenabled = true\nport = 9300\n[http]\nport = 9300\n").ok());
    EXPECT_TRUE(parse(kSpool + "[metrics]\nenabled = true\n[http]\nenabled = true\n").ok());
    EXPECT_TRUE(parse(kSpool + "[metrics]\nenabled = true\nport = 9300\n[http]\nenabled = true\n"
                               "port = 9300\nbind = \"127.0.0.2\"\n")
                    .ok());
}

TEST_F(ConfigTest, EnvironmentGivesTheHttpTokenAndFetchS3) {
    setenv("IMGSPOOL_HTTP_TOKEN", "env-token", 1);
    setenv("FETCH_S3_ACCESS_KEY_ID", "AKIAENVFETCH", 1);
    setenv("FETCH_S3_SECRET_ACCESS_KEY", "env-fetch-secret", 1);
    setenv("FETCH_S3_SESSION_TOKEN", "env-session", 1);
    setenv("FETCH_S3_ENDPOINT", "http://127.0.0.1:9200/", 1);
    Result<Config> c = parse(kSpool + "[http]\ntoken = \"file-token\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->http.token, "env-token");
    EXPECT_TRUE(c->fetch.s3_set);  // no [fetch.s3] table: the variables make one
    EXPECT_EQ(c->fetch.s3.access_key_id, "AKIAENVFETCH");
    EXPECT_EQ(c->fetch.s3.secret_access_key, "env-fetch-secret");
    EXPECT_EQ(c->fetch.s3.session_token, "env-session");
    EXPECT_EQ(c->fetch.s3.endpoint, "http://127.0.0.1:9200");
    EXPECT_EQ(c->fetch.s3.region, "us-east-1");
    // They override [fetch.s3] and leave the store alone.
    c = parse(kS3 + kFetchS3);
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->fetch.s3.access_key_id, "AKIAENVFETCH");
    EXPECT_EQ(c->fetch.s3.endpoint, "http://127.0.0.1:9200");
    EXPECT_EQ(c->fetch.s3.region, "eu-west-3");
    EXPECT_EQ(c->store.s3.access_key_id, "AKIAFILEKEY123");
    EXPECT_EQ(c->store.s3.endpoint, "");

    // The store's variables do not reach [fetch.s3], and an empty variable is unset.
    for (const char* name : {"FETCH_S3_ACCESS_KEY_ID", "FETCH_S3_SECRET_ACCESS_KEY",
                             "FETCH_S3_SESSION_TOKEN", "FETCH_S3_ENDPOINT"}) {
        setenv(name, "", 1);
    }
    setenv("IMGSPOOL_HTTP_TOKEN", "", 1);
    setenv("S3_ACCESS_KEY_ID", "AKIASTORE", 1);
    c = parse(kSpool + "[http]\ntoken = \"file-token\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_FALSE(c->fetch.s3_set);
    EXPECT_EQ(c->fetch.s3.access_key_id, "");
    EXPECT_EQ(c->http.token, "file-token");

    // One variable alone makes [fetch.s3] given, and so checked.
    setenv("FETCH_S3_ENDPOINT", "http://127.0.0.1:9200", 1);
    EXPECT_NE(error_of(kSpool).find("[fetch.s3] access_key_id: reading s3:// sources needs it"),
              std::string::npos);
    setenv("FETCH_S3_ENDPOINT", "minio:9000", 1);
    EXPECT_NE(error_of(kSpool).find(
                  "environment variable FETCH_S3_ENDPOINT: expected an http:// or https:// URL"),
              std::string::npos);
}

TEST_F(ConfigTest, DescribeMasksTheHttpTokenAndFetchS3Secrets) {
    Result<Config> c = parse(kSpool + kFetchS3 + "session_token = \"fetch-session-zzz\"\n" +
                             "[http]\nenabled = true\ntoken = \"http-token-value\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    std::string text = describe_config(*c);
    EXPECT_EQ(text.find("http-token-value"), std::string::npos) << text;
    EXPECT_EQ(text.find("fetch-secret-abc"), std::string::npos) << text;
    EXPECT_EQ(text.find("fetch-session-zzz"), std::string::npos) << text;
    EXPECT_EQ(text.find("AKIAFETCHKEY99"), std::string::npos) << text;
    EXPECT_NE(text.find("\n[http]\nenabled = true\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\ntoken = \"****\"\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\n[fetch.s3]\nregion = \"eu-west-3\"\n"), std::string::npos) << text;
    EXPECT_NE(text.find("access_key_id = \"AKIA****\""), std::string::npos) << text;
    EXPECT_NE(text.find("secret_access_key = \"****\""), std::string::npos) << text;
    EXPECT_NE(text.find("session_token = \"****\""), std::string::npos) << text;

    // No token: shown empty, not masked (so "no auth" is visible).
    Result<Config> open = parse(kSpool);
    ASSERT_TRUE(open.ok()) << open.error().message();
    std::string open_text = describe_config(*open);
    EXPECT_NE(open_text.find("\ntoken = \"\"\n"), std::string::npos) << open_text;
    EXPECT_NE(open_text.find("# no [fetch.s3] and no S3 store"), std::string::npos) << open_text;
    Result<Config> s3_store = parse(kS3);
    ASSERT_TRUE(s3_store.ok()) << s3_store.error().message();
    EXPECT_NE(describe_config(*s3_store).find(
                  "# no [fetch.s3]: s3:// sources are read with the [store] S3 settings"),
              std::string::npos);
}

TEST_F(ConfigTest, DescribeOfFetchAndHttpParsesBack) {
    Result<Config> c =
        parse(kSpool + "[[spool]]\nname = \"u\"\nroot = \"/srv/u\"\n" +
              "[fetch]\nallow_hosts = [\"127.0.0.1\", \"::1\", \".corp.example\", \"fd00::/8\"]\n"
              "max_redirects = 2\nconnect_timeout_s = 4\ntimeout_s = 44\n" +
              kFetchS3 + "max_attempts = 7\nretry_max_delay_ms = 900\n" +
              "[http]\nenabled = true\nbind = \"::\"\nport = 8088\nspool = \"u\"\ntoken = \"t\"\n"
              "max_connections = 5\nidle_timeout_s = 6\nrequest_timeout_s = 7\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    std::string text = describe_config(*c);
    Result<Config> back = parse(text);
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << text;
    const FetchConfig &f = c->fetch, &g = back->fetch;
    EXPECT_EQ(f.allow_hosts, g.allow_hosts);
    EXPECT_EQ(f.max_redirects, g.max_redirects);
    EXPECT_EQ(f.connect_timeout_s, g.connect_timeout_s);
    EXPECT_EQ(f.timeout_s, g.timeout_s);
    EXPECT_TRUE(g.s3_set);
    EXPECT_EQ(f.s3.region, g.s3.region);
    EXPECT_EQ(f.s3.endpoint, g.s3.endpoint);
    EXPECT_EQ(g.s3.access_key_id, "AKIA****");  // masked, by design
    EXPECT_EQ(g.s3.secret_access_key, "****");
    EXPECT_EQ(f.s3.max_attempts, g.s3.max_attempts);
    EXPECT_EQ(f.s3.retry_max_delay_ms, g.s3.retry_max_delay_ms);
    EXPECT_EQ(f.s3.max_connections, g.s3.max_connections);
    const HttpSettings &h = c->http, &i = back->http;
    EXPECT_EQ(h.enabled, i.enabled);
    EXPECT_EQ(h.bind, i.bind);
    EXPECT_EQ(h.port, i.port);
    EXPECT_EQ(h.spool, i.spool);
    EXPECT_EQ(i.token, "****");
    EXPECT_EQ(h.max_connections, i.max_connections);
    EXPECT_EQ(h.idle_timeout_s, i.idle_timeout_s);
    EXPECT_EQ(h.request_timeout_s, i.request_timeout_s);
}

void expect_same_profile(const Profile& a, const Profile& b) {
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.keep_metadata, b.keep_metadata);
    EXPECT_EQ(a.jpeg_progressive, b.jpeg_progressive);
    EXPECT_EQ(a.png_compression, b.png_compression);
    EXPECT_EQ(a.fail_on, b.fail_on);
    EXPECT_EQ(a.placeholders, b.placeholders);
    ASSERT_EQ(a.variants.size(), b.variants.size());
    for (std::size_t i = 0; i < a.variants.size(); ++i) {
        const Variant& x = a.variants[i];
        const Variant& y = b.variants[i];
        EXPECT_EQ(x.name, y.name);
        EXPECT_EQ(x.width, y.width);
        EXPECT_EQ(x.height, y.height);
        EXPECT_EQ(x.fit, y.fit);
        EXPECT_EQ(x.enlarge, y.enlarge);
        ASSERT_EQ(x.outputs.size(), y.outputs.size());
        for (std::size_t j = 0; j < x.outputs.size(); ++j) {
            EXPECT_EQ(x.outputs[j].format, y.outputs[j].format);
            EXPECT_EQ(x.outputs[j].quality, y.outputs[j].quality);
        }
    }
    EXPECT_EQ(a.fingerprint(), b.fingerprint());
}

TEST_F(ConfigTest, DescribeParsesBackToTheSameConfig) {
    Result<Config> c = parse(
        "[daemon]\nstate_dir = \"/var/lib/x\"\nworkers = 4\nsettle_ms = 10\nrescan_s = 9\n"
        "queue_max = 3\n"
        "[[spool]]\nname = \"a\"\nroot = \"/srv/a\"\nprofile = \"thumbs\"\n"
        "[[spool]]\nname = \"b-2\"\nprofile = \"sora\"\nwatch = \"poll\"\npoll_s = 7\n"
        "root = \"/srv/\\\"quoted\\\" dir\\\\with a very long name that goes past eighty "
        "columns\"\n"
        "[store]\nkind = \"s3\"\nbucket = \"bk\"\nregion = \"eu-west-1\"\n"
        "endpoint = \"http://127.0.0.1:9000\"\naccess_key_id = \"AKIAFILEKEY123\"\n"
        "secret_access_key = \"sec\"\npublic_base_url = \"https://cdn.example.com\"\n"
        "key_template = \"{profile}/{upload_id}/{variant}.{ext}\"\nmultipart_threshold_mb = 64\n"
        "multipart_part_size_mb = 16\nmax_attempts = 3\nconnect_timeout_ms = 100\n"
        "request_timeout_ms = 200\nparallel_uploads = 2\nmax_connections = 9\n"
        "retry_base_delay_ms = 7\n"
        "retry_max_delay_ms = 70\n"
        "[limits]\nmax_bytes = 99999\nmin_width = 1\nmin_height = 2\nmax_width = 300\n"
        "max_height = 400\nmax_pixels = 120000\n"
        "[metrics]\nenabled = true\nbind = \"::1\"\nport = 9999\n"
        "[profiles.thumbs]\nkeep_metadata = true\npng_compression = 3\nfail_on = \"error\"\n"
        "[[profiles.thumbs.variant]]\nname = \"s\"\nwidth = 64\nheight = 48\nfit = \"cover\"\n"
        "formats = [\"jpg\", \"webp\", \"source\"]\nquality = 61\n"
        "[[profiles.thumbs.variant]]\nname = \"o\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    std::string text = describe_config(*c);
    EXPECT_EQ(text.find("\"\"\""), std::string::npos) << "one-line strings only:\n" << text;
    Result<Config> back = parse(text);
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << text;
    const Config& x = *c;
    const Config& y = *back;
    EXPECT_EQ(x.daemon.state_dir, y.daemon.state_dir);
    EXPECT_EQ(x.daemon.workers, y.daemon.workers);
    EXPECT_EQ(x.daemon.settle_ms, y.daemon.settle_ms);
    EXPECT_EQ(x.daemon.rescan_s, y.daemon.rescan_s);
    EXPECT_EQ(x.daemon.queue_max, y.daemon.queue_max);
    ASSERT_EQ(x.spools.size(), y.spools.size());
    for (std::size_t i = 0; i < x.spools.size(); ++i) {
        EXPECT_EQ(x.spools[i].name, y.spools[i].name);
        EXPECT_EQ(x.spools[i].root, y.spools[i].root);
        EXPECT_EQ(x.spools[i].profile, y.spools[i].profile);
        EXPECT_EQ(x.spools[i].watch, y.spools[i].watch);
        EXPECT_EQ(x.spools[i].poll, y.spools[i].poll);
    }
    EXPECT_EQ(y.spools[1].watch, WatchMode::poll);
    EXPECT_EQ(y.spools[1].poll, std::chrono::seconds(7));
    EXPECT_EQ(x.store.kind, y.store.kind);
    EXPECT_EQ(x.store.path, y.store.path);
    EXPECT_EQ(x.store.public_base_url, y.store.public_base_url);
    EXPECT_EQ(x.store.key_template, y.store.key_template);
    const S3Config& s = x.store.s3;
    const S3Config& t = y.store.s3;
    EXPECT_EQ(s.bucket, t.bucket);
    EXPECT_EQ(s.region, t.region);
    EXPECT_EQ(s.endpoint, t.endpoint);
    EXPECT_EQ(t.access_key_id, "AKIA****");  // masked, by design
    EXPECT_EQ(t.secret_access_key, "****");
    EXPECT_EQ(t.session_token, "");
    EXPECT_EQ(s.multipart_threshold, t.multipart_threshold);
    EXPECT_EQ(s.multipart_part_size, t.multipart_part_size);
    EXPECT_EQ(s.max_attempts, t.max_attempts);
    EXPECT_EQ(s.connect_timeout_ms, t.connect_timeout_ms);
    EXPECT_EQ(s.request_timeout_ms, t.request_timeout_ms);
    EXPECT_EQ(s.parallel_uploads, t.parallel_uploads);
    EXPECT_EQ(s.max_connections, 9);
    EXPECT_EQ(s.max_connections, t.max_connections);
    EXPECT_EQ(s.retry_base_delay_ms, 7);
    EXPECT_EQ(s.retry_base_delay_ms, t.retry_base_delay_ms);
    EXPECT_EQ(s.retry_max_delay_ms, t.retry_max_delay_ms);
    EXPECT_EQ(x.limits.max_bytes, y.limits.max_bytes);
    EXPECT_EQ(x.limits.min_width, y.limits.min_width);
    EXPECT_EQ(x.limits.min_height, y.limits.min_height);
    EXPECT_EQ(x.limits.max_width, y.limits.max_width);
    EXPECT_EQ(x.limits.max_height, y.limits.max_height);
    EXPECT_EQ(x.limits.max_pixels, y.limits.max_pixels);
    EXPECT_EQ(x.metrics.enabled, y.metrics.enabled);
    EXPECT_EQ(x.metrics.bind, y.metrics.bind);
    EXPECT_EQ(x.metrics.port, y.metrics.port);
    ASSERT_EQ(x.profiles.size(), y.profiles.size());
    for (const auto& [name, profile] : x.profiles) {
        ASSERT_EQ(y.profiles.count(name), 1u) << name;
        expect_same_profile(profile, y.profiles.at(name));
    }
}

TEST_F(ConfigTest, DescribeOfTheLocalExampleParsesBack) {
    Result<Config> c = load_config(fs::path(IMGSPOOL_SOURCE_DIR) / "imgspool.example.toml");
    ASSERT_TRUE(c.ok()) << c.error().message();
    std::string text = describe_config(*c);
    Result<Config> back = parse(text);
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << text;
    EXPECT_EQ(back->spools[0].root, c->spools[0].root);
    EXPECT_EQ(back->store.path, c->store.path);
    EXPECT_EQ(text.find("bucket"), std::string::npos) << "S3 keys only for kind = \"s3\"";
}

// Configurations with a watermark overlay: real image files in a folder of their own.
class WatermarkConfigTest : public ConfigTest {
  protected:
    void SetUp() override {
        ConfigTest::SetUp();
        ASSERT_TRUE(init_vips("config_test").ok());
        dir_ = fs::temp_directory_path() / ("config_test_wm." + std::to_string(::getpid()));
        fs::create_directories(dir_);
        mark_ = dir_ / "mark.png";
        write_png(mark_, 40, 20);
    }
    void TearDown() override {
        fs::remove_all(dir_);
        ConfigTest::TearDown();
    }

    // A w x h grey PNG without alpha.
    static void write_png(const fs::path& path, int w, int h) {
        VipsImage* black = nullptr;
        ASSERT_EQ(vips_black(&black, w, h, nullptr), 0) << vips_error_buffer();
        const int rc = vips_pngsave(black, path.c_str(), nullptr);
        g_object_unref(black);
        ASSERT_EQ(rc, 0) << vips_error_buffer();
    }

    // A profile "p" whose one variant has `watermark = {table}`.
    static std::string with_watermark(const std::string& table) {
        return "[[spool]]\nname = \"a\"\nroot = \"/srv/a\"\nprofile = \"p\"\n[profiles.p]\n"
               "[[profiles.p.variant]]\nname = \"large\"\nwidth = 800\nheight = 800\n"
               "watermark = " +
               table + "\n";
    }

    std::string mark_table(const std::string& more) const {
        return "{ image = " + toml_quote(mark_.string()) + more + " }";
    }

    static std::string toml_quote(const std::string& s) { return "\"" + s + "\""; }

    fs::path dir_;
    fs::path mark_;
};

TEST_F(WatermarkConfigTest, ReadsEveryKeyAndLoadsTheImageOnce) {
    Result<Config> c =
        parse(with_watermark(mark_table(", gravity = \"north-west\", margin = 4, opacity = 0.25, "
                                        "min_width = 300")));
    ASSERT_TRUE(c.ok()) << c.error().message();
    const Variant& v = c->profiles.at("p").variants.at(0);
    ASSERT_TRUE(v.watermark);
    EXPECT_EQ(v.watermark->image, mark_);
    EXPECT_EQ(v.watermark->gravity, Gravity::north_west);
    EXPECT_EQ(v.watermark->margin, 4);
    EXPECT_EQ(v.watermark->opacity, 0.25);
    EXPECT_EQ(v.watermark->min_width, 300);
    EXPECT_TRUE(v.watermark->overlay);
    EXPECT_EQ(v.watermark->overlay_sha256.size(), 64u);

    // Defaults; opacity 1 may be written as an integer.
    c = parse(with_watermark(mark_table(", opacity = 1")));
    ASSERT_TRUE(c.ok()) << c.error().message();
    const Watermark& w = *c->profiles.at("p").variants.at(0).watermark;
    EXPECT_EQ(w.gravity, Gravity::south_east);
    EXPECT_EQ(w.margin, 16);
    EXPECT_EQ(w.opacity, 1.0);
    EXPECT_EQ(w.min_width, 0);

    // No watermark key: none.
    c = parse(kSpool + "[profiles.p]\n[[profiles.p.variant]]\nname = \"v\"\n");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_FALSE(c->profiles.at("p").variants.at(0).watermark);
}

TEST_F(WatermarkConfigTest, ARelativeImageIsTakenFromTheConfigurationFilesFolder) {
    fs::create_directories(dir_ / "marks");
    write_png(dir_ / "marks" / "logo.png", 10, 10);
    const fs::path file = dir_ / "imgspool.toml";
    std::ofstream(file) << with_watermark("{ image = \"marks/logo.png\" }");
    Result<Config> c = load_config(file);
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->profiles.at("p").variants.at(0).watermark->image, dir_ / "marks" / "logo.png");
}

TEST_F(WatermarkConfigTest, EachKeyOutOfRangeIsNamed) {
    const std::string where = "[[profiles.p.variant]] #1 \"large\" watermark ";
    const std::pair<std::string, std::string> cases[] = {
        {mark_table(", margin = -1"), "margin: expected an integer 0..100000, got -1"},
        {mark_table(", min_width = -5"), "min_width: expected an integer 0..100000, got -5"},
        {mark_table(", opacity = 1.5"), "opacity: expected a number 0.0..1.0, got 1.5"},
        {mark_table(", opacity = 0"), "opacity: expected a number above 0 and at most 1, got 0"},
        {mark_table(", opacity = \"half\""), "opacity: expected a number 0.0..1.0, got \"half\""},
        {mark_table(", gravity = \"center\""),
         "gravity: expected \"centre\", \"north\", \"south\", \"east\", \"west\", \"north-east\", "
         "\"north-west\", \"south-east\" or \"south-west\", got \"center\""},
        {mark_table(", opactiy = 0.5"), "key \"opactiy\": unknown key"},
        {"{ gravity = \"north\" }", "image: missing (required)"},
        {"{ image = \"\" }", "image: expected a non-empty path, got \"\""},
    };
    for (const auto& [table, problem] : cases) {
        const std::string message = error_of(with_watermark(table));
        EXPECT_NE(message.find(where + problem), std::string::npos) << table << "\n" << message;
        EXPECT_NE(message.find("(line 10)"), std::string::npos) << message;
    }
    EXPECT_NE(error_of(with_watermark("\"mark.png\""))
                  .find("[[profiles.p.variant]] #1 watermark: expected a table, got \"mark.png\""),
              std::string::npos);
}

TEST_F(WatermarkConfigTest, AnImageThatCannotBeUsedFailsTheLoadWithItsPathAndWhy) {
    std::ofstream(dir_ / "notes.png") << "not an image\n";
    const std::pair<fs::path, std::string> cases[] = {
        {dir_ / "missing.png", "no such file"},
        {dir_ / "notes.png", "not a PNG, WebP or JPEG file"},
        {dir_, "not a regular file"},
    };
    for (const auto& [path, why] : cases) {
        const std::string message =
            error_of(with_watermark("{ image = " + toml_quote(path.string()) + " }"));
        EXPECT_NE(message.find("[[profiles.p.variant]] #1 \"large\" watermark image: cannot use " +
                               toml_quote(path.string()) + ": " + why),
                  std::string::npos)
            << message;
    }
}

TEST_F(WatermarkConfigTest, DescribeShowsTheWatermarkAndParsesBack) {
    Result<Config> c = parse(with_watermark(
        mark_table(", gravity = \"south\", margin = 0, opacity = 0.75, min_width = 401")));
    ASSERT_TRUE(c.ok()) << c.error().message();
    const std::string text = describe_config(*c);
    EXPECT_NE(text.find("watermark = { image = " + toml_quote(mark_.string()) +
                        ", gravity = \"south\", margin = 0, opacity = 0.75, min_width = 401 }"),
              std::string::npos)
        << text;
    Result<Config> back = parse(text);
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << text;
    expect_same_profile(c->profiles.at("p"), back->profiles.at("p"));
}

}  // namespace
}  // namespace imgspool
