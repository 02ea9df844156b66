// `imgspool run`: the daemon in the foreground until SIGTERM or SIGINT.
#include <vips/vips.h>

#include <chrono>

#include "common/log.hpp"
#include "daemon/commands.hpp"
#include "daemon/health_monitor.hpp"
#include "daemon/health_probes.hpp"
#include "daemon/instance_lock.hpp"
#include "daemon/intake.hpp"
#include "daemon/signals.hpp"
#include "metrics/http_server.hpp"
#include "metrics/imgspool_metrics.hpp"
#include "store/s3/s3_store.hpp"

namespace imgspool {

int run_daemon(Config config) {
    const StopSignals stop_signals;
    auto locks = lock_instance(config);
    if (!locks) {
        log::error("cannot start", {{"error", locks.error().reason}});
        return 1;
    }
    auto rt = open_runtime(std::move(config));
    if (!rt) {
        log::error("cannot start", {{"error", rt.error().message()}});
        return 1;
    }
    Runtime& runtime = rt.value();
    const Config& cfg = runtime.config;
    const int workers = cfg.effective_workers();
    vips_concurrency_set(vips_threads_per_worker(workers));

    ImgspoolMetrics metrics;
    Pipeline pipeline(pipeline_settings(cfg), *runtime.db, *runtime.store, &metrics);
    WorkerPool pool(workers, static_cast<size_t>(cfg.daemon.queue_max),
                    [&pipeline](const Job& job) { pipeline.run(job); });
    Intake intake(runtime, pipeline, pool, &metrics);
    intake.recover();

    WatcherOptions options{cfg.spools, std::chrono::milliseconds(cfg.daemon.settle_ms),
                           std::chrono::seconds(cfg.daemon.rescan_s), cfg.daemon.state_dir};
    SpoolWatcher watcher(options, [&intake](const StableFile& f) { intake.accept(f); });
    if (Status st = watcher.start(); !st) {
        log::error("cannot watch spools", {{"error", st.error().message()}});
        pool.stop(false);
        return 1;
    }

    auto probes = daemon_health_probes(cfg.store, *runtime.db);
    if (!probes) {
        log::error("cannot check the store", {{"error", probes.error().message()}});
        pool.stop(false);
        watcher.stop();
        return 1;
    }
    HealthMonitor health(std::move(probes).value());
    health.start();
    const auto* s3 = dynamic_cast<const S3Store*>(runtime.store.get());
    auto sample = [&] {
        metrics.sample(
            {.jobs_by_state = health.job_counts(),
             .queue_depth = static_cast<std::int64_t>(pool.queue_depth()),
             .s3_retries_total = s3 ? std::optional<std::uint64_t>(s3->retries()) : std::nullopt,
             .inotify_overflows_total = watcher.stats().overflows.load(),
             .rescans_total = watcher.stats().rescans.load()});
    };
    HttpServer http(
        {.bind = cfg.metrics.bind, .port = cfg.metrics.port},
        [&] {
            sample();
            return metrics.render();
        },
        [&]() -> Readiness {
            if (!watcher.armed()) return {false, "watchers not armed"};
            return health.readiness();
        });
    if (cfg.metrics.enabled) {
        if (Status st = http.start(); !st) {
            log::error("cannot serve metrics", {{"error", st.error().message()}});
            pool.stop(false);
            watcher.stop();
            return 1;
        }
    }
    log::info("imgspool started", {{"workers", workers},
                                   {"spools", static_cast<unsigned long long>(cfg.spools.size())},
                                   {"store", runtime.store->describe()},
                                   {"database", cfg.database_path().string()},
                                   {"metrics", cfg.metrics.enabled ? cfg.metrics.bind + ":" +
                                                                         std::to_string(http.port())
                                                                   : std::string("off")}});

    while (!stop_signals.wait_for_stop()) {
    }

    // Stop taking files, let running jobs finish; queued ones stay claimed in work/ and are
    // resumed by the next start.
    http.stop();
    health.stop();
    pool.stop(false);
    watcher.stop();
    log::info("imgspool stopped",
              {{"queued_for_next_start", static_cast<unsigned long long>(pool.queue_depth())}});
    return 0;
}

}  // namespace imgspool
