#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

namespace imgspool::metrics {
namespace {

TEST(Registry, RendersTheTextFormatExactly) {
    Registry r;
    auto& jobs = r.counter("jobs_total", "Jobs done.", {"spool"});
    jobs.labels({"b"}).inc(2);
    jobs.labels({"a"}).inc();
    r.gauge("queue_depth", "Files waiting.").get().set(3.5);
    auto& h = r.histogram("duration_seconds", "Time per job.", {"tool"}, {0.25, 1});
    h.labels({"web"}).observe(0.25);
    h.labels({"web"}).observe(0.5);
    h.labels({"web"}).observe(4);

    EXPECT_EQ(r.render(),
              "# HELP jobs_total Jobs done.\n"
              "# TYPE jobs_total counter\n"
              "jobs_total{spool=\"a\"} 1\n"
              "jobs_total{spool=\"b\"} 2\n"
              "# HELP queue_depth Files waiting.\n"
              "# TYPE queue_depth gauge\n"
              "queue_depth 3.5\n"
              "# HELP duration_seconds Time per job.\n"
              "# TYPE duration_seconds histogram\n"
              "duration_seconds_bucket{tool=\"web\",le=\"0.25\"} 1\n"
              "duration_seconds_bucket{tool=\"web\",le=\"1\"} 2\n"
              "duration_seconds_bucket{tool=\"web\",le=\"+Inf\"} 3\n"
              "duration_seconds_sum{tool=\"web\"} 4.75\n"
              "duration_seconds_count{tool=\"web\"} 3\n");
}

TEST(Registry, FamiliesWithoutLabelsShowZeroFromTheStart) {
    Registry r;
    r.counter("rescans_total", "Rescans.");
    r.gauge("busy", "Busy workers.");
    r.histogram("size_bytes", "Sizes.", {}, {10});
    r.counter("by_reason_total", "Failures.", {"reason"});
    EXPECT_EQ(r.render(),
              "# HELP rescans_total Rescans.\n"
              "# TYPE rescans_total counter\n"
              "rescans_total 0\n"
              "# HELP busy Busy workers.\n"
              "# TYPE busy gauge\n"
              "busy 0\n"
              "# HELP size_bytes Sizes.\n"
              "# TYPE size_bytes histogram\n"
              "size_bytes_bucket{le=\"10\"} 0\n"
              "size_bytes_bucket{le=\"+Inf\"} 0\n"
              "size_bytes_sum 0\n"
              "size_bytes_count 0\n"
              "# HELP by_reason_total Failures.\n"
              "# TYPE by_reason_total counter\n");
}

// One daemon among several in one Prometheus: node="a" goes first in every sample, histogram
// buckets included (le stays last), escaped like any label value.
TEST(Registry, ConstantLabelsComeFirstInEverySample) {
    Registry r;
    r.counter("jobs_total", "Jobs done.", {"spool"}).labels({"photos"}).inc();
    r.gauge("queue_depth", "Files waiting.").get().set(2);
    r.set_const_labels({{"node", "a"}, {"site", "x\"y"}});
    auto& h = r.histogram("duration_seconds", "Time per job.", {"tool"}, {1});
    h.labels({"web"}).observe(0.5);
    r.histogram("size_bytes", "Sizes.", {}, {10});

    EXPECT_EQ(r.render(),
              "# HELP jobs_total Jobs done.\n"
              "# TYPE jobs_total counter\n"
              "jobs_total{node=\"a\",site=\"x\\\"y\",spool=\"photos\"} 1\n"
              "# HELP queue_depth Files waiting.\n"
              "# TYPE queue_depth gauge\n"
              "queue_depth{node=\"a\",site=\"x\\\"y\"} 2\n"
              "# HELP duration_seconds Time per job.\n"
              "# TYPE duration_seconds histogram\n"
              "duration_seconds_bucket{node=\"a\",site=\"x\\\"y\",tool=\"web\",le=\"1\"} 1\n"
              "duration_seconds_bucket{node=\"a\",site=\"x\\\"y\",tool=\"web\",le=\"+Inf\"} 1\n"
              "duration_seconds_sum{node=\"a\",site=\"x\\\"y\",tool=\"web\"} 0.5\n"
              "duration_seconds_count{node=\"a\",site=\"x\\\"y\",tool=\"web\"} 1\n"
              "# HELP size_bytes Sizes.\n"
              "# TYPE size_bytes histogram\n"
              "size_bytes_bucket{node=\"a\",site=\"x\\\"y\",le=\"10\"} 0\n"
              "size_bytes_bucket{node=\"a\",site=\"x\\\"y\",le=\"+Inf\"} 0\n"
              "size_bytes_sum{node=\"a\",site=\"x\\\"y\"} 0\n"
              "size_bytes_count{node=\"a\",site=\"x\\\"y\"} 0\n");

    r.set_const_labels({{"node", "b"}});  // replaces, not adds
    EXPECT_NE(r.render().find("queue_depth{node=\"b\"} 2\n"), std::string::npos) << r.render();
    r.set_const_labels({});
    EXPECT_NE(r.render().find("queue_depth 2\n"), std::string::npos) << r.render();
}

TEST(Registry, ConstantLabelsRejectBadAndClashingNames) {
    Registry r;
    r.counter("jobs_total", "Jobs done.", {"spool"});
    EXPECT_THROW(r.set_const_labels({{"spool", "x"}}), std::invalid_argument);
    EXPECT_THROW(r.set_const_labels({{"le", "1"}}), std::invalid_argument);
    EXPECT_THROW(r.set_const_labels({{"__name__", "x"}}), std::invalid_argument);
    EXPECT_THROW(r.set_const_labels({{"no-de", "x"}}), std::invalid_argument);
    EXPECT_THROW(r.set_const_labels({{"node", "a"}, {"node", "b"}}), std::invalid_argument);
    r.set_const_labels({{"node", "a"}});
    EXPECT_THROW(r.set_const_labels({{"node", "b"}, {"spool", "x"}}), std::invalid_argument);
    EXPECT_THROW(r.gauge("per_node", "Clashes.", {"node"}), std::invalid_argument);
    // A refused call changes nothing.
    r.gauge("busy", "Busy.").get().set(1);
    EXPECT_NE(r.render().find("busy{node=\"a\"} 1\n"), std::string::npos) << r.render();
}

TEST(Registry, EscapesLabelValuesAndHelp) {
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    Registry r;
    r.counter("odd_total", "Back\\slash and\nnewline \"kept\".", {"file"})
        .labels({"C:\\in \"q\"\nx"})
        .inc();
    EXPECT_EQ(r.render(),
              "# HELP odd_total Back\\\\slash and\\nnewline \"kept\".\n"
              "# TYPE odd_total counter\n"
              "odd_total{file=\"C:\\\\in \\\"q\\\"\\nx\"} 1\n");
}

TEST(Registry, FormatsSpecialValues) {
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::nan("")), "NaN");
    EXPECT_EQ(format_value(0.1), "0.1");
    EXPECT_EQ(format_value(1048576), "1048576");
}

TEST(Histogram, BucketsAreInclusiveUpperBoundsAndCumulative) {
    Histogram h({1, 2, 4});
    for (const double v : {0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 4.5, 100.0}) h.observe(v);
    const auto s = h.snapshot();
    // le=1: 0,1  le=2: +1.5,2  le=4: +3,4  +Inf: +4.5,100
    EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 4, 6, 8}));
    EXPECT_EQ(s.count, 8u);
    EXPECT_DOUBLE_EQ(s.sum, 116.0);
}

TEST(Histogram, NegativeValuesFallInTheFirstBucket) {
    Histogram h({0.5});
    h.observe(-3);
    EXPECT_EQ(h.snapshot().cumulative, (std::vector<std::uint64_t>{1, 1}));
    EXPECT_DOUBLE_EQ(h.snapshot().sum, -3);
}

TEST(Registry, RejectsMisuse) {
    Registry r;
    auto& c = r.counter("a_total", "A.", {"x", "y"});
    EXPECT_THROW(c.labels({"only one"}), std::invalid_argument);
    EXPECT_THROW(c.labels({"1", "2"}).inc(-1), std::invalid_argument);
    EXPECT_THROW(r.counter("a_total", "Again."), std::invalid_argument);
    EXPECT_THROW(r.gauge("2bad", "Starts with a digit."), std::invalid_argument);
    EXPECT_THROW(r.gauge("has-dash", "Dash."), std::invalid_argument);
    EXPECT_THROW(r.gauge("ok_name", "Bad label.", {"a:b"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h_seconds", "Reserved label.", {"le"}, {1}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h2_seconds", "Unsorted.", {}, {2, 1}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h3_seconds", "Repeated.", {}, {1, 1}), std::invalid_argument);
}

TEST(Registry, ConcurrentUpdatesFromFourThreadsAreAllCounted) {
    Registry r;
    auto& counter = r.counter("hits_total", "Hits.", {"thread_group"});
    auto& gauge = r.gauge("level", "Level.");
    auto& hist = r.histogram("v_seconds", "Values.", {"tool"}, {0.5});
    constexpr int kThreads = 4;
    constexpr int kEach = 5000;

    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                counter.labels({t % 2 == 0 ? "even" : "odd"}).inc();
                gauge.get().add(1);
                hist.labels({"web"}).observe(i % 2 == 0 ? 0.25 : 1.0);
            }
        });
    }
    std::thread scraper([&] {
        for (int i = 0; i < 50; ++i) EXPECT_FALSE(r.render().empty());
    });
    for (auto& t : threads) t.join();
    scraper.join();

    EXPECT_EQ(counter.labels({"even"}).value(), 2.0 * kEach);
    EXPECT_EQ(counter.labels({"odd"}).value(), 2.0 * kEach);
    EXPECT_EQ(gauge.get().value(), 1.0 * kThreads * kEach);
    const auto s = hist.labels({"web"}).snapshot();
    EXPECT_EQ(s.count, static_cast<std::uint64_t>(kThreads * kEach));
    EXPECT_EQ(s.cumulative[0], static_cast<std::uint64_t>(kThreads * kEach / 2));
    EXPECT_DOUBLE_EQ(s.sum, kThreads * (kEach / 2) * 1.25);
}

}  // namespace
}  // namespace imgspool::metrics
