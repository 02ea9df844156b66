#include "metrics/imgspool_metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "tests/metrics/exposition.hpp"

namespace imgspool {
namespace {

using testing::sample_value;

JobOutcome rendered(const std::string& id) {
    JobOutcome o;
    o.upload_id = id;
    o.spool = "photos";
    o.profile = "web";
    o.success = true;
    o.final_path = "/spool/done/a.jpg";
    o.original_bytes = 300000;
    o.outputs = {StoredVariant{"small", "jpeg", "k1", "u1", 100, 100, 20000},
                 StoredVariant{"large", "webp", "k2", "u2", 800, 600, 130000}};
    o.output_bytes = 150000;
    o.elapsed = std::chrono::duration<double>(0.75);
    return o;
}

JobOutcome failed(const std::string& id, Stage stage, bool moved_to_failed = true) {
    JobOutcome o;
    o.upload_id = id;
    o.profile = "web";
    o.error = make_error(stage, "something went wrong", "a.jpg");
    o.final_path = moved_to_failed ? "/spool/failed/a.jpg" : "";
    o.original_bytes = 1000;
    o.elapsed = std::chrono::duration<double>(0.2);
    return o;
}

TEST(ImgspoolMetrics, StartsWithEveryStateAndFailureClassAtZero) {
    ImgspoolMetrics m;
    const std::string text = m.render();
    for (const char* state : {"pending", "processing", "complete", "failed"}) {
        EXPECT_EQ(sample_value(text, std::string("imgspool_jobs{state=\"") + state + "\"}"), 0)
            << state;
    }
    for (const char* reason : {"validate", "render", "store", "commit", "move"}) {
        EXPECT_EQ(
            sample_value(text, std::string("generation_failure_total{reason=\"") + reason + "\"}"),
            0)
            << reason;
    }
    EXPECT_EQ(sample_value(text, "generation_success_total"), 0);
    EXPECT_EQ(sample_value(text, "imgspool_workers_busy"), 0);
}

TEST(ImgspoolMetrics, ARenderedJobMovesHistogramsAndCounters) {
    ImgspoolMetrics m;
    m.job_finished(rendered("u1"));
    m.job_finished(rendered("u2"));
    const std::string t = m.render();

    EXPECT_EQ(sample_value(t, "generation_success_total"), 2);
    EXPECT_EQ(sample_value(t, "imgspool_cache_misses_total"), 2);
    EXPECT_EQ(sample_value(t, "imgspool_cache_hits_total"), 0);
    EXPECT_EQ(sample_value(t, "imgspool_bytes_uploaded_total"), 300000);
    EXPECT_EQ(sample_value(t, "imgspool_failed_files_total"), 0);

    EXPECT_EQ(
        sample_value(t, "image_processing_duration_seconds_count{tool=\"web\",success=\"true\"}"),
        2);
    EXPECT_DOUBLE_EQ(
        sample_value(t, "image_processing_duration_seconds_sum{tool=\"web\",success=\"true\"}"),
        1.5);
    EXPECT_EQ(sample_value(t,
                           "image_processing_duration_seconds_bucket{tool=\"web\","
                           "success=\"true\",le=\"0.5\"}"),
              0);
    EXPECT_EQ(sample_value(t,
                           "image_processing_duration_seconds_bucket{tool=\"web\","
                           "success=\"true\",le=\"1\"}"),
              2);

    // 300000 original bytes / 150000 bytes of derivatives = 2.
    EXPECT_DOUBLE_EQ(sample_value(t, "image_compression_ratio_sum{tool=\"web\"}"), 4);
    EXPECT_EQ(sample_value(t, "image_compression_ratio_count{tool=\"web\"}"), 2);
    EXPECT_EQ(sample_value(t, "image_compression_ratio_bucket{tool=\"web\",le=\"1.5\"}"), 0);
    EXPECT_EQ(sample_value(t, "image_compression_ratio_bucket{tool=\"web\",le=\"2\"}"), 2);

    EXPECT_EQ(sample_value(t, "image_original_size_bytes_sum{tool=\"web\"}"), 600000);
    EXPECT_EQ(sample_value(t, "image_compressed_size_bytes_sum{tool=\"web\",variant=\"small\"}"),
              40000);
    EXPECT_EQ(sample_value(t, "image_compressed_size_bytes_count{tool=\"web\",variant=\"large\"}"),
              2);
}

TEST(ImgspoolMetrics, ACacheHitCountsAsHitAndRendersNothing) {
    ImgspoolMetrics m;
    JobOutcome hit = rendered("u1");
    hit.cache_hit = true;
    hit.output_bytes = 0;
    m.job_finished(hit);
    const std::string t = m.render();

    EXPECT_EQ(sample_value(t, "imgspool_cache_hits_total"), 1);
    EXPECT_EQ(sample_value(t, "imgspool_cache_misses_total"), 0);
    EXPECT_EQ(sample_value(t, "generation_success_total"), 1);
    EXPECT_EQ(sample_value(t, "imgspool_bytes_uploaded_total"), 0);
    EXPECT_TRUE(std::isnan(sample_value(t, "image_compression_ratio_count{tool=\"web\"}")));
    EXPECT_TRUE(std::isnan(
        sample_value(t, "image_compressed_size_bytes_count{tool=\"web\",variant=\"small\"}")));
    EXPECT_EQ(sample_value(t, "image_original_size_bytes_count{tool=\"web\"}"), 1);
}

TEST(ImgspoolMetrics, FailuresCountByStageAndFilesMovedToFailed) {
    ImgspoolMetrics m;
    m.job_finished(failed("a", Stage::validate));
    m.job_finished(failed("b", Stage::validate));
    m.job_finished(failed("c", Stage::render));
    m.job_finished(failed("d", Stage::store, /*moved_to_failed=*/false));
    const std::string t = m.render();

    EXPECT_EQ(sample_value(t, "generation_failure_total{reason=\"validate\"}"), 2);
    EXPECT_EQ(sample_value(t, "generation_failure_total{reason=\"render\"}"), 1);
    EXPECT_EQ(sample_value(t, "generation_failure_total{reason=\"store\"}"), 1);
    EXPECT_EQ(sample_value(t, "generation_failure_total{reason=\"commit\"}"), 0);
    EXPECT_EQ(sample_value(t, "generation_success_total"), 0);
    EXPECT_EQ(sample_value(t, "imgspool_failed_files_total"), 3);
    // Only the jobs that got past the cache lookup (render, store) missed it.
    EXPECT_EQ(sample_value(t, "imgspool_cache_misses_total"), 2);
    EXPECT_EQ(sample_value(t, "imgspool_bytes_uploaded_total"), 0);
    EXPECT_EQ(
        sample_value(t, "image_processing_duration_seconds_count{tool=\"web\",success=\"false\"}"),
        4);
}

TEST(ImgspoolMetrics, BusyWorkersFollowStartedAndFinishedJobs) {
    ImgspoolMetrics m;
    Job a{"a", {}, {}, {}};
    Job b{"b", {}, {}, {}};
    m.job_started(a);
    m.job_started(b);
    EXPECT_EQ(sample_value(m.render(), "imgspool_workers_busy"), 2);
    m.job_finished(rendered("a"));
    EXPECT_EQ(sample_value(m.render(), "imgspool_workers_busy"), 1);
    m.job_finished(rendered("recovered-without-start"));
    EXPECT_EQ(sample_value(m.render(), "imgspool_workers_busy"), 1);
    m.job_finished(rendered("b"));
    EXPECT_EQ(sample_value(m.render(), "imgspool_workers_busy"), 0);
}

TEST(ImgspoolMetrics, AnAbandonedRunFreesItsWorkerAndCountsALostClaimNotAFailure) {
    ImgspoolMetrics m;
    Job a{"a", {}, {}, {}};
    m.job_started(a);
    JobOutcome out;
    out.upload_id = "a";
    out.abandoned = true;
    out.error = make_error(Stage::lease, "the job now belongs to node b (adopted from a)");
    m.job_abandoned(out);
    const std::string text = m.render();
    EXPECT_EQ(sample_value(text, "imgspool_workers_busy"), 0);
    EXPECT_EQ(sample_value(text, "imgspool_claims_lost_total"), 1);
    EXPECT_EQ(sample_value(text, "generation_success_total"), 0);
    EXPECT_EQ(text.find("reason=\"lease\""), std::string::npos) << "counted as a failure";
}

TEST(ImgspoolMetrics, SamplesSetGaugesAndTotals) {
    ImgspoolMetrics m;
    m.sample({.jobs_by_state = std::map<std::string, std::int64_t>{{"complete", 7}, {"failed", 2}},
              .queue_depth = 5,
              .s3_retries_total = 3,
              .inotify_overflows_total = 1,
              .rescans_total = 12});
    std::string t = m.render();
    EXPECT_EQ(sample_value(t, "imgspool_jobs{state=\"complete\"}"), 7);
    EXPECT_EQ(sample_value(t, "imgspool_jobs{state=\"failed\"}"), 2);
    EXPECT_EQ(sample_value(t, "imgspool_jobs{state=\"pending\"}"), 0);
    EXPECT_EQ(sample_value(t, "imgspool_queue_depth"), 5);
    EXPECT_EQ(sample_value(t, "imgspool_s3_retries_total"), 3);
    EXPECT_EQ(sample_value(t, "imgspool_inotify_overflows_total"), 1);
    EXPECT_EQ(sample_value(t, "imgspool_rescans_total"), 12);

    // Fields left empty keep their values.
    m.sample({.queue_depth = 0});
    t = m.render();
    EXPECT_EQ(sample_value(t, "imgspool_queue_depth"), 0);
    EXPECT_EQ(sample_value(t, "imgspool_jobs{state=\"complete\"}"), 7);
    EXPECT_EQ(sample_value(t, "imgspool_rescans_total"), 12);
}

// Several daemons scraped into one Prometheus: every sample says which node it is from, the node
// label first, and imgspool_node_info tells the rest.
TEST(ImgspoolMetrics, WithANodeEverySampleCarriesItFirstAndNodeInfoSaysTheRest) {
    ImgspoolMetrics m(
        NodeInfo{.node = "a", .host = "host-1", .version = "1.2.3", .database = "postgresql"});
    m.job_finished(rendered("u1"));
    m.job_finished(failed("u2", Stage::store));
    m.http_answered("image", 503);
    m.sample({.jobs_by_state = std::map<std::string, std::int64_t>{{"complete", 1}},
              .db_reconnects_total = 4});
    const std::string text = m.render();

    std::istringstream lines(text);
    std::string line;
    int samples = 0;
    while (std::getline(lines, line)) {
        if (line.starts_with("#")) continue;
        ++samples;
        const auto brace = line.find('{');
        ASSERT_NE(brace, std::string::npos) << "a sample without labels: " << line;
        EXPECT_EQ(line.compare(brace, 9, "{node=\"a\""), 0) << line;
        EXPECT_TRUE(line[brace + 9] == ',' || line[brace + 9] == '}') << line;
    }
    EXPECT_GT(samples, 50) << text;
    EXPECT_EQ(sample_value(text,
                           "imgspool_node_info{node=\"a\",host=\"host-1\",version=\"1.2.3\","
                           "database=\"postgresql\"}"),
              1)
        << text;
    EXPECT_EQ(sample_value(text, "imgspool_db_reconnects_total{node=\"a\"}"), 4);
    EXPECT_EQ(sample_value(text, "imgspool_jobs{node=\"a\",state=\"complete\"}"), 1);
    EXPECT_EQ(sample_value(text, "generation_failure_total{node=\"a\",reason=\"store\"}"), 1);
}

TEST(ImgspoolMetrics, WithoutANodeNoNodeLabelNoNodeInfoAndNoReconnectsYet) {
    ImgspoolMetrics m;
    const std::string text = m.render();
    EXPECT_EQ(text.find("node="), std::string::npos) << text;
    EXPECT_EQ(text.find("imgspool_node_info{"), std::string::npos) << text;
    EXPECT_EQ(sample_value(text, "imgspool_db_reconnects_total"), 0);
}

}  // namespace
}  // namespace imgspool
