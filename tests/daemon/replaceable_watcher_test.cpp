#include "daemon/replaceable_watcher.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace imgspool {
namespace {

using namespace std::chrono_literals;
namespace stdfs = std::filesystem;

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (done()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return done();
}

// A PNG signature and an IEND chunk: whole by its format, which is all the watcher asks.
const std::string kPng =
    std::string("\x89PNG\r\n\x1a\n", 8) + std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12);

class ReplaceableWatcherTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/imgspool-replaceable-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        watcher_.stop();
        stdfs::remove_all(dir_);
    }

    SpoolLayout spool(const std::string& name) const { return {name, dir_ / name, "web"}; }
    WatcherOptions options(std::vector<SpoolLayout> spools) const {
        WatcherOptions o{std::move(spools), 50ms, 1s};
        o.wake_dir = dir_;
        return o;
    }
    void drop(const std::string& spool, const std::string& name) {
        std::ofstream(dir_ / spool / "inbox" / name, std::ios::binary) << kPng;
    }
    bool reported(const std::string& spool, const std::string& name) {
        std::lock_guard lock(mutex_);
        return reported_.contains(spool + "/" + name);
    }

    stdfs::path dir_;
    std::mutex mutex_;
    std::set<std::string> reported_;
    ReplaceableWatcher watcher_{[this](const StableFile& f) {
        std::lock_guard lock(mutex_);
        reported_.insert(f.spool + "/" + f.relative.string());
        return Offer::taken;
    }};
};

TEST_F(ReplaceableWatcherTest, AReplacedWatcherReportsTheFilesOfTheNewSpoolsOnly) {
    ASSERT_TRUE(watcher_.start(options({spool("a")})).ok());
    drop("a", "1.png");
    EXPECT_TRUE(eventually([&] { return reported("a", "1.png"); }));

    ASSERT_TRUE(watcher_.replace(options({spool("a"), spool("b")})).ok());
    EXPECT_TRUE(watcher_.armed());
    drop("b", "2.png");
    EXPECT_TRUE(eventually([&] { return reported("b", "2.png"); }));

    ASSERT_TRUE(watcher_.replace(options({spool("b")})).ok());
    drop("a", "3.png");
    drop("b", "4.png");
    EXPECT_TRUE(eventually([&] { return reported("b", "4.png"); }));
    std::this_thread::sleep_for(1500ms);  // past a rescan
    EXPECT_FALSE(reported("a", "3.png"));
}

TEST_F(ReplaceableWatcherTest, AWatcherThatCannotStartLeavesTheOldSpoolsWatched) {
    ASSERT_TRUE(watcher_.start(options({spool("a")})).ok());
    // An inbox that cannot be created: a file where the spool root should be a folder.
    std::ofstream(dir_ / "blocked") << "not a folder";
    EXPECT_FALSE(watcher_.replace(options({spool("a"), spool("blocked")})).ok());
    EXPECT_TRUE(watcher_.armed());
    drop("a", "after.png");
    EXPECT_TRUE(eventually([&] { return reported("a", "after.png"); }));
}

// What /metrics and /readyz ask, from another thread, while the main thread replaces the
// watcher again and again (run under TSan): the counters never go back.
TEST_F(ReplaceableWatcherTest, CountersAreReadableWhileTheWatcherIsReplaced) {
    ASSERT_TRUE(watcher_.start(options({spool("a")})).ok());
    std::atomic<bool> done{false};
    std::atomic<int> went_back{0};
    std::thread reader([&] {
        std::uint64_t last = 0;
        while (!done) {
            (void)watcher_.armed();
            (void)watcher_.waiting_files();
            (void)watcher_.overflows();
            const std::uint64_t now = watcher_.rescans();
            if (now < last) ++went_back;
            last = now;
        }
    });
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(watcher_.replace(options({spool("a"), spool(i % 2 ? "b" : "c")})).ok());
    }
    done = true;
    reader.join();
    EXPECT_EQ(went_back.load(), 0);
    EXPECT_TRUE(watcher_.armed());
}

}  // namespace
}  // namespace imgspool
