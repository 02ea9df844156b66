#include "daemon/config_diff.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <map>
#include <string>

namespace imgspool {
namespace {

using Names = std::vector<std::string>;

const std::string kDaemon = "[daemon]\nstate_dir = \"/var/lib/x\"\nworkers = 2\n";
const std::string kSpoolA = "[[spool]]\nname = \"a\"\nroot = \"/srv/a\"\n";
const std::string kSpoolB = "[[spool]]\nname = \"b\"\nroot = \"/srv/b\"\nprofile = \"sora\"\n";
const std::string kStore = "[store]\nkind = \"local\"\npath = \"/srv/objects\"\n";

std::string thumbs(int width) {
    return "[profiles.thumbs]\n[[profiles.thumbs.variant]]\nname = \"small\"\nwidth = " +
           std::to_string(width) + "\nheight = 200\n";
}

// The variables parse_config applies over the file are cleared for these tests, and restored.
class ConfigDiffTest : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* name : kEnvVars) {
            if (const char* v = getenv(name)) saved_[name] = v;
            unsetenv(name);
        }
    }
    void TearDown() override {
        for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
    }

    static Config parse(const std::string& text) {
        Result<Config> c = parse_config(text, "test.toml");
        EXPECT_TRUE(c.ok()) << c.error().message();
        return c.ok() ? c.value() : Config{};
    }

  private:
    static constexpr const char* kEnvVars[] = {"S3_BUCKET",
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
    std::map<std::string, std::string> saved_;
};

TEST_F(ConfigDiffTest, TheSameConfigChangesNothing) {
    const Config c = parse(kDaemon + kSpoolA + kSpoolB + kStore + thumbs(320));
    const ConfigDiff d = diff_config(c, c);
    EXPECT_TRUE(d.empty());
    EXPECT_FALSE(d.store_changed());
    EXPECT_FALSE(d.watcher_changed());
    EXPECT_FALSE(d.fetch_changed());
}

TEST_F(ConfigDiffTest, SpoolsAddedRemovedAndChangedByName) {
    const Config running = parse(kDaemon + kSpoolA + kSpoolB + kStore);
    const Config requested = parse(kDaemon + "[[spool]]\nname = \"a\"\nroot = \"/srv/a2\"\n" +
                                   "[[spool]]\nname = \"c\"\nroot = \"/srv/c\"\n" + kStore);
    const ConfigDiff d = diff_config(running, requested);
    EXPECT_EQ(d.spools_added, Names{"c"});
    EXPECT_EQ(d.spools_removed, Names{"b"});
    EXPECT_EQ(d.spools_changed, Names{"a"});
    EXPECT_TRUE(d.watcher_changed());
    EXPECT_FALSE(d.store_changed());
    EXPECT_TRUE(d.needs_restart.empty());
}

TEST_F(ConfigDiffTest, ASpoolGivenAnotherProfileIsAChangedSpool) {
    const Config running = parse(kDaemon + kSpoolA + kStore);
    const Config requested = parse(kDaemon + kSpoolA + "profile = \"dall-e\"\n" + kStore);
    const ConfigDiff d = diff_config(running, requested);
    EXPECT_EQ(d.spools_changed, Names{"a"});
    EXPECT_TRUE(d.spools_added.empty());
    EXPECT_TRUE(d.spools_removed.empty());
    // A changed spool replaces the watcher (its root may have moved): a rescan, nothing lost.
    EXPECT_TRUE(d.watcher_changed());
}

// Applied on reload: the watcher is replaced, and the new one polls (or watches) the spool.
TEST_F(ConfigDiffTest, ASpoolSwitchedToPollingOrGivenAnotherPollPeriodIsAChangedSpool) {
    const Config watched = parse(kDaemon + kSpoolA + kStore);
    const Config polled = parse(kDaemon + kSpoolA + "watch = \"poll\"\n" + kStore);
    const Config slower = parse(kDaemon + kSpoolA + "watch = \"poll\"\npoll_s = 10\n" + kStore);
    for (const auto& [running, requested] :
         {std::pair{&watched, &polled}, {&polled, &watched}, {&polled, &slower}}) {
        const ConfigDiff d = diff_config(*running, *requested);
        EXPECT_EQ(d.spools_changed, Names{"a"});
        EXPECT_TRUE(d.watcher_changed());
        EXPECT_TRUE(d.needs_restart.empty());
        EXPECT_EQ(reloadable_part(*running, *requested).spools[0].poll, requested->spools[0].poll);
    }
    EXPECT_TRUE(
        diff_config(polled, parse(kDaemon + kSpoolA + "watch = \"poll\"\npoll_s = 2\n" + kStore))
            .empty());
}

// Identity and the job record: restart-only, the URL's password masked.
TEST_F(ConfigDiffTest, NodeAndDatabaseNeedARestart) {
    const Config running = parse(kDaemon + "node = \"a\"\n" + kSpoolA + kStore);
    const Config requested = parse(
        "[daemon]\nstate_dir = \"/var/lib/x\"\nworkers = 2\nnode = \"b\"\n" + kSpoolA + kStore +
        "[database]\nurl = \"postgresql://u:pw-secret@db/x\"\npool_size = 4\n"
        "connect_timeout_s = 9\nstatement_timeout_s = 99\n");
    const ConfigDiff d = diff_config(running, requested);
    std::map<std::string, RestartOnlyChange> by_key;
    for (const RestartOnlyChange& c : d.needs_restart) by_key[c.key] = c;
    EXPECT_EQ(by_key.size(), 5u);
    EXPECT_EQ(by_key["daemon.node"].running, "a");
    EXPECT_EQ(by_key["daemon.node"].requested, "b");
    EXPECT_EQ(by_key["database.url"].running, "\"\" (SQLite)");
    EXPECT_EQ(by_key["database.url"].requested, "postgresql://u:****@db/x");
    EXPECT_EQ(by_key["database.pool_size"].requested, "4");
    EXPECT_EQ(by_key["database.connect_timeout_s"].requested, "9");
    EXPECT_EQ(by_key["database.statement_timeout_s"].requested, "99");
    EXPECT_TRUE(d.keys_changed.empty());
    EXPECT_FALSE(d.watcher_changed());

    const Config applied = reloadable_part(running, requested);
    EXPECT_EQ(applied.daemon.node, "a");
    EXPECT_EQ(applied.database.url, "");
    EXPECT_EQ(applied.database.pool_size, 0);
    EXPECT_TRUE(diff_config(running, applied).empty());
}

TEST_F(ConfigDiffTest, ProfilesAddedRemovedOrWithOtherSettingsAreNamed) {
    const Config running = parse(kDaemon + kSpoolA + kStore + thumbs(320));
    EXPECT_EQ(
        diff_config(running, parse(kDaemon + kSpoolA + kStore + thumbs(640))).profiles_changed,
        Names{"thumbs"});
    EXPECT_EQ(diff_config(running, parse(kDaemon + kSpoolA + kStore)).profiles_changed,
              Names{"thumbs"});
    EXPECT_EQ(diff_config(parse(kDaemon + kSpoolA + kStore), running).profiles_changed,
              Names{"thumbs"});
    EXPECT_TRUE(diff_config(running, parse(kDaemon + kSpoolA + kStore + thumbs(320)))
                    .profiles_changed.empty());
}

// Placeholders change what a job records, so cached sets of the profile without them do not do.
TEST_F(ConfigDiffTest, AskingForPlaceholdersChangesTheProfile) {
    const Config running = parse(kDaemon + kSpoolA + kStore + thumbs(320));
    const std::string with_blurhash =
        "[profiles.thumbs]\nplaceholder = [\"blurhash\"]\n[[profiles.thumbs.variant]]\n"
        "name = \"small\"\nwidth = 320\nheight = 200\n";
    EXPECT_EQ(
        diff_config(running, parse(kDaemon + kSpoolA + kStore + with_blurhash)).profiles_changed,
        Names{"thumbs"});
}

TEST_F(ConfigDiffTest, LimitsAndRetriesAreReloadableKeys) {
    const Config running = parse(kDaemon + kSpoolA + kStore);
    const ConfigDiff d = diff_config(
        running, parse("[daemon]\nstate_dir = \"/var/lib/x\"\nworkers = 2\nretry_min_s = 1\n"
                       "max_deferred = 7\n" +
                       kSpoolA + kStore + "[limits]\nmax_width = 4000\n"));
    EXPECT_EQ(d.keys_changed,
              (Names{"daemon.retry_min_s", "daemon.max_deferred", "limits.max_width"}));
    EXPECT_FALSE(d.watcher_changed());
    EXPECT_FALSE(d.store_changed());
    EXPECT_TRUE(d.needs_restart.empty());
}

TEST_F(ConfigDiffTest, WatcherSettingsReplaceTheWatcher) {
    const Config running = parse(kDaemon + kSpoolA + kStore);
    EXPECT_TRUE(diff_config(running, parse("[daemon]\nstate_dir = \"/var/lib/x\"\nworkers = 2\n"
                                           "settle_ms = 100\n" +
                                           kSpoolA + kStore))
                    .watcher_changed());
    EXPECT_TRUE(
        diff_config(running, parse(kDaemon + kSpoolA + kStore + "[limits]\nmax_bytes = 5\n"))
            .watcher_changed());
}

TEST_F(ConfigDiffTest, StoreKeysAreNamedWithoutTheirValues) {
    const std::string s3 =
        "[store]\nkind = \"s3\"\nbucket = \"b\"\naccess_key_id = \"AKIAONE\"\n"
        "secret_access_key = \"first-secret\"\n";
    const Config running = parse(kDaemon + kSpoolA + s3);
    const ConfigDiff d = diff_config(
        running, parse(kDaemon + kSpoolA +
                       "[store]\nkind = \"s3\"\nbucket = \"b\"\naccess_key_id = \"AKIAONE\"\n"
                       "secret_access_key = \"second-secret\"\n"));
    EXPECT_EQ(d.keys_changed, Names{"store.s3.secret_access_key"});
    EXPECT_TRUE(d.store_changed());
    EXPECT_TRUE(d.needs_restart.empty());

    const ConfigDiff to_local = diff_config(running, parse(kDaemon + kSpoolA + kStore));
    EXPECT_TRUE(to_local.store_changed());
    EXPECT_NE(std::find(to_local.keys_changed.begin(), to_local.keys_changed.end(), "store.kind"),
              to_local.keys_changed.end());
}

TEST_F(ConfigDiffTest, KeyTemplateAloneNeedsNoNewStore) {
    const Config running = parse(kDaemon + kSpoolA + kStore);
    const ConfigDiff d = diff_config(
        running,
        parse(kDaemon + kSpoolA + kStore + "key_template = \"x/{upload_id}/{variant}.{ext}\"\n"));
    EXPECT_EQ(d.keys_changed, Names{"store.key_template"});
    EXPECT_FALSE(d.store_changed());
}

TEST_F(ConfigDiffTest, RestartOnlyKeysKeepTheirRunningValueAndTheRestApplies) {
    const Config running = parse(kDaemon + kSpoolA + kStore);
    const Config requested = parse(
        "[daemon]\nstate_dir = \"/var/lib/y\"\nworkers = 5\nqueue_max = 9\n"
        "max_job_attempts = 4\nsettle_ms = 700\n" +
        kSpoolA + kStore + "[metrics]\nenabled = true\nport = 9100\nbind = \"0.0.0.0\"\n");
    const ConfigDiff d = diff_config(running, requested);
    std::map<std::string, std::pair<std::string, std::string>> restart;
    for (const RestartOnlyChange& c : d.needs_restart) restart[c.key] = {c.running, c.requested};
    const std::map<std::string, std::pair<std::string, std::string>> expected{
        {"daemon.state_dir", {"/var/lib/x", "/var/lib/y"}},
        {"daemon.workers", {"2", "5"}},
        {"daemon.queue_max", {"64", "9"}},
        {"daemon.max_job_attempts", {"3", "4"}},
        {"metrics.enabled", {"false", "true"}},
        {"metrics.port", {"9091", "9100"}},
        {"metrics.bind", {"127.0.0.1", "0.0.0.0"}}};
    EXPECT_EQ(restart, expected);
    EXPECT_EQ(d.keys_changed, Names{"daemon.settle_ms"});

    const Config applied = reloadable_part(running, requested);
    EXPECT_EQ(applied.daemon.state_dir, "/var/lib/x");
    EXPECT_EQ(applied.daemon.workers, 2);
    EXPECT_EQ(applied.daemon.queue_max, 64);
    EXPECT_EQ(applied.daemon.max_job_attempts, 3);
    EXPECT_FALSE(applied.metrics.enabled);
    EXPECT_EQ(applied.metrics.port, 9091);
    EXPECT_EQ(applied.daemon.settle_ms, 700);
    // What is left to apply differs from the running config only in reloadable keys.
    EXPECT_TRUE(diff_config(running, applied).needs_restart.empty());
}

TEST_F(ConfigDiffTest, FetchKeysAreReloadable) {
    const Config running = parse(kDaemon + kSpoolA + kStore);
    const ConfigDiff d =
        diff_config(running, parse(kDaemon + kSpoolA + kStore +
                                   "[fetch]\nallow_hosts = [\"127.0.0.1\"]\nmax_redirects = 1\n"
                                   "connect_timeout_s = 2\ntimeout_s = 3\n"));
    EXPECT_EQ(d.keys_changed, (Names{"fetch.allow_hosts", "fetch.max_redirects",
                                     "fetch.connect_timeout_s", "fetch.timeout_s"}));
    EXPECT_TRUE(d.fetch_changed());
    EXPECT_TRUE(d.needs_restart.empty());
    EXPECT_FALSE(d.store_changed());
    EXPECT_FALSE(d.watcher_changed());
    // Applied as requested: nothing is held back for a restart.
    EXPECT_EQ(reloadable_part(running, parse(kDaemon + kSpoolA + kStore +
                                             "[fetch]\nallow_hosts = [\"10.0.0.0/8\"]\n"))
                  .fetch.allow_hosts,
              Names{"10.0.0.0/8"});
}

TEST_F(ConfigDiffTest, FetchS3KeysAreNamedWithoutTheirValues) {
    const std::string fetch_s3 =
        "[fetch.s3]\naccess_key_id = \"AKIAONE\"\nsecret_access_key = \"first-secret\"\n";
    const Config running = parse(kDaemon + kSpoolA + kStore + fetch_s3);
    const ConfigDiff d = diff_config(
        running,
        parse(kDaemon + kSpoolA + kStore +
              "[fetch.s3]\naccess_key_id = \"AKIAONE\"\nsecret_access_key = \"second-secret\"\n"));
    EXPECT_EQ(d.keys_changed, Names{"fetch.s3.secret_access_key"});
    EXPECT_TRUE(d.fetch_changed());
    EXPECT_FALSE(d.store_changed());  // [fetch.s3] is not the store
    EXPECT_TRUE(d.needs_restart.empty());
    // Removing the table is a change of its own.
    const ConfigDiff removed = diff_config(running, parse(kDaemon + kSpoolA + kStore));
    EXPECT_NE(std::find(removed.keys_changed.begin(), removed.keys_changed.end(), "fetch.s3"),
              removed.keys_changed.end());
    EXPECT_TRUE(removed.fetch_changed());
}

TEST_F(ConfigDiffTest, HttpSocketKeysNeedARestartTheRestIsReloadable) {
    const std::string two = kSpoolA + kSpoolB;
    const Config running = parse(kDaemon + two + kStore + "[http]\nenabled = true\n");
    const Config requested = parse(
        kDaemon + two + kStore +
        "[http]\nenabled = false\nbind = \"::1\"\nport = 8443\nmax_connections = 8\n"
        "idle_timeout_s = 5\nspool = \"b\"\ntoken = \"new-token-value\"\nrequest_timeout_s = 9\n");
    const ConfigDiff d = diff_config(running, requested);
    std::map<std::string, std::pair<std::string, std::string>> restart;
    for (const RestartOnlyChange& c : d.needs_restart) restart[c.key] = {c.running, c.requested};
    const std::map<std::string, std::pair<std::string, std::string>> expected{
        {"http.enabled", {"true", "false"}},
        {"http.bind", {"127.0.0.1", "::1"}},
        {"http.port", {"8080", "8443"}},
        {"http.max_connections", {"64", "8"}},
        {"http.idle_timeout_s", {"30", "5"}}};
    EXPECT_EQ(restart, expected);
    // The token is named, never shown.
    EXPECT_EQ(d.keys_changed, (Names{"http.spool", "http.token", "http.request_timeout_s"}));
    EXPECT_FALSE(d.fetch_changed());

    const Config applied = reloadable_part(running, requested);
    EXPECT_TRUE(applied.http.enabled);
    EXPECT_EQ(applied.http.bind, "127.0.0.1");
    EXPECT_EQ(applied.http.port, 8080);
    EXPECT_EQ(applied.http.max_connections, 64);
    EXPECT_EQ(applied.http.idle_timeout_s, 30);
    EXPECT_EQ(applied.http.spool, "b");
    EXPECT_EQ(applied.http.token, "new-token-value");
    EXPECT_EQ(applied.http.request_timeout_s, 9);
    EXPECT_TRUE(diff_config(running, applied).needs_restart.empty());
}

TEST_F(ConfigDiffTest, TheHttpPortAloneNeedsARestart) {
    const Config running = parse(kDaemon + kSpoolA + kStore);
    const ConfigDiff d =
        diff_config(running, parse(kDaemon + kSpoolA + kStore + "[http]\nport = 8081\n"));
    ASSERT_EQ(d.needs_restart.size(), 1u);
    EXPECT_EQ(d.needs_restart[0].key, "http.port");
    EXPECT_EQ(d.needs_restart[0].running, "8080");
    EXPECT_EQ(d.needs_restart[0].requested, "8081");
    EXPECT_TRUE(d.keys_changed.empty());
    EXPECT_EQ(reloadable_part(running, parse(kDaemon + kSpoolA + kStore + "[http]\nport = 8081\n"))
                  .http.port,
              8080);
}

}  // namespace
}  // namespace imgspool
