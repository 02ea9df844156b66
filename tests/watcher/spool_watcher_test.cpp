// Real inotify on temporary spools, with a settle time of 300 ms.
#include "watcher/spool_watcher.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <functional>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/fs.hpp"
#include "inotify_watches.hpp"
#include "temp_dir.hpp"
#include "watcher/claim.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;
using namespace std::chrono_literals;
using imgspool::testing::inode_of;
using imgspool::testing::inotify_watched_inodes;
using imgspool::testing::put_file;
using imgspool::testing::TempDir;

namespace {

constexpr auto kSettle = 300ms;
constexpr auto kPatience = 5s;  // longest wait for something that must happen

struct Report {
    StableFile file;
    off_t size_seen = -1;  // lstat size while on_stable ran
};

// Records what the watcher reports; tests wait on it.
class Reports {
  public:
    void add(const StableFile& f) {
        struct stat st {};
        off_t size = ::lstat(f.path.c_str(), &st) == 0 ? st.st_size : -1;
        std::lock_guard lock(mutex_);
        list_.push_back({f, size});
        changed_.notify_all();
    }
    // Waits until at least n reports arrived; returns a copy of all of them.
    std::vector<Report> wait_for(std::size_t n, std::chrono::milliseconds limit = kPatience) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, limit, [&] { return list_.size() >= n; });
        return list_;
    }
    std::vector<Report> all() {
        std::lock_guard lock(mutex_);
        return list_;
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Report> list_;
};

class SpoolWatcherTest : public ::testing::Test {
  protected:
    TempDir dir;
    SpoolLayout spool{"photos", dir.path() / "spool", "web"};
    Reports reports;
    std::unique_ptr<SpoolWatcher> watcher;

    stdfs::path inbox() const { return spool.inbox(); }
    stdfs::path outside() const { return dir.path() / "outside"; }

    void start(std::chrono::seconds rescan = 60s, SpoolWatcher::Callback cb = {}) {
        if (!cb)
            cb = [this](const StableFile& f) {
                reports.add(f);
                return Offer::taken;
            };
        WatcherOptions o{{spool}, kSettle, rescan};
        watcher = std::make_unique<SpoolWatcher>(o, std::move(cb));
        Status st = watcher->start();
        ASSERT_TRUE(st.ok()) << st.error().message();
        ASSERT_TRUE(watcher->armed());
    }
    // The spool with watch = poll every `poll`, and a rescan too rare to find anything in a test:
    // whatever is found after the start-up scan was found by a poll.
    void start_polled(std::chrono::seconds poll = 1s) {
        spool.watch = WatchMode::poll;
        spool.poll = poll;
        start(3600s);
    }
    // Long enough for anything wrongly reported to show up.
    static void quiet_period() { std::this_thread::sleep_for(kSettle * 3); }
    // Polls `done` until it holds or kPatience passes.
    static bool wait_until(const std::function<bool()>& done) {
        const auto deadline = std::chrono::steady_clock::now() + kPatience;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(20ms);
        }
        return true;
    }
};

// A separate raw inotify instance that records IN_OPEN of one file: proof of "never opened".
class OpenProbe {
  public:
    explicit OpenProbe(const stdfs::path& p) : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
        ::inotify_add_watch(fd_.get(), p.c_str(), IN_OPEN | IN_DONT_FOLLOW);
    }
    bool saw_open() {
        alignas(inotify_event) char buf[4096];
        ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n <= 0) return false;
        for (char* p = buf; p < buf + n;) {
            auto* e = reinterpret_cast<inotify_event*>(p);
            if (e->mask & IN_OPEN) return true;
            p += sizeof(inotify_event) + e->len;
        }
        return false;
    }

  private:
    fs::UniqueFd fd_;
};

}  // namespace

TEST_F(SpoolWatcherTest, ReportsACopiedFileOnce) {
    start();
    put_file(inbox() / "a.jpg", "jpeg bytes");
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].file.spool, "photos");
    EXPECT_EQ(got[0].file.relative, "a.jpg");
    EXPECT_EQ(got[0].file.path, inbox() / "a.jpg");
    EXPECT_TRUE(got[0].file.regular);
    EXPECT_EQ(got[0].size_seen, 10);
    quiet_period();
    EXPECT_EQ(reports.all().size(), 1u);  // unchanged and not claimed: not reported again
}

TEST_F(SpoolWatcherTest, ReportsAFileMovedInFromOutside) {
    start();
    put_file(outside() / "b.jpg.part", "12345");
    stdfs::rename(outside() / "b.jpg.part", inbox() / "b.jpg");
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].file.relative, "b.jpg");
}

TEST_F(SpoolWatcherTest, SlowWriterIsReportedOnceAfterTheLastPiece) {
    start();
    const std::string piece(1000, 'x');
    {
        fs::UniqueFd fd(::open((inbox() / "slow.jpg").c_str(), O_WRONLY | O_CREAT, 0644));
        ASSERT_TRUE(fd.valid());
        for (int i = 0; i < 15; ++i) {  // ~1.5 s of pieces, each gap shorter than settle
            ASSERT_EQ(::write(fd.get(), piece.data(), piece.size()), 1000);
            std::this_thread::sleep_for(100ms);
        }
    }
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].size_seen, 15000);
    quiet_period();
    EXPECT_EQ(reports.all().size(), 1u);
}

TEST_F(SpoolWatcherTest, WriterThatClosesBetweenPiecesIsReportedOnce) {
    start();
    const std::string piece(1000, 'y');
    for (int i = 0; i < 15; ++i) {  // every piece ends with IN_CLOSE_WRITE
        std::ofstream(inbox() / "append.jpg", std::ios::app | std::ios::binary) << piece;
        std::this_thread::sleep_for(100ms);
    }
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].size_seen, 15000);
    quiet_period();
    EXPECT_EQ(reports.all().size(), 1u);
}

TEST_F(SpoolWatcherTest, WatchesSubfoldersCreatedOrMovedInAfterStart) {
    start();
    put_file(inbox() / "new" / "deeper" / "c.jpg", "c");
    // A folder that arrives with a file already inside: only a scan can see that file.
    put_file(outside() / "batch" / "d.jpg", "d");
    stdfs::rename(outside() / "batch", inbox() / "batch");
    auto got = reports.wait_for(2);
    ASSERT_EQ(got.size(), 2u);
    std::set<stdfs::path> names{got[0].file.relative, got[1].file.relative};
    EXPECT_EQ(names, (std::set<stdfs::path>{"new/deeper/c.jpg", "batch/d.jpg"}));
    EXPECT_EQ(got[0].file.path, inbox() / got[0].file.relative);
}

TEST_F(SpoolWatcherTest, TemporaryNamesWaitUntilRenamed) {
    start();
    put_file(inbox() / "e.jpg.part", "e");
    put_file(inbox() / ".e.jpg.Ab12Cd", "rsync temp");
    put_file(inbox() / "e.jpg.crdownload", "browser");
    quiet_period();
    EXPECT_TRUE(reports.all().empty());
    stdfs::rename(inbox() / "e.jpg.part", inbox() / "e.jpg");
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].file.relative, "e.jpg");
}

TEST_F(SpoolWatcherTest, DotfilesAndHiddenFoldersAreIgnored) {
    put_file(inbox() / ".hidden" / "old.jpg", "present before start");
    start();
    put_file(inbox() / ".DS_Store", "x");
    put_file(inbox() / ".hidden" / "f.jpg", "f");
    put_file(inbox() / ".sync" / "g.jpg", "g");
    put_file(inbox() / "marker.jpg", "m");
    auto got = reports.wait_for(1);
    quiet_period();
    got = reports.all();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].file.relative, "marker.jpg");
}

TEST_F(SpoolWatcherTest, FifoAndSymlinksAreReportedAsNotRegularAndNeverOpened) {
    put_file(outside() / "target.jpg", "someone else's file");
    put_file(outside() / "folder" / "inner.jpg", "behind a symlinked folder");
    start();
    ASSERT_EQ(::mkfifo((inbox() / "pipe.jpg").c_str(), 0644), 0);
    OpenProbe fifo_probe(inbox() / "pipe.jpg");
    OpenProbe target_probe(outside() / "target.jpg");
    stdfs::create_symlink(outside() / "target.jpg", inbox() / "link.jpg");
    stdfs::create_directory_symlink(outside() / "folder", inbox() / "linked-folder");

    auto got = reports.wait_for(3);
    ASSERT_EQ(got.size(), 3u);
    for (const Report& r : got) {
        EXPECT_FALSE(r.file.regular) << r.file.relative;
        EXPECT_NE(r.file.relative, "linked-folder/inner.jpg");
    }
    quiet_period();
    EXPECT_EQ(reports.all().size(), 3u);

    EXPECT_FALSE(fifo_probe.saw_open());
    EXPECT_FALSE(target_probe.saw_open());
    // Nobody holds the FIFO open for reading: a non-blocking writer finds no reader.
    errno = 0;
    EXPECT_EQ(::open((inbox() / "pipe.jpg").c_str(), O_WRONLY | O_NONBLOCK), -1);
    EXPECT_EQ(errno, ENXIO);
    // The probes do see an open when one happens.
    fs::UniqueFd opened(::open((outside() / "target.jpg").c_str(), O_RDONLY));
    EXPECT_TRUE(target_probe.saw_open());
}

TEST_F(SpoolWatcherTest, StartUpScanFindsFilesAlreadyThere) {
    put_file(inbox() / "early.jpg", "e");
    put_file(inbox() / "sub" / "early2.jpg", "e2");
    start();
    auto got = reports.wait_for(2);
    EXPECT_EQ(got.size(), 2u);
}

// Rescan-only discovery uses the drop_events_for_test hook: inotify events are read and thrown
// away, as on an NFS mount where other machines' writes produce none.
TEST_F(SpoolWatcherTest, PeriodicRescanFindsFilesWithoutEvents) {
    start(1s);
    watcher->drop_events_for_test(true);
    put_file(inbox() / "nfs" / "h.jpg", "h");
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].file.relative, "nfs/h.jpg");
    EXPECT_GE(watcher->stats().rescans.load(), 1u);
}

TEST_F(SpoolWatcherTest, QueueOverflowTriggersARescanAtOnce) {
    start(60s);
    watcher->drop_events_for_test(true);
    put_file(inbox() / "lost.jpg", "its events were lost");
    quiet_period();
    ASSERT_TRUE(reports.all().empty());
    EXPECT_EQ(watcher->stats().rescans.load(), 0u);

    watcher->inject_event_for_test(IN_Q_OVERFLOW);
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].file.relative, "lost.jpg");
    EXPECT_EQ(watcher->stats().overflows.load(), 1u);
    EXPECT_EQ(watcher->stats().rescans.load(), 1u);
}

TEST_F(SpoolWatcherTest, ChangedFileIsReportedAgain) {
    start();
    put_file(inbox() / "i.jpg", "first");
    ASSERT_EQ(reports.wait_for(1).size(), 1u);
    std::ofstream(inbox() / "i.jpg", std::ios::app) << " and more";
    auto got = reports.wait_for(2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].size_seen, 14);
}

TEST_F(SpoolWatcherTest, ReaderKeepsDrainingWhileTheCallbackBlocks) {
    std::mutex gate_mutex;
    std::condition_variable gate_cv;
    bool open = false;
    start(60s, [&](const StableFile& f) {
        reports.add(f);
        std::unique_lock lock(gate_mutex);
        gate_cv.wait(lock, [&] { return open; });
        return Offer::taken;
    });
    put_file(inbox() / "first.jpg", "1");
    ASSERT_EQ(reports.wait_for(1).size(), 1u);  // now blocked inside on_stable
    const auto events_before = watcher->stats().events.load();
    put_file(inbox() / "second.jpg", "2");
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (watcher->stats().events.load() == events_before &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_GT(watcher->stats().events.load(), events_before);
    EXPECT_EQ(reports.all().size(), 1u);
    {
        std::lock_guard lock(gate_mutex);
        open = true;
    }
    gate_cv.notify_all();
    EXPECT_EQ(reports.wait_for(2).size(), 2u);
    watcher->stop();  // the callback uses this test's locals: no call after they are gone
}

TEST_F(SpoolWatcherTest, CallbackCanClaimTheFile) {
    start(60s, [&](const StableFile& f) {
        auto c = claim(spool, f.path, "upload-1");
        EXPECT_TRUE(c.ok()) << c.error().message();
        reports.add(f);
        return Offer::taken;
    });
    put_file(inbox() / "sub" / "k.jpg", "k");
    ASSERT_EQ(reports.wait_for(1).size(), 1u);
    EXPECT_TRUE(stdfs::exists(spool.work() / "upload-1" / "sub" / "k.jpg"));
    quiet_period();
    EXPECT_EQ(reports.all().size(), 1u);
}

TEST_F(SpoolWatcherTest, StopReturnsPromptlyAndIsIdempotent) {
    start();
    std::this_thread::sleep_for(100ms);  // let the reader settle into its wait
    auto begin = std::chrono::steady_clock::now();
    watcher->stop();
    // The library waits in whole seconds; the wake-up must cut that short.
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 900ms);
    EXPECT_FALSE(watcher->armed());
    watcher->stop();
    put_file(inbox() / "after-stop.jpg", "x");
    quiet_period();
    EXPECT_TRUE(reports.all().empty());
}

TEST_F(SpoolWatcherTest, SecondActiveWatcherIsRefused) {
    start();
    SpoolLayout other{"other", dir.path() / "other", "web"};
    SpoolWatcher second({{other}, kSettle, 60s}, [](const StableFile&) { return Offer::taken; });
    Status st = second.start();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::watch);
    EXPECT_NE(st.error().reason.find("already active"), std::string::npos);
    EXPECT_FALSE(second.armed());

    watcher->stop();
    SpoolWatcher third({{other}, kSettle, 60s}, [](const StableFile&) { return Offer::taken; });
    EXPECT_TRUE(third.start().ok());
}

TEST_F(SpoolWatcherTest, FolderDeletedAndRecreatedIsWatchedAgain) {
    start();
    put_file(inbox() / "batch" / "l.jpg", "l");
    ASSERT_EQ(reports.wait_for(1).size(), 1u);
    stdfs::remove_all(inbox() / "batch");
    std::this_thread::sleep_for(100ms);
    put_file(inbox() / "batch" / "m.jpg", "m");
    auto got = reports.wait_for(2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].file.relative, "batch/m.jpg");
}

TEST_F(SpoolWatcherTest, FolderRenamedInsideTheInboxIsFollowed) {
    start();
    stdfs::create_directory(inbox() / "uploading");
    std::this_thread::sleep_for(100ms);  // let the watcher pick the folder up
    stdfs::rename(inbox() / "uploading", inbox() / "ready");
    std::this_thread::sleep_for(100ms);
    put_file(inbox() / "ready" / "n.jpg", "n");
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].file.relative, "ready/n.jpg");
    EXPECT_EQ(got[0].size_seen, 1);
}

namespace {

// A PNG by its structure only (signature, one chunk, IEND): enough for the format check.
std::string png_head() {
    return std::string("\x89PNG\r\n\x1a\n", 8) + std::string("\0\0\0\x04", 4) + "tEXt" + "abcd" +
           std::string(4, '\0');
}
std::string png_tail() {
    return std::string("\0\0\0\0", 4) + "IEND" + std::string("\xae\x42\x60\x82", 4);
}

}  // namespace

TEST_F(SpoolWatcherTest, AFileOpenForWritingIsNotReportedUntilItIsClosed) {
    start(1s);  // an open file sends no close event: the rescan finds it
    const stdfs::path p = inbox() / "held.bin";
    std::FILE* f = std::fopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("some bytes", f);
    std::fflush(f);
    quiet_period();  // far longer than settle, and nothing changes: only the writer is there
    EXPECT_TRUE(reports.all().empty());
    ASSERT_TRUE(wait_until([&] { return !watcher->waiting_files().empty(); }));
    EXPECT_EQ(watcher->waiting_files()[0].reason, "open for writing by another process");
    std::fclose(f);
    EXPECT_EQ(reports.wait_for(1).size(), 1u);
}

TEST_F(SpoolWatcherTest, AnIncompleteFileWaitsListedWithItsReasonUntilItIsWhole) {
    start();
    const stdfs::path p = inbox() / "slow.png";
    put_file(p, png_head());
    ASSERT_TRUE(wait_until([&] { return !watcher->waiting_files().empty(); }));
    const auto waiting = watcher->waiting_files();
    EXPECT_EQ(waiting[0].relative, "slow.png");
    EXPECT_EQ(waiting[0].spool, "photos");
    EXPECT_EQ(waiting[0].size, png_head().size());
    EXPECT_NE(waiting[0].reason.find("PNG"), std::string::npos) << waiting[0].reason;
    EXPECT_TRUE(reports.all().empty());
    std::ofstream(p, std::ios::binary | std::ios::app) << png_tail();
    ASSERT_EQ(reports.wait_for(1).size(), 1u);
    EXPECT_TRUE(reports.all()[0].file.abandoned.empty());
    // Listed until the callback has returned.
    EXPECT_TRUE(wait_until([&] { return watcher->waiting_files().empty(); }));
}

TEST_F(SpoolWatcherTest, AFileIncompleteTooLongIsReportedAbandonedWithTheReason) {
    WatcherOptions o{{spool}, kSettle, 60s};
    o.abandon_after = 1s;
    watcher = std::make_unique<SpoolWatcher>(o, [this](const StableFile& f) {
        reports.add(f);
        return Offer::taken;
    });
    ASSERT_TRUE(watcher->start().ok());
    put_file(inbox() / "cut.png", png_head());
    auto got = reports.wait_for(1, 10s);
    ASSERT_EQ(got.size(), 1u);
    const std::string& why = got[0].file.abandoned;
    EXPECT_NE(why.find("incomplete PNG"), std::string::npos) << why;
    EXPECT_NE(why.find("unchanged for"), std::string::npos) << why;
    EXPECT_NE(why.find(std::to_string(png_head().size()) + " bytes"), std::string::npos) << why;
}

TEST_F(SpoolWatcherTest, TryLaterOffersTheFileAgain) {
    std::atomic<int> offers{0};
    start(60s, [&](const StableFile& f) {
        if (++offers < 3) return Offer::try_later;
        reports.add(f);
        return Offer::taken;
    });
    put_file(inbox() / "again.jpg", "x");
    EXPECT_EQ(reports.wait_for(1).size(), 1u);
    EXPECT_EQ(offers.load(), 3);
}

// watch = "poll": no inotify watch at all on the spool (other hosts' writes to an NFS inbox
// produce no events), a listing every poll period, and the same settling and checks.

TEST_F(SpoolWatcherTest, APollSpoolArmsNoInotifyWatchWhileAWatchedSpoolDoes) {
    const SpoolLayout watched{"watched", dir.path() / "watched", "web"};
    SpoolLayout polled{"polled", dir.path() / "polled", "web", WatchMode::poll, 1s};
    put_file(polled.inbox() / "sub" / "early.jpg", "in a subfolder before the start");
    watcher = std::make_unique<SpoolWatcher>(WatcherOptions{{watched, polled}, kSettle, 3600s},
                                             [this](const StableFile& f) {
                                                 reports.add(f);
                                                 return Offer::taken;
                                             });
    ASSERT_TRUE(watcher->start().ok());
    ASSERT_EQ(reports.wait_for(1).size(), 1u);  // the start-up scan lists a poll spool too
    put_file(polled.inbox() / "later" / "new.jpg", "in a subfolder made after the start");
    ASSERT_EQ(reports.wait_for(2).size(), 2u);

    const std::set<ino_t> watched_inodes = inotify_watched_inodes(::getpid());
    EXPECT_TRUE(watched_inodes.contains(inode_of(watched.inbox())));  // the probe sees watches
    EXPECT_FALSE(watched_inodes.contains(inode_of(polled.inbox())));
    EXPECT_FALSE(watched_inodes.contains(inode_of(polled.inbox() / "sub")));
    EXPECT_FALSE(watched_inodes.contains(inode_of(polled.inbox() / "later")));
    EXPECT_EQ(reports.all()[1].file.spool, "polled");
    EXPECT_EQ(reports.all()[1].file.relative, "later/new.jpg");
    EXPECT_GE(watcher->stats().polls.load(), 1u);
    EXPECT_EQ(watcher->stats().events.load(), 0u);  // nothing came through inotify
}

TEST_F(SpoolWatcherTest, APollPeriodUnderASecondIsRefused) {
    spool.watch = WatchMode::poll;
    spool.poll = 0s;
    SpoolWatcher w({{spool}, kSettle, 60s}, [](const StableFile&) { return Offer::taken; });
    Status st = w.start();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::config);
    EXPECT_EQ(st.error().reason, "spool photos: poll must be at least one second");
    EXPECT_FALSE(w.armed());
}

TEST_F(SpoolWatcherTest, APollSpoolIsListedEveryPollPeriod) {
    start_polled(1s);
    const auto polls_at_start = watcher->stats().polls.load();
    std::this_thread::sleep_for(3500ms);
    const auto polls = watcher->stats().polls.load() - polls_at_start;
    // About every second (3 here; a loaded machine may lose one), never more often.
    EXPECT_GE(polls, 2u);
    EXPECT_LE(polls, 4u);
    put_file(inbox() / "p.jpg", "p");
    const auto dropped = std::chrono::steady_clock::now();
    ASSERT_EQ(reports.wait_for(1).size(), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - dropped, 1s + kSettle + 1s);
    EXPECT_EQ(watcher->stats().rescans.load(), 0u);
}

TEST_F(SpoolWatcherTest, APollSpoolReportsASlowWriterOnceAfterTheLastPiece) {
    start_polled(1s);
    const std::string piece(1000, 'x');
    {
        fs::UniqueFd fd(::open((inbox() / "slow.jpg").c_str(), O_WRONLY | O_CREAT, 0644));
        ASSERT_TRUE(fd.valid());
        for (int i = 0; i < 25; ++i) {  // ~2.5 s of pieces: polls find it half written
            ASSERT_EQ(::write(fd.get(), piece.data(), piece.size()), 1000);
            std::this_thread::sleep_for(100ms);
        }
    }
    auto got = reports.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].size_seen, 25000);
    std::this_thread::sleep_for(2s);  // two more polls of the unchanged, unclaimed file
    EXPECT_EQ(reports.all().size(), 1u);
}

TEST_F(SpoolWatcherTest, APollSpoolKeepsAnOpenOrIncompleteFileWaitingWithItsReason) {
    start_polled(1s);
    const stdfs::path held = inbox() / "held.bin";
    std::FILE* f = std::fopen(held.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("some bytes", f);
    std::fflush(f);
    const stdfs::path cut = inbox() / "cut.png";
    put_file(cut, png_head());
    ASSERT_TRUE(wait_until([&] { return watcher->waiting_files().size() == 2; }));
    std::map<stdfs::path, std::string> reasons;
    for (const WaitingFileInfo& w : watcher->waiting_files()) reasons[w.relative] = w.reason;
    EXPECT_EQ(reasons["held.bin"], "open for writing by another process");
    EXPECT_NE(reasons["cut.png"].find("PNG"), std::string::npos) << reasons["cut.png"];
    EXPECT_TRUE(reports.all().empty());

    std::fclose(f);
    std::ofstream(cut, std::ios::binary | std::ios::app) << png_tail();
    auto got = reports.wait_for(2);
    ASSERT_EQ(got.size(), 2u);
    for (const Report& r : got) EXPECT_TRUE(r.file.abandoned.empty()) << r.file.relative;
    EXPECT_TRUE(wait_until([&] { return watcher->waiting_files().empty(); }));
}

TEST_F(SpoolWatcherTest, APollSpoolReportsAChangedOrReplacedFileAgain) {
    start_polled(1s);
    put_file(inbox() / "i.jpg", "first");
    ASSERT_EQ(reports.wait_for(1).size(), 1u);
    std::ofstream(inbox() / "i.jpg", std::ios::app) << " and more";
    auto got = reports.wait_for(2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].size_seen, 14);

    // Deleted, then a new file by the same name: reported as the new file it is.
    stdfs::remove(inbox() / "i.jpg");
    std::this_thread::sleep_for(1500ms);
    put_file(inbox() / "i.jpg", "first and more");
    got = reports.wait_for(3);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[2].file.relative, "i.jpg");
}
