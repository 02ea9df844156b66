#include "watcher/settle_tracker.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace imgspool;
using namespace std::chrono_literals;

namespace {

class SettleTrackerTest : public ::testing::Test {
  protected:
    SettleTracker tracker{300ms, 30s};
    SettleTracker::TimePoint t0{};
    FileKey key{0, "a.jpg"};

    static FileState state(off_t size, std::int64_t mtime) {
        FileState s;
        s.type = S_IFREG;
        s.ino = 7;
        s.size = size;
        s.mtime_ns = mtime;
        return s;
    }
    // One settler tick: what lstat sees now for `key`.
    std::vector<FileKey> tick(std::optional<FileState> seen, std::chrono::milliseconds at) {
        std::vector<FileKey> keys;
        for (const auto& [k, s] : tracker.settled({{key, seen}}, t0 + at)) keys.push_back(k);
        return keys;
    }
};

}  // namespace

TEST_F(SettleTrackerTest, ReportsAfterSettleWhenNothingChanges) {
    tracker.noticed(key, state(10, 1), t0);
    EXPECT_EQ(tracker.waiting().size(), 1u);
    EXPECT_TRUE(tick(state(10, 1), 299ms).empty());
    auto due = tick(state(10, 1), 300ms);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].relative, "a.jpg");
    EXPECT_TRUE(tracker.waiting().empty());  // in flight: never returned twice
    EXPECT_TRUE(tick(state(10, 1), 900ms).empty());
}

TEST_F(SettleTrackerTest, SizeChangeRestartsTheTimer) {
    tracker.noticed(key, state(10, 1), t0);
    EXPECT_TRUE(tick(state(20, 1), 200ms).empty());
    EXPECT_TRUE(tick(state(20, 1), 450ms).empty());
    EXPECT_EQ(tick(state(20, 1), 500ms).size(), 1u);
}

TEST_F(SettleTrackerTest, MtimeChangeAloneRestartsTheTimer) {
    // Samba preallocates the full size; only the mtime shows the writes.
    tracker.noticed(key, state(100, 1), t0);
    EXPECT_TRUE(tick(state(100, 2), 250ms).empty());
    EXPECT_TRUE(tick(state(100, 3), 500ms).empty());
    EXPECT_TRUE(tick(state(100, 3), 700ms).empty());
    EXPECT_EQ(tick(state(100, 3), 800ms).size(), 1u);
}

TEST_F(SettleTrackerTest, EventsRestartTheTimer) {
    tracker.noticed(key, state(10, 1), t0);
    tracker.touched(key, state(10, 1), t0 + 200ms);  // IN_MODIFY
    EXPECT_TRUE(tick(state(10, 1), 400ms).empty());
    tracker.noticed(key, state(10, 1), t0 + 450ms);  // IN_CLOSE_WRITE
    EXPECT_TRUE(tick(state(10, 1), 700ms).empty());
    EXPECT_EQ(tick(state(10, 1), 750ms).size(), 1u);
}

TEST_F(SettleTrackerTest, TouchingAnUntrackedFileDoesNotTrackIt) {
    tracker.touched(key, state(10, 1), t0);  // IN_MODIFY while still being written
    EXPECT_EQ(tracker.size(), 0u);
}

TEST_F(SettleTrackerTest, VanishedFileIsForgotten) {
    tracker.noticed(key, state(10, 1), t0);
    EXPECT_TRUE(tick(std::nullopt, 400ms).empty());
    EXPECT_EQ(tracker.size(), 0u);
}

TEST_F(SettleTrackerTest, ClaimedFileIsForgottenAfterReport) {
    tracker.noticed(key, state(10, 1), t0);
    ASSERT_EQ(tick(state(10, 1), 300ms).size(), 1u);
    tracker.reported(key, std::nullopt, t0 + 310ms);
    EXPECT_EQ(tracker.size(), 0u);
}

TEST_F(SettleTrackerTest, UnclaimedFileReturnsOnlyWhenChangedOrRescannedLater) {
    tracker.noticed(key, state(10, 1), t0);
    ASSERT_EQ(tick(state(10, 1), 300ms).size(), 1u);
    tracker.reported(key, state(10, 1), t0 + 300ms);

    tracker.touched(key, state(10, 1), t0 + 1s);   // an event, but nothing changed
    tracker.scanned(key, state(10, 1), t0 + 10s);  // a rescan too soon
    EXPECT_TRUE(tracker.waiting().empty());

    tracker.scanned(key, state(10, 1), t0 + 31s);  // a rescan a period later
    EXPECT_EQ(tracker.waiting().size(), 1u);
    ASSERT_EQ(tick(state(10, 1), 31300ms).size(), 1u);
    tracker.reported(key, state(10, 1), t0 + 31300ms);

    tracker.touched(key, state(11, 2), t0 + 32s);  // it changed
    EXPECT_EQ(tracker.waiting().size(), 1u);
}

TEST_F(SettleTrackerTest, ScanDoesNotRestartAnUnchangedWaitingFile) {
    tracker.noticed(key, state(10, 1), t0);
    tracker.scanned(key, state(10, 1), t0 + 200ms);
    EXPECT_EQ(tick(state(10, 1), 300ms).size(), 1u);
}

TEST_F(SettleTrackerTest, ForgetFolderDropsOnlyThatFolder) {
    tracker.noticed({0, "sub/a.jpg"}, state(1, 1), t0);
    tracker.noticed({0, "sub/deep/b.jpg"}, state(1, 1), t0);
    tracker.noticed({0, "sub2/c.jpg"}, state(1, 1), t0);
    tracker.noticed({0, "sub.jpg"}, state(1, 1), t0);
    tracker.noticed({1, "sub/a.jpg"}, state(1, 1), t0);
    tracker.forget_folder(0, "sub");
    auto left = tracker.waiting();
    ASSERT_EQ(left.size(), 3u);
    EXPECT_EQ(left[0].relative, "sub.jpg");
    EXPECT_EQ(left[1].relative, "sub2/c.jpg");
    EXPECT_EQ(left[2].spool, 1u);
    tracker.forget_folder(1, "");
    EXPECT_EQ(tracker.size(), 2u);
}

TEST_F(SettleTrackerTest, ForgetUnlistedDropsWhatAPollNoLongerSeesButNotAFileInFlight) {
    tracker.scanned({0, "kept.jpg"}, state(1, 1), t0);
    tracker.scanned({0, "sub/deleted.jpg"}, state(1, 1), t0);
    tracker.scanned({1, "other-spool.jpg"}, state(1, 1), t0);
    // Reported and left in the inbox, then deleted: only the listing can tell.
    tracker.scanned(key, state(10, 1), t0);
    ASSERT_EQ(tick(state(10, 1), 300ms).size(), 1u);
    tracker.reported(key, state(10, 1), t0 + 300ms);
    // In flight (on_stable runs) and already gone from the listing: reported() decides.
    const FileKey flying{0, "flying.jpg"};
    tracker.scanned(flying, state(5, 1), t0 + 300ms);
    ASSERT_EQ(tracker.settled({{flying, state(5, 1)}}, t0 + 600ms).size(), 1u);

    tracker.forget_unlisted(0, {"kept.jpg"});
    EXPECT_EQ(tracker.size(), 3u);
    auto left = tracker.waiting();
    ASSERT_EQ(left.size(), 2u);
    EXPECT_EQ(left[0].relative, "kept.jpg");
    EXPECT_EQ(left[1].spool, 1u);
    tracker.reported(flying, std::nullopt, t0 + 700ms);
    EXPECT_EQ(tracker.size(), 2u);
}

TEST_F(SettleTrackerTest, FileChangedDuringTheCallbackWaitsAgain) {
    tracker.noticed(key, state(10, 1), t0);
    ASSERT_EQ(tick(state(10, 1), 300ms).size(), 1u);
    tracker.touched(key, state(20, 2), t0 + 350ms);   // ignored while in flight...
    tracker.reported(key, state(20, 2), t0 + 400ms);  // ...but the change is not lost
    EXPECT_EQ(tracker.waiting().size(), 1u);
    EXPECT_TRUE(tick(state(20, 2), 699ms).empty());
    EXPECT_EQ(tick(state(20, 2), 700ms).size(), 1u);
}

TEST_F(SettleTrackerTest, ANotWholeFileWaitsAnotherPeriodAndIsListedWithItsReason) {
    tracker.noticed(key, state(10, 1), t0);
    ASSERT_EQ(tick(state(10, 1), 300ms).size(), 1u);
    tracker.not_whole(key, "incomplete JPEG: no end-of-image marker", t0 + 300ms);
    auto listed = tracker.not_whole_files();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].reason, "incomplete JPEG: no end-of-image marker");
    EXPECT_EQ(listed[0].changed_at, t0);
    // Judged again only after another settle period, still unchanged since t0.
    EXPECT_TRUE(tick(state(10, 1), 599ms).empty());
    ASSERT_EQ(tick(state(10, 1), 600ms).size(), 1u);
    EXPECT_EQ(tracker.unchanged_for(key, t0 + 600ms), 600ms);
}

TEST_F(SettleTrackerTest, GrowingRestartsTheUnchangedClockButKeepsTheReason) {
    tracker.noticed(key, state(10, 1), t0);
    ASSERT_EQ(tick(state(10, 1), 300ms).size(), 1u);
    tracker.not_whole(key, "open for writing by another process", t0 + 300ms);
    EXPECT_TRUE(tick(state(20, 2), 400ms).empty());
    EXPECT_EQ(tracker.unchanged_for(key, t0 + 500ms), 100ms);
    ASSERT_EQ(tracker.not_whole_files().size(), 1u);
    EXPECT_EQ(tracker.not_whole_files()[0].changed_at, t0 + 400ms);
}

TEST_F(SettleTrackerTest, AClaimedFileLeavesTheWaitingList) {
    tracker.noticed(key, state(10, 1), t0);
    ASSERT_EQ(tick(state(10, 1), 300ms).size(), 1u);
    tracker.not_whole(key, "incomplete PNG: no IEND chunk", t0 + 300ms);
    ASSERT_EQ(tick(state(10, 1), 600ms).size(), 1u);
    tracker.reported(key, std::nullopt, t0 + 600ms);  // claimed: gone from inbox/
    EXPECT_TRUE(tracker.not_whole_files().empty());
    EXPECT_EQ(tracker.size(), 0u);
}

TEST_F(SettleTrackerTest, TryLaterOffersTheFileAgainAfterAnotherPeriod) {
    tracker.noticed(key, state(10, 1), t0);
    ASSERT_EQ(tick(state(10, 1), 300ms).size(), 1u);
    tracker.retry_later(key, t0 + 300ms);
    EXPECT_TRUE(tracker.not_whole_files().empty());
    EXPECT_TRUE(tick(state(10, 1), 500ms).empty());
    EXPECT_EQ(tick(state(10, 1), 600ms).size(), 1u);
}
