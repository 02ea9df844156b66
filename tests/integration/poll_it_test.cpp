// A spool with watch = "poll" (an inbox written by other hosts, where inotify sees nothing): the
// real daemon finds files only by listing the inbox every poll_s, arms no inotify watch on it,
// and still takes each file once, whole. A reload switches a spool between the two ways.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/watcher/inotify_watches.hpp"

namespace imgspool::it {
namespace {

using imgspool::testing::inode_of;
using imgspool::testing::inotify_watched_inodes;

class PollTest : public SpoolFixture {
  protected:
    // The fixture's config, with the spool polled every second when `polled`. The rescan is
    // made too rare to find anything during a test, so every file after the start is found by
    // a poll (or an inotify event).
    void write_spool_config(bool polled) {
        DaemonConfig c;
        c.rescan_s = 3600;
        std::string text = config_text(c);
        const std::string profile_line = "profile = \"web\"\n";
        const auto at = text.find(profile_line);
        ASSERT_NE(at, std::string::npos) << text;
        if (polled) text.insert(at + profile_line.size(), "watch = \"poll\"\npoll_s = 1\n");
        write_file(config_path(), text);
    }
    void start_polling_daemon() {
        write_spool_config(true);
        start_daemon();
        ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    }
    bool inbox_watched() {
        return inotify_watched_inodes(daemon().pid()).contains(inode_of(inbox()));
    }
    // How many "configuration reloaded" lines the daemon has logged.
    std::size_t reloads() const {
        std::size_t n = 0;
        std::istringstream in(daemon_log());
        for (std::string line; std::getline(in, line);) {
            nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_discarded() && j.is_object() &&
                j.value("msg", "") == "configuration reloaded" &&
                j.value("spools_changed", "") == "main") {
                ++n;
            }
        }
        return n;
    }
    void reload_and_wait() {
        const std::size_t before = reloads();
        daemon().send(SIGHUP);
        ASSERT_TRUE(wait_for([&] { return reloads() > before; }, 20s))
            << "no reload with spools_changed = main\n"
            << daemon_log();
    }
};

TEST_F(PollTest, APolledInboxHasNoInotifyWatchAndItsDropsAreTakenOnceWhole) {
    start_polling_daemon();
    const std::string photo = make_jpeg({.width = 900, .height = 600, .seed = 31});
    write_file(inbox() / "photo.jpg", photo);
    std::optional<Row> job = wait_complete("photo.jpg");
    ASSERT_TRUE(job) << "photo.jpg was not completed\n" << daemon_log();
    EXPECT_EQ(read_file(done() / "photo.jpg"), photo);

    // The daemon's inotify descriptor watches its wake-up file (the probe reads real watches),
    // and nothing in the spool.
    const std::set<ino_t> watched = inotify_watched_inodes(daemon().pid());
    EXPECT_TRUE(watched.contains(inode_of(state_dir() / "watcher.wake")));
    for (const stdfs::path& dir : {spool_root(), inbox(), work(), done(), failed()}) {
        EXPECT_FALSE(watched.contains(inode_of(dir))) << dir << " has an inotify watch";
    }

    // A slow writer: ~300 KB in 25 pieces over 2.5 s, so polls find it half written.
    const std::string slow = make_jpeg({.width = 700, .height = 500, .seed = 32});
    ASSERT_GT(slow.size(), 200'000u) << "test setup: the slow file should be a few 100 KB";
    const int fd = ::open((inbox() / "slow.jpg").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    ASSERT_GE(fd, 0);
    constexpr std::size_t kPieces = 25;
    const std::size_t piece = (slow.size() + kPieces - 1) / kPieces;
    for (std::size_t off = 0; off < slow.size(); off += piece) {
        const std::size_t n = std::min(piece, slow.size() - off);
        ASSERT_EQ(::write(fd, slow.data() + off, n), static_cast<ssize_t>(n));
        std::this_thread::sleep_for(100ms);
        ASSERT_TRUE(stdfs::exists(inbox() / "slow.jpg"))
            << "slow.jpg was taken from inbox/ after " << off + n << " of " << slow.size()
            << " bytes";
    }
    ::close(fd);
    job = wait_complete("slow.jpg");
    ASSERT_TRUE(job) << "slow.jpg was not completed\n" << daemon_log();
    EXPECT_EQ(read_file(done() / "slow.jpg"), slow);

    // Several more polls: nothing is taken twice.
    std::this_thread::sleep_for(3s);
    EXPECT_EQ(jobs_for("photo.jpg").size(), 1u);
    EXPECT_EQ(jobs_for("slow.jpg").size(), 1u);
    EXPECT_EQ(files_under(inbox()), std::vector<std::string>{});
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});
}

// watch and poll_s are applied by a reload: the watcher is replaced, and the spool is watched
// (or polled) the new way from then on.
TEST_F(PollTest, AReloadSwitchesASpoolBetweenInotifyAndPolling) {
    write_spool_config(false);
    start_daemon();
    wait_until_watching();
    EXPECT_TRUE(inbox_watched()) << "an inotify spool must have its inbox watched";

    write_spool_config(true);
    reload_and_wait();
    EXPECT_FALSE(inbox_watched()) << "a polled spool must have no inotify watch";
    const std::string polled = make_jpeg({.width = 640, .height = 480, .seed = 33});
    write_file(inbox() / "polled.jpg", polled);
    ASSERT_TRUE(wait_complete("polled.jpg")) << daemon_log();
    EXPECT_EQ(read_file(done() / "polled.jpg"), polled);

    write_spool_config(false);
    reload_and_wait();
    EXPECT_TRUE(inbox_watched());
    write_file(inbox() / "watched.jpg", make_jpeg({.width = 640, .height = 480, .seed = 34}));
    ASSERT_TRUE(wait_complete("watched.jpg")) << daemon_log();
    EXPECT_EQ(jobs_for("polled.jpg").size(), 1u);
}

}  // namespace
}  // namespace imgspool::it
