// The metric set of imgspool, fed by the pipeline (as a JobObserver) and by periodic samples of
// the database, the queue, the watcher and the S3 client. Names follow the charts operators of
// the original design already have (image_*, generation_*), plus imgspool_* for the daemon.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "metrics/registry.hpp"
#include "pipeline/job.hpp"

namespace imgspool {

// Values the daemon samples (e.g. every few seconds, or right before a scrape). Fields left
// empty keep their previous value. The *_total fields are running totals kept elsewhere.
struct MetricsSample {
    std::optional<std::map<std::string, std::int64_t>>
        jobs_by_state{};                                     // JobDb::counts_by_status()
    std::optional<std::int64_t> queue_depth{};               // files waiting for a worker
    std::optional<std::int64_t> deferred_jobs{};             // DeferredJobs::size()
    std::optional<std::uint64_t> s3_retries_total{};         // S3 request attempts beyond the first
    std::optional<std::uint64_t> inotify_overflows_total{};  // WatcherStats::overflows
    std::optional<std::uint64_t> rescans_total{};            // WatcherStats::rescans
    std::optional<std::uint64_t> db_reconnects_total{};      // PgJobDb::reconnects(); 0 on SQLite
};

// Which daemon the metrics are of, when several ("nodes") share one database: node is the
// constant label of every series, the rest is shown by imgspool_node_info.
struct NodeInfo {
    std::string node;      // [daemon] node
    std::string host;      // gethostname()
    std::string version;   // IMGSPOOL_VERSION
    std::string database;  // "sqlite" | "postgresql"
};

// The states of the imgspool_jobs gauge, in the order of a job's life.
inline constexpr const char* kStates[] = {"waiting", "pending", "processing", "complete", "failed"};

class ImgspoolMetrics final : public JobObserver {
  public:
    // Without a NodeInfo the series carry no node label (tests, `imgspool process`).
    ImgspoolMetrics();
    explicit ImgspoolMetrics(const NodeInfo& node);

    // Thread-safe; called by the pipeline's workers.
    void job_started(const Job& job) override;
    void job_finished(const JobOutcome& outcome) override;
    void job_deferred(const JobOutcome& outcome) override;
    void job_abandoned(const JobOutcome& outcome) override;

    void sample(const MetricsSample& sample);
    // One answer of the HTTP drop-in: endpoint "upload", "jobs", "image" or "other". Any thread.
    void http_answered(std::string_view endpoint, unsigned status);

    // The exposition served at /metrics (Prometheus text format 0.0.4).
    std::string render() const { return registry_.render(); }

  private:
    metrics::Registry registry_;
    metrics::Family<metrics::Histogram>& duration_;
    metrics::Family<metrics::Histogram>& ratio_;
    metrics::Family<metrics::Histogram>& original_size_;
    metrics::Family<metrics::Histogram>& compressed_size_;
    metrics::Counter& success_;
    metrics::Family<metrics::Counter>& failure_;
    metrics::Family<metrics::Gauge>& jobs_;
    metrics::Family<metrics::Counter>& deferrals_;
    metrics::Gauge& deferred_jobs_;
    metrics::Gauge& queue_depth_;
    metrics::Gauge& workers_busy_;
    metrics::Counter& cache_hits_;
    metrics::Counter& cache_misses_;
    metrics::Counter& bytes_uploaded_;
    metrics::Counter& s3_retries_;
    metrics::Counter& failed_files_;
    metrics::Counter& inotify_overflows_;
    metrics::Counter& rescans_;
    metrics::Family<metrics::Counter>& http_requests_;
    metrics::Family<metrics::Gauge>& node_info_;
    metrics::Counter& db_reconnects_;
    metrics::Counter& claims_lost_;

    std::mutex busy_mutex_;
    std::set<std::string> busy_;  // upload_ids between job_started and job_finished
};

}  // namespace imgspool
