#include "daemon/progress_display.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>
#include <vector>

namespace imgspool {
namespace {

using namespace std::chrono_literals;

// A clock the test moves by hand.
struct FakeClock {
    std::chrono::steady_clock::time_point now{std::chrono::seconds(1000)};
    ProgressDisplay::Clock fn() {
        return [this] { return now; };
    }
};

JobOutcome outcome(bool success) {
    JobOutcome o;
    o.success = success;
    return o;
}

TEST(ProgressDisplay, RedrawsOneLineInPlaceOnATerminal) {
    std::ostringstream out;
    FakeClock clock;
    ProgressDisplay p(out, /*tty=*/true, 4, clock.fn());

    clock.now += 1s;
    p.job_finished(outcome(true));
    EXPECT_EQ(out.str(),
              "\r[######------------------]  1/4 files  0 failed  1.0 files/s  ETA 0:03\x1b[K");

    out.str("");
    clock.now += 1s;
    p.job_finished(outcome(false));
    EXPECT_EQ(out.str(),
              "\r[############------------]  2/4 files  1 failed  1.0 files/s  ETA 0:02\x1b[K");
}

TEST(ProgressDisplay, RedrawsAtMostTenTimesASecondButAlwaysTheLastFile) {
    std::ostringstream out;
    FakeClock clock;
    ProgressDisplay p(out, true, 5, clock.fn());
    p.job_finished(outcome(true));  // first one draws
    const auto first = out.str();
    clock.now += 30ms;
    p.job_finished(outcome(true));
    clock.now += 30ms;
    p.job_finished(outcome(true));
    EXPECT_EQ(out.str(), first);  // within 100 ms: no redraw
    clock.now += 50ms;
    p.job_finished(outcome(true));  // 110 ms after the last draw
    EXPECT_NE(out.str().find("4/5 files"), std::string::npos);
    out.str("");
    clock.now += 1ms;
    p.job_finished(outcome(true));  // the batch is complete: drawn at once
    EXPECT_NE(out.str().find("5/5 files"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("took 0:00"), std::string::npos) << out.str();
}

TEST(ProgressDisplay, FinishEndsTheLineOnATerminal) {
    std::ostringstream out;
    FakeClock clock;
    ProgressDisplay p(out, true, 2, clock.fn());
    clock.now += 2s;
    p.job_finished(outcome(true));
    out.str("");
    p.finish();
    EXPECT_EQ(out.str(),
              "\r[############------------]  1/2 files  0 failed  0.5 files/s  ETA 0:02\x1b[K\n");
    out.str("");
    p.finish();
    p.job_finished(outcome(true));
    EXPECT_EQ(out.str(), "");
}

TEST(ProgressDisplay, WithoutATotalShowsCountsOnly) {
    std::ostringstream out;
    FakeClock clock;
    ProgressDisplay p(out, true, 0, clock.fn());
    clock.now += 4s;
    p.job_finished(outcome(true));
    EXPECT_EQ(out.str(), "\r1 files  0 failed  0.2 files/s\x1b[K");
    out.str("");
    p.set_total(10);
    clock.now += 1s;
    p.job_finished(outcome(true));
    EXPECT_NE(out.str().find("2/10 files"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("ETA 0:20"), std::string::npos) << out.str();
}

TEST(ProgressDisplay, ShowsUnknownEtaBeforeAnyTimePassed) {
    std::ostringstream out;
    FakeClock clock;
    ProgressDisplay p(out, true, 3, clock.fn());
    p.job_finished(outcome(true));
    EXPECT_NE(out.str().find("ETA --:--"), std::string::npos) << out.str();
}

TEST(ProgressDisplay, NotATerminalPrintsOnlyASummaryLine) {
    std::ostringstream out;
    FakeClock clock;
    ProgressDisplay p(out, /*tty=*/false, 3, clock.fn());
    for (const bool ok : {true, false, true}) {
        clock.now += 500ms;
        p.job_finished(outcome(ok));
    }
    EXPECT_EQ(out.str(), "");
    p.finish();
    EXPECT_EQ(out.str(), "processed 3 files: 2 done, 1 failed in 1.5 s (2.0 files/s)\n");
}

TEST(ProgressDisplay, CountsFromManyWorkers) {
    std::ostringstream out;
    ProgressDisplay p(out, false, 400);
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t) {
        workers.emplace_back([&p, t] {
            for (int i = 0; i < 100; ++i) p.job_finished(outcome(t != 0));
        });
    }
    for (auto& w : workers) w.join();
    p.finish();
    EXPECT_NE(out.str().find("processed 400 files: 300 done, 100 failed"), std::string::npos)
        << out.str();
}

}  // namespace
}  // namespace imgspool
