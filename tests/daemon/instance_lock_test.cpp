#include "daemon/instance_lock.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace imgspool {
namespace {

namespace stdfs = std::filesystem;

class InstanceLockTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = "/tmp/imgspool-lock-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        stdfs::remove_all(dir_, ec);
    }

    Config config_with(const stdfs::path& state, const std::vector<stdfs::path>& roots) const {
        Config c;
        c.daemon.state_dir = state;
        for (std::size_t i = 0; i < roots.size(); ++i) {
            c.spools.push_back(SpoolLayout{"s" + std::to_string(i), roots[i], "web"});
        }
        return c;
    }

    Config pg_config_with(const stdfs::path& state, const std::vector<stdfs::path>& roots) const {
        Config c = config_with(state, roots);
        c.database.url = "postgresql://imgspool@127.0.0.1/imgspool";
        return c;
    }

    // A child process that takes the lock on `file`, then waits to be killed.
    pid_t hold_in_child(const stdfs::path& file, LockMode mode = LockMode::exclusive) {
        int ready[2];
        if (::pipe(ready) != 0) return -1;
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::close(ready[0]);
            auto lock = InstanceLock::acquire(file, "test", mode);
            const char answer = lock ? 'y' : 'n';
            if (::write(ready[1], &answer, 1) != 1) ::_exit(3);
            for (;;) ::pause();
        }
        ::close(ready[1]);
        char answer = 0;
        const bool got = ::read(ready[0], &answer, 1) == 1 && answer == 'y';
        ::close(ready[0]);
        if (!got && pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            return -1;
        }
        return pid;
    }

    stdfs::path dir_;
};

TEST_F(InstanceLockTest, WritesThePidOfTheHolder) {
    const stdfs::path file = dir_ / "state" / "imgspool.lock";  // the folder does not exist yet
    auto lock = InstanceLock::acquire(file, "state_dir " + (dir_ / "state").string());
    ASSERT_TRUE(lock) << lock.error().message();
    EXPECT_EQ(lock->file(), file);
    EXPECT_EQ(lock_holder_pid(file), ::getpid());
}

TEST_F(InstanceLockTest, ASecondLockIsRefusedNamingTheHolderAndThePath) {
    const stdfs::path file = dir_ / "imgspool.lock";
    auto first = InstanceLock::acquire(file, "state_dir " + dir_.string());
    ASSERT_TRUE(first);
    auto second = InstanceLock::acquire(file, "state_dir " + dir_.string());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().reason, "state_dir " + dir_.string() + " is in use by imgspool pid " +
                                         std::to_string(::getpid()) + " (lock " + file.string() +
                                         ")");
    EXPECT_EQ(lock_holder_pid(file), ::getpid()) << "the refused attempt changed the file";
}

TEST_F(InstanceLockTest, ReleasedWhenTheHolderGoesAway) {
    const stdfs::path file = dir_ / "imgspool.lock";
    {
        auto first = InstanceLock::acquire(file, "x");
        ASSERT_TRUE(first);
    }
    EXPECT_TRUE(InstanceLock::acquire(file, "x"));
}

TEST_F(InstanceLockTest, AnotherProcessHoldsItUntilKilled) {
    const stdfs::path file = dir_ / "imgspool.lock";
    const pid_t child = hold_in_child(file);
    ASSERT_GT(child, 0) << "the child could not take the lock";

    auto refused = InstanceLock::acquire(file, "state_dir " + dir_.string());
    EXPECT_FALSE(refused);
    if (!refused) {
        EXPECT_NE(refused.error().reason.find("imgspool pid " + std::to_string(child) + " "),
                  std::string::npos)
            << refused.error().reason;
    }

    // kill -9 leaves the file with the dead pid in it, and no lock: the next one takes it.
    ::kill(child, SIGKILL);
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    EXPECT_EQ(lock_holder_pid(file), child);
    auto after = InstanceLock::acquire(file, "state_dir " + dir_.string());
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_EQ(lock_holder_pid(file), ::getpid());
}

TEST_F(InstanceLockTest, HolderPidOfAFileWithoutOneIsUnknown) {
    EXPECT_EQ(lock_holder_pid(dir_ / "missing.lock"), -1);
    std::FILE* f = std::fopen((dir_ / "garbage.lock").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("12ab\n", f);
    std::fclose(f);
    EXPECT_EQ(lock_holder_pid(dir_ / "garbage.lock"), -1);
}

TEST_F(InstanceLockTest, TheInstanceLocksTheStateDirAndEverySpoolRoot) {
    const Config config = config_with(dir_ / "state", {dir_ / "a", dir_ / "b"});
    auto locks = lock_instance(config);
    ASSERT_TRUE(locks) << locks.error().message();
    ASSERT_EQ(locks->size(), 3u);
    EXPECT_EQ(lock_holder_pid(dir_ / "state" / "imgspool.lock"), ::getpid());
    EXPECT_EQ(lock_holder_pid(dir_ / "a" / ".imgspool.lock"), ::getpid());
    EXPECT_EQ(lock_holder_pid(dir_ / "b" / ".imgspool.lock"), ::getpid());

    // The same state_dir: refused on it.
    auto same_state = lock_instance(config_with(dir_ / "state", {dir_ / "c"}));
    ASSERT_FALSE(same_state);
    EXPECT_EQ(same_state.error().reason.rfind(
                  "state_dir " + (dir_ / "state").string() + " is in use by imgspool pid ", 0),
              0u)
        << same_state.error().reason;

    // Another state_dir but one spool root in common: refused on that root, and the new
    // state_dir's lock taken meanwhile is released again.
    auto same_root = lock_instance(config_with(dir_ / "state2", {dir_ / "c", dir_ / "b"}));
    ASSERT_FALSE(same_root);
    EXPECT_NE(same_root.error().reason.find("spool root " + (dir_ / "b").string()),
              std::string::npos)
        << same_root.error().reason;
    EXPECT_NE(same_root.error().reason.find("(lock " + (dir_ / "b" / ".imgspool.lock").string()),
              std::string::npos)
        << same_root.error().reason;
    EXPECT_TRUE(InstanceLock::acquire(dir_ / "state2" / "imgspool.lock", "state2"));
    EXPECT_TRUE(InstanceLock::acquire(dir_ / "c" / ".imgspool.lock", "c"));
}

// Descriptors of this process open on `file` (from /proc/self/fd).
int descriptors_on(const stdfs::path& file) {
    const stdfs::path target = stdfs::canonical(file);
    int n = 0;
    std::error_code ec;
    for (const auto& fd : stdfs::directory_iterator("/proc/self/fd", ec)) {
        std::error_code link_ec;
        if (stdfs::read_symlink(fd.path(), link_ec) == target) ++n;
    }
    return n;
}

void kill_child(pid_t child) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
}

TEST_F(InstanceLockTest, SeveralSharedHoldersAreFineAndWriteNoPid) {
    const stdfs::path file = dir_ / "root" / ".imgspool.lock";
    const pid_t child = hold_in_child(file, LockMode::shared);
    ASSERT_GT(child, 0) << "the child could not take the shared lock";
    auto mine =
        InstanceLock::acquire(file, "spool root " + (dir_ / "root").string(), LockMode::shared);
    EXPECT_TRUE(mine) << mine.error().message();
    EXPECT_EQ(lock_holder_pid(file), -1) << "a shared holder wrote a pid";
    kill_child(child);
}

TEST_F(InstanceLockTest, SharedHoldersRefuseAnExclusiveOneNamingTheNodes) {
    const stdfs::path root = dir_ / "root";
    const stdfs::path file = root / ".imgspool.lock";
    const pid_t child = hold_in_child(file, LockMode::shared);
    ASSERT_GT(child, 0) << "the child could not take the shared lock";
    auto refused = InstanceLock::acquire(file, "spool root " + root.string());
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().reason,
              "spool root " + root.string() +
                  " is used by imgspool nodes sharing a database (shared lock on " + file.string() +
                  "); a SQLite daemon cannot join them");
    // The refusal's probe let go again: another node still joins, a SQLite daemon still cannot.
    EXPECT_TRUE(InstanceLock::acquire(file, "x", LockMode::shared));
    kill_child(child);
    EXPECT_TRUE(InstanceLock::acquire(file, "x")) << "the last shared holder is gone";
}

TEST_F(InstanceLockTest, AnExclusiveHolderRefusesASharedOneNamingItsPid) {
    const stdfs::path root = dir_ / "root";
    const stdfs::path file = root / ".imgspool.lock";
    const pid_t child = hold_in_child(file);
    ASSERT_GT(child, 0) << "the child could not take the lock";
    auto refused = InstanceLock::acquire(file, "spool root " + root.string(), LockMode::shared);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().reason, "spool root " + root.string() +
                                          " is in use by imgspool pid " + std::to_string(child) +
                                          " (SQLite)");
    EXPECT_EQ(lock_holder_pid(file), child) << "the refused attempt changed the file";
    kill_child(child);
}

TEST_F(InstanceLockTest, NodesSharingADatabaseShareSpoolRootsButNotStateDirs) {
    EXPECT_EQ(spool_lock_mode(config_with(dir_ / "s", {})), LockMode::exclusive);
    EXPECT_EQ(spool_lock_mode(pg_config_with(dir_ / "s", {})), LockMode::shared);

    auto node_a = lock_instance(pg_config_with(dir_ / "state-a", {dir_ / "x", dir_ / "y"}));
    ASSERT_TRUE(node_a) << node_a.error().message();
    auto node_b = lock_instance(pg_config_with(dir_ / "state-b", {dir_ / "y"}));
    ASSERT_TRUE(node_b) << node_b.error().message();
    EXPECT_EQ(lock_holder_pid(dir_ / "state-b" / "imgspool.lock"), ::getpid());
    EXPECT_EQ(lock_holder_pid(dir_ / "y" / ".imgspool.lock"), -1);

    // A state_dir stays one node's.
    auto same_state = lock_instance(pg_config_with(dir_ / "state-a", {dir_ / "z"}));
    ASSERT_FALSE(same_state);
    EXPECT_EQ(same_state.error().reason.rfind(
                  "state_dir " + (dir_ / "state-a").string() + " is in use by imgspool pid ", 0),
              0u)
        << same_state.error().reason;

    // A SQLite daemon on a shared root is refused, and the reverse.
    auto sqlite = lock_instance(config_with(dir_ / "state-c", {dir_ / "y"}));
    ASSERT_FALSE(sqlite);
    EXPECT_NE(sqlite.error().reason.find("a SQLite daemon cannot join them"), std::string::npos)
        << sqlite.error().reason;
    auto sqlite_alone = lock_instance(config_with(dir_ / "state-c", {dir_ / "w"}));
    ASSERT_TRUE(sqlite_alone) << sqlite_alone.error().message();
    auto node_on_sqlite = lock_instance(pg_config_with(dir_ / "state-d", {dir_ / "w"}));
    ASSERT_FALSE(node_on_sqlite);
    EXPECT_NE(node_on_sqlite.error().reason.find(" (SQLite)"), std::string::npos)
        << node_on_sqlite.error().reason;
}

// On NFS a flock is a POSIX lock, which the kernel drops when the holding process closes any
// descriptor of the file: a holder keeps exactly its one descriptor, also while other processes
// are refused.
TEST_F(InstanceLockTest, AHolderHasExactlyOneDescriptorOnEachLockFile) {
    const Config config = pg_config_with(dir_ / "state", {dir_ / "a"});
    auto locks = lock_instance(config);
    ASSERT_TRUE(locks) << locks.error().message();
    const pid_t child = ::fork();
    if (child == 0) {
        // Refused on the state_dir: reads the holder's pid from the file, in this process only.
        ::_exit(lock_instance(config) ? 1 : 0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the second instance started";
    EXPECT_EQ(descriptors_on(dir_ / "state" / "imgspool.lock"), 1);
    EXPECT_EQ(descriptors_on(dir_ / "a" / ".imgspool.lock"), 1);
}

}  // namespace
}  // namespace imgspool
