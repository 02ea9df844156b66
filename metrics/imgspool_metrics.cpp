// What each finished job and each sample moves in the imgspool metric set.
#include "metrics/imgspool_metrics.hpp"

namespace imgspool {
namespace {

constexpr double KiB = 1024.0;
constexpr double MiB = 1024.0 * KiB;

// A cache lookup happened if the job got past the cache step.
bool looked_up_cache(const JobOutcome& o) {
    if (o.success || o.cache_hit) return true;
    if (!o.error) return false;
    switch (o.error->stage) {
        case Stage::render:
        case Stage::store:
        case Stage::commit:
        case Stage::move:
            return true;
        default:
            return false;
    }
}

}  // namespace

ImgspoolMetrics::ImgspoolMetrics()
    : duration_(registry_.histogram(
          "image_processing_duration_seconds",
          "Wall time of one job from claim to done/ or failed/, by profile and result.",
          {"tool", "success"}, {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})),
      ratio_(registry_.histogram(
          "image_compression_ratio",
          "Original file bytes divided by the summed bytes of all derivatives rendered from it "
          "(2 = the whole set is half the original's size); rendered jobs only, not cache hits.",
          {"tool"}, {0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 50})),
      original_size_(registry_.histogram(
          "image_original_size_bytes", "Size of each original file a job read, by profile.",
          {"tool"},
          {16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB, 256 * MiB})),
      compressed_size_(registry_.histogram(
          "image_compressed_size_bytes",
          "Size of each rendered derivative, by profile and variant; cache hits not included.",
          {"tool", "variant"},
          {4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB})),
      success_(registry_
                   .counter("generation_success_total",
                            "Jobs that completed and moved their original to done/.")
                   .get()),
      failure_(registry_.counter(
          "generation_failure_total",
          "Jobs that failed, by the stage that failed (validate, render, store, commit, move...).",
          {"reason"})),
      jobs_(registry_.gauge("imgspool_jobs",
                            "Jobs in the database by status; waiting: files in an inbox that "
                            "are not whole yet.",
                            {"state"})),
      deferrals_(registry_.counter(
          "imgspool_deferrals_total",
          "Runs that ended deferred by a fault that passes (store, database, disk, a file not "
          "whole yet), by the stage that met it.",
          {"stage"})),
      deferred_jobs_(
          registry_
              .gauge("imgspool_deferred_jobs", "Jobs waiting for their next run after a deferral.")
              .get()),
      queue_depth_(
          registry_.gauge("imgspool_queue_depth", "Stable files waiting for a worker.").get()),
      workers_busy_(
          registry_.gauge("imgspool_workers_busy", "Workers running a job right now.").get()),
      cache_hits_(registry_
                      .counter("imgspool_cache_hits_total",
                               "Jobs whose derivatives were already stored for the same bytes and "
                               "profile settings.")
                      .get()),
      cache_misses_(registry_
                        .counter("imgspool_cache_misses_total",
                                 "Jobs that looked up the derivative cache and had to render.")
                        .get()),
      bytes_uploaded_(registry_
                          .counter("imgspool_bytes_uploaded_total",
                                   "Bytes of derivatives written to the store by completed jobs.")
                          .get()),
      s3_retries_(
          registry_
              .counter("imgspool_s3_retries_total", "S3 request attempts beyond the first one.")
              .get()),
      failed_files_(registry_
                        .counter("imgspool_failed_files_total",
                                 "Originals moved to a spool's failed/ folder.")
                        .get()),
      inotify_overflows_(registry_
                             .counter("imgspool_inotify_overflows_total",
                                      "inotify queue overflows (each one triggers a rescan).")
                             .get()),
      rescans_(
          registry_.counter("imgspool_rescans_total", "Full scans of the inbox/ folders.").get()),
      http_requests_(registry_.counter("imgspool_http_requests_total",
                                       "Requests the HTTP drop-in answered, by endpoint (upload, "
                                       "jobs, image, other) and status.",
                                       {"endpoint", "code"})),
      node_info_(registry_.gauge("imgspool_node_info",
                                 "Always 1: this daemon's host, version and kind of database "
                                 "(sqlite or postgresql); node is the label of every series.",
                                 {"host", "version", "database"})),
      db_reconnects_(registry_
                         .counter("imgspool_db_reconnects_total",
                                  "PostgreSQL sessions re-established after they broke (a lost "
                                  "connection or a server restart); 0 on SQLite.")
                         .get()),
      claims_lost_(registry_
                       .counter("imgspool_claims_lost_total",
                                "Runs abandoned because another node had adopted their job "
                                "(this node was silent longer than its lease_s).")
                       .get()) {
    for (const char* state : kStates) jobs_.labels({state}).set(0);
    // Every failure class is exposed from the start, so rate() works before the first failure.
    for (const Stage stage :
         {Stage::claim, Stage::fetch, Stage::validate, Stage::hash, Stage::cache, Stage::render,
          Stage::store, Stage::commit, Stage::move, Stage::internal}) {
        failure_.labels({stage_name(stage)});
    }
}

ImgspoolMetrics::ImgspoolMetrics(const NodeInfo& node) : ImgspoolMetrics() {
    registry_.set_const_labels({{"node", node.node}});
    node_info_.labels({node.host, node.version, node.database}).set(1);
}

void ImgspoolMetrics::job_started(const Job& job) {
    std::lock_guard lock(busy_mutex_);
    busy_.insert(job.upload_id);
    workers_busy_.set(static_cast<double>(busy_.size()));
}

void ImgspoolMetrics::job_deferred(const JobOutcome& o) {
    {
        std::lock_guard lock(busy_mutex_);
        busy_.erase(o.upload_id);
        workers_busy_.set(static_cast<double>(busy_.size()));
    }
    deferrals_.labels({stage_name(o.error ? o.error->stage : Stage::internal)}).inc();
}

void ImgspoolMetrics::job_abandoned(const JobOutcome& o) {
    {
        std::lock_guard lock(busy_mutex_);
        busy_.erase(o.upload_id);
        workers_busy_.set(static_cast<double>(busy_.size()));
    }
    claims_lost_.inc();
}

void ImgspoolMetrics::job_finished(const JobOutcome& o) {
    {
        // Recovery outcomes may come without a job_started; erase() keeps the count right.
        std::lock_guard lock(busy_mutex_);
        busy_.erase(o.upload_id);
        workers_busy_.set(static_cast<double>(busy_.size()));
    }

    duration_.labels({o.profile, o.success ? "true" : "false"}).observe(o.elapsed.count());
    if (o.original_bytes > 0) {
        original_size_.labels({o.profile}).observe(static_cast<double>(o.original_bytes));
    }

    if (o.cache_hit) {
        cache_hits_.inc();
    } else if (looked_up_cache(o)) {
        cache_misses_.inc();
    }

    if (o.success) {
        success_.inc();
        bytes_uploaded_.inc(static_cast<double>(o.output_bytes));
        if (!o.cache_hit && o.output_bytes > 0) {
            ratio_.labels({o.profile})
                .observe(static_cast<double>(o.original_bytes) /
                         static_cast<double>(o.output_bytes));
            for (const auto& variant : o.outputs) {
                compressed_size_.labels({o.profile, variant.variant})
                    .observe(static_cast<double>(variant.bytes));
            }
        }
        return;
    }

    failure_.labels({stage_name(o.error ? o.error->stage : Stage::internal)}).inc();
    // final_path is set once the original is in failed/; empty when even that move failed.
    if (!o.final_path.empty()) failed_files_.inc();
}

void ImgspoolMetrics::http_answered(std::string_view endpoint, unsigned status) {
    http_requests_.labels({std::string(endpoint), std::to_string(status)}).inc();
}

void ImgspoolMetrics::sample(const MetricsSample& s) {
    if (s.jobs_by_state) {
        for (const char* state : kStates) {
            const auto it = s.jobs_by_state->find(state);
            jobs_.labels({state}).set(
                it == s.jobs_by_state->end() ? 0.0 : static_cast<double>(it->second));
        }
    }
    if (s.queue_depth) queue_depth_.set(static_cast<double>(*s.queue_depth));
    if (s.deferred_jobs) deferred_jobs_.set(static_cast<double>(*s.deferred_jobs));
    if (s.s3_retries_total) s3_retries_.set(static_cast<double>(*s.s3_retries_total));
    if (s.inotify_overflows_total) {
        inotify_overflows_.set(static_cast<double>(*s.inotify_overflows_total));
    }
    if (s.rescans_total) rescans_.set(static_cast<double>(*s.rescans_total));
    if (s.db_reconnects_total) db_reconnects_.set(static_cast<double>(*s.db_reconnects_total));
}

}  // namespace imgspool
