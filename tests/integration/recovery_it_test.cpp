// Stopping the daemon: kill -9 in the middle of work, SIGTERM and SIGINT. Whatever happens, a
// restart finishes every file exactly once.
#include <signal.h>

#include <set>
#include <string>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/integration/web_outputs.hpp"

namespace imgspool::it {
namespace {

class RecoveryTest : public SpoolFixture {
  protected:
    // Large JPEGs (distinct bytes) written outside and renamed into inbox/ one after another.
    std::map<std::string, std::string> drop_big_images(int count, unsigned first_seed) {
        std::map<std::string, std::string> sources;
        for (int i = 0; i < count; ++i) {
            const std::string name = "big" + std::to_string(i) + ".jpg";
            sources[name] = make_jpeg({.width = 2400,
                                       .height = 1800,
                                       .seed = first_seed + static_cast<unsigned>(i),
                                       .noise = 10});
            write_file(outside() / name, sources[name]);
        }
        for (const auto& [name, bytes] : sources) stdfs::rename(outside() / name, inbox() / name);
        return sources;
    }

    std::size_t count_status(const std::string& status) {
        return query("SELECT id FROM upload_jobs WHERE status = ?1", {status}).size();
    }

    // inbox/ and work/ empty, every job finished, `expected` originals in done/.
    bool all_settled(std::size_t expected) {
        return files_under(inbox()).empty() && files_under(work()).empty() &&
               files_under(done()).size() >= expected && count_status("pending") == 0 &&
               count_status("processing") == 0;
    }

    // Every original exactly once in done/ (no ".1" copies), unchanged; one complete job per
    // source; no failures; every complete job's objects exist.
    void expect_each_done_exactly_once(const std::map<std::string, std::string>& sources) {
        std::vector<std::string> names;
        for (const auto& [name, bytes] : sources) names.push_back(name);
        EXPECT_EQ(files_under(done()), names);
        for (const auto& [name, bytes] : sources) {
            SCOPED_TRACE(name);
            if (stdfs::exists(done() / name)) {
                EXPECT_EQ(read_file(done() / name), bytes);
            }
            std::size_t complete = 0;
            for (Row& r : jobs_for(name)) {
                if (r["status"] != "complete") continue;
                ++complete;
                EXPECT_TRUE(web_outputs_ok(objects(), r["id"], "jpeg", 2400, 1800));
                EXPECT_EQ(recorded_urls(*this, r["id"]).size(), 7u);
            }
            EXPECT_EQ(complete, 1u) << "complete jobs for " << name;
        }
        EXPECT_EQ(count_status("failed"), 0u);
        EXPECT_EQ(count_status("pending"), 0u);
        EXPECT_EQ(count_status("processing"), 0u);
        EXPECT_EQ(files_under(failed()), std::vector<std::string>{});
    }
};

TEST_F(RecoveryTest, RestartAfterKill9MidJobFinishesEverythingExactlyOnce) {
    write_config({.workers = 1});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const auto sources = drop_big_images(12, 100);

    // Kill once some are done while others are still claimed or waiting.
    const bool mid_run = wait_for(
        [&] {
            const std::size_t n = files_under(done()).size();
            return n >= 1 && n < sources.size() && !files_under(work()).empty();
        },
        90s);
    ASSERT_TRUE(mid_run) << "never saw some files done while others were in work/; done: "
                         << files_under(done()).size();
    daemon().send(SIGKILL);
    ASSERT_TRUE(daemon().wait_for_exit(10s));
    const std::size_t done_at_kill = files_under(done()).size();
    EXPECT_LT(done_at_kill, sources.size());

    start_daemon();
    EXPECT_TRUE(wait_for([&] { return all_settled(sources.size()); }, 120s))
        << "after the restart not everything was finished; done: " << files_under(done()).size()
        << " of " << sources.size() << ", pending " << count_status("pending") << ", processing "
        << count_status("processing");
    expect_each_done_exactly_once(sources);
    EXPECT_TRUE(daemon_running());
}

TEST_F(RecoveryTest, SigtermStopsCleanlyAndTheNextStartFinishesTheRest) {
    write_config({.workers = 1});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const auto sources = drop_big_images(3, 200);

    ASSERT_TRUE(wait_for([&] { return count_status("processing") > 0; }, 60s))
        << "no job was ever processing";
    daemon().send(SIGTERM);
    const std::optional<ExitStatus> st = daemon().wait_for_exit(20s);
    ASSERT_TRUE(st) << "the daemon did not exit within 20 s of SIGTERM";
    EXPECT_TRUE(st->exited && st->code == 0) << "SIGTERM ended the daemon with " << st->describe();

    start_daemon();
    EXPECT_TRUE(wait_for([&] { return all_settled(sources.size()); }, 90s))
        << "after the restart not everything was finished";
    expect_each_done_exactly_once(sources);
}

TEST_F(RecoveryTest, SigintWhileIdleExitsZero) {
    start_daemon();
    wait_until_watching();
    if (HasFatalFailure()) return;
    daemon().send(SIGINT);
    const std::optional<ExitStatus> st = daemon().wait_for_exit(10s);
    ASSERT_TRUE(st) << "the daemon did not exit within 10 s of SIGINT";
    EXPECT_TRUE(st->exited && st->code == 0) << st->describe();
}

}  // namespace
}  // namespace imgspool::it
