#include "watcher/inotify_source.hpp"

#include <gtest/gtest.h>
#include <sys/inotify.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

using namespace imgspool;
using imgspool::testing::put_file;
using imgspool::testing::TempDir;

namespace {

// Reads events until one about `name` arrives (or a few seconds pass).
std::optional<InotifyEvent> next_about(InotifySource& source, const std::string& name) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < until) {
        if (auto e = source.next(); e && e->name == name) return e;
    }
    return std::nullopt;
}

}  // namespace

TEST(InotifySource, OnlyOneActivePerProcess) {
    auto first = InotifySource::open();
    ASSERT_TRUE(first.ok()) << first.error().message();
    auto second = InotifySource::open();
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().stage, Stage::watch);
    EXPECT_NE(second.error().reason.find("already active"), std::string::npos);
    first.value().reset();
    auto third = InotifySource::open();
    EXPECT_TRUE(third.ok());
}

TEST(InotifySource, ReportsEventsOfAWatchedFolder) {
    TempDir dir;
    auto source = InotifySource::open();
    ASSERT_TRUE(source.ok());
    auto wd = (*source)->watch_folder(dir.path());
    ASSERT_TRUE(wd.ok()) << wd.error().message();
    EXPECT_TRUE((*source)->remembers(dir.path()));

    put_file(dir.path() / "a.jpg", "x");
    auto e = next_about(**source, "a.jpg");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->wd, *wd);
}

TEST(InotifySource, RefusesToWatchThroughASymlink) {
    TempDir dir;
    std::filesystem::create_directory(dir.path() / "real");
    std::filesystem::create_directory_symlink(dir.path() / "real", dir.path() / "link");
    auto source = InotifySource::open();
    ASSERT_TRUE(source.ok());
    EXPECT_FALSE((*source)->watch_folder(dir.path() / "link").ok());
}

TEST(InotifySource, WakeEndsAWaitingNextEarly) {
    auto source = InotifySource::open();
    ASSERT_TRUE(source.ok());
    InotifySource& s = **source;
    std::thread waker([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        s.wake();
    });
    // Without the wake-up, next() would wait the library's full second.
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(s.next());
    waker.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

// With a wake_dir (the daemon's state_dir) the wake-up file lives there, is reused by the next
// instance and outlives it: nothing goes to the temp directory, so a crash leaves nothing there.
TEST(InotifySource, WakeFileInTheGivenFolderIsReusedAndKept) {
    TempDir dir;
    const std::filesystem::path wake = dir.path() / "watcher.wake";
    for (int round = 0; round < 2; ++round) {
        auto source = InotifySource::open(dir.path());
        ASSERT_TRUE(source.ok());
        EXPECT_TRUE(std::filesystem::is_regular_file(wake));
        InotifySource& s = **source;
        std::thread waker([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            s.wake();
        });
        const auto start = std::chrono::steady_clock::now();
        EXPECT_FALSE(s.next());
        waker.join();
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
    }
    std::vector<std::string> left;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
        left.push_back(e.path().filename().string());
    }
    EXPECT_EQ(left, std::vector<std::string>{"watcher.wake"});
}

// Without one, a private temporary folder that the destructor removes.
TEST(InotifySource, TemporaryWakeFolderIsRemovedByTheDestructor) {
    TempDir tmp;
    const char* old = std::getenv("TMPDIR");
    const std::string saved = old ? old : "";
    ::setenv("TMPDIR", tmp.path().c_str(), 1);
    {
        auto source = InotifySource::open();
        if (old) {
            ::setenv("TMPDIR", saved.c_str(), 1);
        } else {
            ::unsetenv("TMPDIR");
        }
        ASSERT_TRUE(source.ok());
        EXPECT_FALSE(std::filesystem::is_empty(tmp.path()));
    }
    EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

TEST(InotifySource, InjectedEventComesFirst) {
    auto source = InotifySource::open();
    ASSERT_TRUE(source.ok());
    (*source)->inject(IN_Q_OVERFLOW);
    auto e = (*source)->next();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->mask, static_cast<std::uint32_t>(IN_Q_OVERFLOW));
}

TEST(InotifySource, ResetForgetsDeadWatches) {
    TempDir dir;
    auto source = InotifySource::open();
    ASSERT_TRUE(source.ok());
    InotifySource& s = **source;
    std::filesystem::create_directory(dir.path() / "sub");
    ASSERT_TRUE(s.watch_folder(dir.path() / "sub").ok());
    std::filesystem::remove(dir.path() / "sub");
    // The library keeps the deleted folder's entry...
    EXPECT_TRUE(s.remembers(dir.path() / "sub"));
    ASSERT_TRUE(s.reset().ok());
    EXPECT_FALSE(s.remembers(dir.path() / "sub"));
    // ... and after a reset a new folder of that name works.
    std::filesystem::create_directory(dir.path() / "sub");
    ASSERT_TRUE(s.watch_folder(dir.path() / "sub").ok());
    put_file(dir.path() / "sub" / "b.jpg", "x");
    EXPECT_TRUE(next_about(s, "b.jpg"));
}
