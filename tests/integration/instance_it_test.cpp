// The daemon as one process among others: signals it must survive, a second imgspool on the
// same state_dir or spool root (refused, naming the first), a restart after kill -9, and no
// litter in the temp directory after a crash.
#include <signal.h>

#include <thread>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

// SIGHUP reloads the configuration (reload_it_test.cpp); with the file unchanged it changes
// nothing and the daemon goes on.
constexpr const char* kReloadedLine = "\"msg\":\"configuration reloaded\"";

class InstanceIt : public SpoolFixture {
  protected:
    std::string jpeg(unsigned seed) {
        return make_jpeg({.width = 400, .height = 300, .seed = seed});
    }
    std::string in_use_by_first(const std::string& what, const stdfs::path& lock) {
        return what + " is in use by imgspool pid " + std::to_string(daemon().pid()) + " (lock " +
               lock.string() + ")";
    }
    stdfs::path state_lock() const { return state_dir() / "imgspool.lock"; }
    stdfs::path spool_lock() const { return spool_root() / ".imgspool.lock"; }
    // What the spool lock holds while `pid` runs: its pid with SQLite; nothing on PostgreSQL,
    // where nodes sharing the database hold it shared and are named in the database instead.
    std::string spool_lock_pid(pid_t pid) const {
        return on_postgres() ? std::string() : std::to_string(pid);
    }
    // The pid in a lock file ("" when unreadable).
    static std::string pid_in(const stdfs::path& lock) {
        std::string text = stdfs::exists(lock) ? read_file(lock) : "";
        while (!text.empty() && text.back() == '\n') text.pop_back();
        return text;
    }
};

TEST_F(InstanceIt, SighupWithAnUnchangedConfigKeepsTheDaemonAtWorkAndSigpipeIsIgnored) {
    start_daemon();
    wait_until_watching();
    daemon().send(SIGHUP);
    ASSERT_TRUE(
        wait_for([&] { return daemon_log().find(kReloadedLine) != std::string::npos; }, 10s))
        << "no log line for SIGHUP";
    daemon().send(SIGPIPE);
    std::this_thread::sleep_for(1s);
    ASSERT_TRUE(daemon_running()) << daemon().exit_status()->describe();

    // Still at work.
    write_file(inbox() / "after-signals.jpg", jpeg(11));
    EXPECT_TRUE(wait_complete("after-signals.jpg").has_value());
    EXPECT_TRUE(daemon_running());

    // And SIGTERM still stops it cleanly.
    daemon().send(SIGTERM);
    const auto status = daemon().wait_for_exit(30s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->exited && status->code == 0) << status->describe();
}

TEST_F(InstanceIt, ASecondDaemonOnTheSameConfigIsRefusedNamingTheFirst) {
    start_daemon();
    wait_until_watching();
    const CommandResult second = run_imgspool({"run", "-c", config_path().string()}, root(), 30s);
    EXPECT_TRUE(second.status.exited && second.status.code == 1) << second.status.describe();
    EXPECT_NE(second.err.find(in_use_by_first("state_dir " + state_dir().string(), state_lock())),
              std::string::npos)
        << second.err;
    EXPECT_EQ(pid_in(state_lock()), std::to_string(daemon().pid()));
    EXPECT_EQ(pid_in(spool_lock()), spool_lock_pid(daemon().pid()));

    // The first keeps working, alone: one job for the file.
    ASSERT_TRUE(daemon_running());
    write_file(inbox() / "only-once.jpg", jpeg(12));
    ASSERT_TRUE(wait_complete("only-once.jpg").has_value());
    EXPECT_EQ(jobs_for("only-once.jpg").size(), 1u);
}

TEST_F(InstanceIt, ASecondDaemonOnAnotherStateDirButTheSameSpoolIsRefused) {
    start_daemon();
    wait_until_watching();
    std::string text = config_text(DaemonConfig{});
    const std::string state = state_dir().string();
    const std::string other_state = (root() / "state-2").string();
    text.replace(text.find(state), state.size(), other_state);
    // On PostgreSQL the first holds the spool shared, as nodes sharing the database do: the
    // second, on SQLite, cannot join them.
    if (on_postgres()) text.replace(text.find(database_url()), database_url().size(), "");
    const stdfs::path other_config = root() / "other.toml";
    write_file(other_config, text);

    const CommandResult second = run_imgspool({"run", "-c", other_config.string()}, root(), 30s);
    EXPECT_TRUE(second.status.exited && second.status.code == 1) << second.status.describe();
    EXPECT_NE(second.err.find("spool root " + spool_root().string()), std::string::npos)
        << second.err;
    const std::string holder =
        on_postgres() ? "is used by imgspool nodes sharing a database (shared lock on " +
                            spool_lock().string() + "); a SQLite daemon cannot join them"
                      : "imgspool pid " + std::to_string(daemon().pid()) + " (lock " +
                            spool_lock().string() + ")";
    EXPECT_NE(second.err.find(holder), std::string::npos) << second.err;
    EXPECT_FALSE(stdfs::exists(stdfs::path(other_state) / "imgspool.db"))
        << "the refused daemon opened a database";
    EXPECT_TRUE(daemon_running());
}

TEST_F(InstanceIt, ProcessIsRefusedWhileTheDaemonRuns) {
    start_daemon();
    wait_until_watching();
    const stdfs::path photo = outside() / "photo.jpg";
    write_file(photo, jpeg(13));
    const CommandResult r =
        run_imgspool({"process", "-c", config_path().string(), photo.string()}, root(), 60s);
    EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << "\n" << r.err;
    EXPECT_NE(r.err.find(in_use_by_first("state_dir " + state_dir().string(), state_lock())),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(jobs_for("photo.jpg").empty());
    EXPECT_TRUE(stdfs::exists(photo));
    EXPECT_TRUE(daemon_running());
}

TEST_F(InstanceIt, StatusAndCheckConfigRunBesideTheDaemon) {
    start_daemon();
    wait_until_watching();
    const CommandResult status = run_imgspool({"status", "-c", config_path().string()}, root());
    EXPECT_TRUE(status.status.exited && status.status.code == 0) << status.status.describe() << "\n"
                                                                 << status.err;
    const CommandResult check =
        run_imgspool({"check-config", "-c", config_path().string()}, root());
    EXPECT_TRUE(check.status.exited && check.status.code == 0) << check.status.describe() << "\n"
                                                               << check.err;
    EXPECT_EQ(pid_in(state_lock()), std::to_string(daemon().pid()));
    EXPECT_TRUE(daemon_running());
}

TEST_F(InstanceIt, AfterKillNineANewDaemonStarts) {
    start_daemon();
    wait_until_watching();
    const pid_t first = daemon().pid();
    kill_daemon();
    EXPECT_EQ(pid_in(state_lock()), std::to_string(first)) << "a killed holder leaves its pid";

    start_daemon();
    wait_until_watching("probe-2.jpg");
    EXPECT_EQ(pid_in(state_lock()), std::to_string(daemon().pid()));
    EXPECT_EQ(pid_in(spool_lock()), spool_lock_pid(daemon().pid()));
    // The lock beside inbox/ is no file to process.
    EXPECT_TRUE(jobs_for(".imgspool.lock").empty());
    EXPECT_TRUE(stdfs::exists(spool_lock()));
}

// The watcher's wake-up file lives in state_dir: a crashed daemon leaves nothing in $TMPDIR,
// and restarts reuse the one file.
TEST_F(InstanceIt, AKilledDaemonLeavesNothingInTheTempDirectory) {
    const stdfs::path tmp = root() / "tmp";
    stdfs::create_directories(tmp);
    set_daemon_env({"TMPDIR=" + tmp.string()});
    for (int start = 0; start < 2; ++start) {
        start_daemon();
        wait_until_watching("probe-" + std::to_string(start) + ".jpg");
        kill_daemon();
    }
    EXPECT_EQ(files_under(tmp), std::vector<std::string>{});
    EXPECT_TRUE(stdfs::is_empty(tmp)) << tree();
    std::vector<std::string> wake_files;
    for (const auto& e : stdfs::directory_iterator(state_dir())) {
        if (e.path().filename().string().find("wake") != std::string::npos) {
            wake_files.push_back(e.path().filename().string());
        }
    }
    EXPECT_EQ(wake_files, std::vector<std::string>{"watcher.wake"});
}

}  // namespace
}  // namespace imgspool::it
