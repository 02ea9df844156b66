// SIGHUP reloads the configuration without dropping work: the real daemon, real signals (kill()
// and `imgspool reload`), real inotify.
#include <signal.h>
#include <sys/mount.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/loopback.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/packaging/notify_socket.hpp"

namespace imgspool::it {
namespace {

std::string quoted(const stdfs::path& p) {
    return "\"" + p.string() + "\"";
}

// A read-only tmpfs: every write into it fails with EROFS, a fault that passes (the job is
// deferred, not failed).
class ReadOnlyDisk {
  public:
    explicit ReadOnlyDisk(const stdfs::path& dir) : dir_(dir) {
        stdfs::create_directories(dir);
        mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", MS_RDONLY, "size=1m") == 0;
    }
    ~ReadOnlyDisk() {
        if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    }
    ReadOnlyDisk(const ReadOnlyDisk&) = delete;
    ReadOnlyDisk& operator=(const ReadOnlyDisk&) = delete;
    bool mounted() const { return mounted_; }

  private:
    stdfs::path dir_;
    bool mounted_ = false;
};

class ReloadIt : public SpoolFixture {
  protected:
    stdfs::path extra_root() const { return root() / "extra"; }
    stdfs::path extra_inbox() const { return extra_root() / "inbox"; }
    stdfs::path extra_done() const { return extra_root() / "done"; }

    // n photos named prefix-N.jpg, made first (encoding takes a while) and then renamed into
    // `inbox` one right after the other, so they settle and are claimed together.
    std::vector<std::string> drop_together(const stdfs::path& inbox, const std::string& prefix,
                                           int n, unsigned seed, int width, int height) {
        std::vector<std::string> names;
        for (int i = 0; i < n; ++i) {
            names.push_back(prefix + "-" + std::to_string(i) + ".jpg");
            write_file(outside() / names.back(),
                       make_jpeg({.width = width, .height = height, .seed = seed + unsigned(i)}));
        }
        for (const std::string& name : names) stdfs::rename(outside() / name, inbox / name);
        return names;
    }

    // A second spool, "extra", for DaemonConfig::extra_toml.
    std::string extra_spool(const std::string& profile = "web") const {
        return "\n[[spool]]\nname = \"extra\"\nroot = " + quoted(extra_root()) + "\nprofile = \"" +
               profile + "\"\n";
    }

    // The daemon's log lines whose msg is `msg` (the harness's own marker lines skipped).
    std::vector<nlohmann::json> logged(const std::string& msg) const {
        std::vector<nlohmann::json> out;
        std::istringstream in(daemon_log());
        for (std::string line; std::getline(in, line);) {
            nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_discarded() && j.is_object() && j.value("msg", "") == msg) out.push_back(j);
        }
        return out;
    }

    // Sends SIGHUP with kill() and waits for the reload's outcome line ("configuration
    // reloaded" or "configuration reload rejected ..."); returns it.
    nlohmann::json sighup(const std::string& outcome = kApplied) {
        const std::size_t before = logged(outcome).size();
        daemon().send(SIGHUP);
        return wait_outcome(outcome, before);
    }
    // The same through `imgspool reload -c CONFIG`, which must name the daemon's pid.
    nlohmann::json reload_command(const std::string& outcome = kApplied) {
        const std::size_t before = logged(outcome).size();
        const CommandResult r = run_imgspool({"reload", "-c", config_path().string()}, root());
        EXPECT_EQ(r.status.describe(), "exit 0") << r.err;
        EXPECT_NE(r.out.find("pid " + std::to_string(daemon().pid())), std::string::npos) << r.out;
        return wait_outcome(outcome, before);
    }

    nlohmann::json wait_outcome(const std::string& outcome, std::size_t before) {
        const bool seen = wait_for([&] { return logged(outcome).size() > before; }, 20s);
        EXPECT_TRUE(seen) << "no \"" << outcome << "\" line after SIGHUP\n" << daemon_log();
        const auto lines = logged(outcome);
        return seen ? lines.back() : nlohmann::json::object();
    }

    // The job of source_name once it is complete, with the spool it ran in.
    std::optional<Row> complete_job(const std::string& source_name,
                                    std::chrono::milliseconds t = 30s) {
        std::optional<Row> found;
        wait_for(
            [&] {
                auto rows = query(
                    "SELECT id, spool, status FROM upload_jobs WHERE "
                    "source_name = ? AND status = 'complete'",
                    {source_name});
                if (!rows.empty()) found = rows.front();
                return found.has_value();
            },
            t);
        return found;
    }

    static constexpr const char* kApplied = "configuration reloaded";
    static constexpr const char* kRejected =
        "configuration reload rejected; the running configuration stays";
};

TEST_F(ReloadIt, ASpoolAddedToTheConfigIsWatchedAfterSighup) {
    start_daemon();
    wait_until_watching();
    EXPECT_FALSE(stdfs::exists(extra_root()));

    write_config(DaemonConfig{.extra_toml = extra_spool()});
    const nlohmann::json applied = sighup();
    EXPECT_EQ(applied.value("spools_added", ""), "extra") << applied.dump();
    EXPECT_EQ(applied.value("spools", 0), 2);
    // Locked like a spool the daemon started with: with the daemon's pid on SQLite; shared and
    // without a pid on PostgreSQL, where other nodes may share the spool.
    EXPECT_EQ(read_file(extra_root() / ".imgspool.lock"),
              on_postgres() ? "" : std::to_string(daemon().pid()) + "\n");

    const std::string photo = make_jpeg({.width = 800, .height = 600, .seed = 41});
    write_file(extra_inbox() / "new-spool.jpg", photo);
    const std::optional<Row> job = complete_job("new-spool.jpg");
    ASSERT_TRUE(job) << tree() << daemon_log();
    EXPECT_EQ(job->at("spool"), "extra");
    EXPECT_TRUE(wait_for([&] { return stdfs::exists(extra_done() / "new-spool.jpg"); }));
    EXPECT_EQ(read_file(extra_done() / "new-spool.jpg"), photo);
    // The spool it had keeps working.
    write_file(inbox() / "old-spool.jpg", make_jpeg({.width = 800, .height = 600, .seed = 42}));
    EXPECT_TRUE(wait_complete("old-spool.jpg"));
    EXPECT_TRUE(daemon_running());
}

TEST_F(ReloadIt, ARemovedSpoolStopsTakingFilesWhileItsClaimedJobsComplete) {
    write_config(DaemonConfig{.workers = 1, .extra_toml = extra_spool()});
    start_daemon();
    wait_until_watching();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(extra_inbox()); }));

    // One worker and large photos: when all are claimed, most are still queued or rendering.
    const std::vector<std::string> names = drop_together(extra_inbox(), "big", 4, 50, 3000, 2200);
    ASSERT_TRUE(wait_for([&] {
        return files_under(extra_inbox()).empty() &&
               query("SELECT id FROM upload_jobs WHERE spool = 'extra'").size() == names.size();
    })) << tree();

    write_config(DaemonConfig{.workers = 1});
    const nlohmann::json applied = reload_command();
    EXPECT_EQ(applied.value("spools_removed", ""), "extra") << applied.dump();
    const auto unfinished_at_reload =
        query("SELECT id FROM upload_jobs WHERE spool = 'extra' AND status NOT IN ('complete')");
    EXPECT_FALSE(unfinished_at_reload.empty())
        << "test setup: every job finished before the reload; nothing was in flight";

    write_file(extra_inbox() / "after-removal.jpg",
               make_jpeg({.width = 800, .height = 600, .seed = 60}));
    for (const std::string& name : names) {
        EXPECT_TRUE(complete_job(name, 60s)) << name << "\n" << tree();
        // The row says complete at the commit; the move to done/ comes right after it.
        EXPECT_TRUE(wait_for([&] { return stdfs::exists(extra_done() / name); })) << name;
    }
    // Several rescans and settle periods later, the new file is still where it was dropped.
    std::this_thread::sleep_for(3s);
    EXPECT_EQ(files_under(extra_inbox()), std::vector<std::string>{"after-removal.jpg"});
    EXPECT_TRUE(jobs_for("after-removal.jpg").empty());
    // The remaining spool still works.
    write_file(inbox() / "kept.jpg", make_jpeg({.width = 800, .height = 600, .seed = 61}));
    EXPECT_TRUE(wait_complete("kept.jpg"));
}

TEST_F(ReloadIt, ABrokenConfigIsRejectedWithTheKeyNamedAndTheOldOneKeepsWorking) {
    start_daemon();
    wait_until_watching();

    // A bad key, in a config that would also add a spool.
    write_config(DaemonConfig{.extra_toml = extra_spool(), .daemon = {{"bogus_key", "1"}}});
    nlohmann::json rejected = sighup(kRejected);
    EXPECT_NE(rejected.value("error", "").find("bogus_key"), std::string::npos) << rejected.dump();
    // A bad value.
    write_config(
        DaemonConfig{.extra_toml = extra_spool(), .daemon = {{"retry_min_s", "\"soon\""}}});
    rejected = sighup(kRejected);
    EXPECT_NE(rejected.value("error", "").find("retry_min_s"), std::string::npos)
        << rejected.dump();

    EXPECT_TRUE(logged(kApplied).empty());
    EXPECT_FALSE(stdfs::exists(extra_root())) << "a rejected reload must change nothing";
    write_file(inbox() / "after-broken.jpg", make_jpeg({.width = 800, .height = 600, .seed = 70}));
    EXPECT_TRUE(wait_complete("after-broken.jpg"));
    EXPECT_TRUE(daemon_running());
}

TEST_F(ReloadIt, AWatermarkImageThatCannotBeUsedRejectsTheReloadWithItsPath) {
    start_daemon();
    wait_until_watching();

    write_config(DaemonConfig{.profile = "marked",
                              .extra_toml = "\n[profiles.marked]\n[[profiles.marked.variant]]\n"
                                            "name = \"large\"\nwidth = 800\nheight = 800\n"
                                            "watermark = { image = \"gone.png\" }\n"});
    const nlohmann::json rejected = sighup(kRejected);
    const std::string error = rejected.value("error", "");
    EXPECT_NE(
        error.find("watermark image: cannot use " + quoted(root() / "gone.png") + ": no such file"),
        std::string::npos)
        << rejected.dump();

    EXPECT_TRUE(logged(kApplied).empty());
    write_file(inbox() / "after.jpg", make_jpeg({.width = 800, .height = 600, .seed = 71}));
    const std::optional<Row> job = wait_complete("after.jpg");
    ASSERT_TRUE(job) << daemon_log();
    EXPECT_EQ(job->at("profile"), "web");
}

TEST_F(ReloadIt, AProfileChangeAppliesToFilesDroppedAfterTheReload) {
    write_config(DaemonConfig{.profile = "dall-e"});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const std::string square = make_jpeg({.width = 2000, .height = 2000, .seed = 80});
    write_file(inbox() / "before.jpg", square);
    const std::optional<Row> before = wait_complete("before.jpg");
    ASSERT_TRUE(before) << daemon_log();

    write_config(DaemonConfig{.profile = "sora"});
    const nlohmann::json applied = sighup();
    EXPECT_EQ(applied.value("spools_changed", ""), "main") << applied.dump();
    write_file(inbox() / "after.jpg", make_jpeg({.width = 2000, .height = 2000, .seed = 81}));
    const std::optional<Row> after = wait_complete("after.jpg");
    ASSERT_TRUE(after) << daemon_log();

    // dall-e's "normal" fits a 1024x1024 box, sora's a 1280x720 one.
    const ReadBack first = read_image(objects() / "images" / before->at("id") / "normal.jpg");
    const ReadBack second = read_image(objects() / "images" / after->at("id") / "normal.jpg");
    ASSERT_TRUE(first.ok) << first.error;
    ASSERT_TRUE(second.ok) << second.error;
    EXPECT_EQ(first.width, 1024);
    EXPECT_EQ(first.height, 1024);
    EXPECT_EQ(second.width, 720);
    EXPECT_EQ(second.height, 720);
    EXPECT_EQ(before->at("profile"), "dall-e");
    EXPECT_EQ(after->at("profile"), "sora");
}

// The profile's settings change under the same name: the jobs claimed before the reload (one
// worker, so most of them wait in the queue) keep the settings they were claimed with.
TEST_F(ReloadIt, JobsClaimedBeforeAProfileChangeKeepTheSettingsTheyWereClaimedWith) {
    if (on_postgres()) {
        GTEST_SKIP() << "SQLite only: on PostgreSQL a node claims a file only when a worker will "
                        "soon be free (nodes may share the spool), so the files this test needs "
                        "queued wait in inbox/ instead";
    }
    auto thumbs = [](int size) {
        return DaemonConfig{.workers = 1,
                            .profile = "thumbs",
                            .extra_toml =
                                "\n[profiles.thumbs]\n[[profiles.thumbs.variant]]\n"
                                "name = \"small\"\nwidth = " +
                                std::to_string(size) + "\nheight = " + std::to_string(size) + "\n"};
    };
    write_config(thumbs(300));
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const std::vector<std::string> names = drop_together(inbox(), "queued", 8, 120, 3000, 2200);
    ASSERT_TRUE(wait_for([&] {
        return files_under(inbox()).empty() &&
               query("SELECT id FROM upload_jobs WHERE source_name LIKE 'queued-%'").size() ==
                   names.size();
    })) << tree();

    write_config(thumbs(200));
    const nlohmann::json applied = sighup();
    EXPECT_EQ(applied.value("profiles_changed", ""), "thumbs") << applied.dump();
    // With one worker, most of them are still queued: not even started.
    EXPECT_GE(query("SELECT id FROM upload_jobs WHERE attempts = 0 AND source_name LIKE "
                    "'queued-%'")
                  .size(),
              2u)
        << "test setup: the jobs ran before the reload; none was queued";
    write_file(inbox() / "later.jpg", make_jpeg({.width = 3000, .height = 2200, .seed = 130}));

    for (const std::string& name : names) {
        const std::optional<Row> job = wait_complete(name, 60s);
        ASSERT_TRUE(job) << name << "\n" << tree();
        const ReadBack small = read_image(objects() / "images" / job->at("id") / "small.jpg");
        ASSERT_TRUE(small.ok) << small.error;
        EXPECT_EQ(small.width, 300) << name;
    }
    const std::optional<Row> later = wait_complete("later.jpg", 60s);
    ASSERT_TRUE(later) << tree();
    const ReadBack small = read_image(objects() / "images" / later->at("id") / "small.jpg");
    ASSERT_TRUE(small.ok) << small.error;
    EXPECT_EQ(small.width, 200);
}

TEST_F(ReloadIt, JobsInFlightDuringAReloadAllComplete) {
    start_daemon();
    wait_until_watching();
    const std::vector<std::string> names = drop_together(inbox(), "busy", 8, 90, 2400, 1800);
    ASSERT_TRUE(wait_for([&] {
        return !query(
                    "SELECT id FROM upload_jobs WHERE source_name "
                    "LIKE 'busy-%'")
                    .empty();
    }));
    // A change that replaces the watcher and the settings while jobs run.
    write_config(DaemonConfig{.settle_ms = 250, .limits = {{"max_width", 9000}}});
    const nlohmann::json applied = reload_command();
    EXPECT_EQ(applied.value("keys_changed", ""), "daemon.settle_ms, limits.max_width")
        << applied.dump();
    EXPECT_FALSE(query("SELECT id FROM upload_jobs WHERE status != 'complete' AND source_name LIKE "
                       "'busy-%'")
                     .empty())
        << "test setup: every job finished before the reload; nothing was in flight";
    for (const std::string& name : names) {
        EXPECT_TRUE(wait_complete(name, 60s)) << name << "\n" << tree();
        EXPECT_EQ(jobs_for(name).size(), 1u) << name;
    }
    EXPECT_TRUE(files_under(failed()).empty());
    EXPECT_TRUE(wait_for([&] { return files_under(work()).empty(); }, 10s)) << tree();
}

TEST_F(ReloadIt, AStoreChangeLeavesADeferredJobIntactAndItCompletesOnTheNewStore) {
    const stdfs::path store_a = root() / "store-a";
    const stdfs::path store_b = root() / "store-b";
    ReadOnlyDisk read_only(store_a);
    if (!read_only.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
    const int port = free_port();
    ASSERT_GT(port, 0);
    auto config_for = [&](const stdfs::path& store) {
        return DaemonConfig{
            .extra_toml = "\n[metrics]\nenabled = true\nport = " + std::to_string(port) + "\n",
            .daemon = {{"retry_min_s", "1"}, {"retry_max_s", "2"}},
            .store_toml = "kind = \"local\"\npath = " + quoted(store) + "\npublic_base_url = \"" +
                          kCdn + "\""};
    };
    write_config(config_for(store_a));
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "waits.jpg", make_jpeg({.width = 800, .height = 600, .seed = 100}));
    ASSERT_TRUE(wait_for([&] {
        return !query(
                    "SELECT id FROM upload_jobs WHERE source_name = 'waits.jpg' AND status = "
                    "'pending' AND last_error LIKE '%Read-only%'")
                    .empty();
    })) << daemon_log();
    // The health check finds the read-only store unusable.
    EXPECT_TRUE(wait_for(
        [&] {
            const HttpReply ready = http_get(port, "/readyz", 5s);
            return ready.status == 503 && ready.body.find("store") != std::string::npos;
        },
        20s))
        << http_get(port, "/readyz", 5s).body;

    write_config(config_for(store_b));
    const nlohmann::json applied = sighup();
    EXPECT_EQ(applied.value("store_changed", false), true) << applied.dump();
    EXPECT_EQ(applied.value("store", ""), "local:" + store_b.string());
    const std::optional<Row> job = wait_complete("waits.jpg");
    ASSERT_TRUE(job) << daemon_log();
    EXPECT_EQ(files_under(store_b / "images" / job->at("id")).size(), 7u) << tree();
    EXPECT_TRUE(files_under(store_a).empty());
    EXPECT_TRUE(files_under(failed()).empty());
    EXPECT_EQ(read_file(done() / "waits.jpg").empty(), false);
    // The health check follows the new store: ready again.
    EXPECT_TRUE(wait_for([&] { return http_get(port, "/readyz", 5s).status == 200; }, 20s))
        << http_get(port, "/readyz", 5s).body;
}

TEST_F(ReloadIt, ARestartOnlyKeyIsLoggedAndKeepsItsValueWhileTheRestApplies) {
    start_daemon();
    wait_until_watching();
    write_config(DaemonConfig{.workers = 3, .extra_toml = extra_spool()});
    const std::size_t before =
        logged("configuration key needs a restart; it keeps its running value").size();
    const nlohmann::json applied = sighup();
    const auto restart = logged("configuration key needs a restart; it keeps its running value");
    ASSERT_EQ(restart.size(), before + 1) << daemon_log();
    EXPECT_EQ(restart.back().value("key", ""), "daemon.workers");
    EXPECT_EQ(restart.back().value("running", ""), "2");
    EXPECT_EQ(restart.back().value("requested", ""), "3");
    EXPECT_EQ(applied.value("needs_restart", ""), "daemon.workers");
    EXPECT_EQ(applied.value("spools_added", ""), "extra");
    write_file(extra_inbox() / "x.jpg", make_jpeg({.width = 800, .height = 600, .seed = 110}));
    EXPECT_TRUE(complete_job("x.jpg"));
}

// Under systemd (Type=notify, ExecReload=): RELOADING=1 when the reload starts, READY=1 when it
// is done, applied or rejected, so `systemctl reload` returns once the outcome is logged.
TEST_F(ReloadIt, AReloadIsBracketedByReloadingAndReadyForSystemd) {
    pkg_test::NotifySocket notify(root() / "notify.sock");
    set_daemon_env({"NOTIFY_SOCKET=" + notify.path().string()});
    start_daemon();
    ASSERT_TRUE(notify.wait_for_line("READY=1", 30s)) << notify.describe();

    auto bracketed = [&](std::size_t from) {
        // Collects what the daemon sends for a moment (a line that never comes).
        (void)notify.wait_for_line("NO-SUCH-LINE", 1500ms);
        const std::vector<std::string>& lines = notify.lines();
        auto reloading = std::find(lines.begin() + static_cast<std::ptrdiff_t>(from), lines.end(),
                                   "RELOADING=1");
        return reloading != lines.end() &&
               std::find(reloading, lines.end(), "READY=1") != lines.end();
    };
    write_config(DaemonConfig{.extra_toml = extra_spool()});
    std::size_t from = notify.lines().size();
    sighup();
    EXPECT_TRUE(bracketed(from)) << notify.describe();

    write_config(DaemonConfig{.daemon = {{"bogus_key", "1"}}});
    from = notify.lines().size();
    sighup(kRejected);
    EXPECT_TRUE(bracketed(from)) << notify.describe();
    EXPECT_TRUE(daemon_running());
}

TEST_F(ReloadIt, ReloadWithNoDaemonRunningExitsNonZero) {
    CommandResult r = run_imgspool({"reload", "-c", config_path().string()}, root());
    EXPECT_EQ(r.status.describe(), "exit 1");
    EXPECT_NE(r.err.find("no daemon is running"), std::string::npos) << r.err;

    // A lock file left behind names a pid that is not the daemon's any more (here a `sleep`):
    // it must not get the SIGHUP.
    ChildProcess bystander("/bin/sleep", {"30"}, root() / "sleep.out", root() / "sleep.out");
    stdfs::create_directories(state_dir());
    write_file(state_dir() / "imgspool.lock", std::to_string(bystander.pid()) + "\n");
    r = run_imgspool({"reload", "-c", config_path().string()}, root());
    EXPECT_EQ(r.status.describe(), "exit 1");
    EXPECT_NE(r.err.find("no daemon is running"), std::string::npos) << r.err;
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(bystander.running()) << "the pid in a stale lock file got a signal";
}

}  // namespace
}  // namespace imgspool::it
