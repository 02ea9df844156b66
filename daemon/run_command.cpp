// `imgspool run`: the daemon in the foreground until SIGTERM or SIGINT.
#include <signal.h>
#include <vips/vips.h>

#include <chrono>
#include <ctime>
#include <optional>

#include "common/log.hpp"
#include "daemon/commands.hpp"
#include "daemon/intake.hpp"
#include "metrics/http_server.hpp"
#include "metrics/imgspool_metrics.hpp"
#include "pipeline/finish.hpp"
#include "store/s3/s3_store.hpp"

namespace imgspool {
namespace {

// Blocks the stop signals in every thread; the main thread waits for them with sigtimedwait.
sigset_t block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

// Waits up to one second; true when a stop signal arrived.
bool wait_for_stop(const sigset_t& set) {
    timespec tick{1, 0};
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
        log::info("stop signal received", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        return true;
    }
    return false;
}

// Asking the store is a network request for S3: answer readiness probes from a recent result.
class StoreProbe {
  public:
    explicit StoreProbe(ObjectStore& store) : store_(store) {}
    std::optional<std::string> problem() {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        if (!checked_ || now - checked_at_ > std::chrono::seconds(10)) {
            Status st = store_.check();
            problem_ = st ? std::nullopt : std::optional<std::string>(st.error().reason);
            checked_at_ = now;
            checked_ = true;
        }
        return problem_;
    }

  private:
    ObjectStore& store_;
    std::mutex mutex_;
    bool checked_ = false;
    std::chrono::steady_clock::time_point checked_at_;
    std::optional<std::string> problem_;
};

}  // namespace

int run_daemon(Config config) {
    const sigset_t stop_signals = block_stop_signals();
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
    WorkerPool pool(
        workers, static_cast<size_t>(cfg.daemon.queue_max),
        [&pipeline](const Job& job) { pipeline.run(job); },
        [&runtime, &metrics](const Job& job, const std::string& what) {
            fail_after_exception(*runtime.db, job, what, &metrics);
        });
    Intake intake(runtime, pipeline, pool, &metrics);
    intake.recover();

    WatcherOptions options{cfg.spools, std::chrono::milliseconds(cfg.daemon.settle_ms),
                           std::chrono::seconds(cfg.daemon.rescan_s)};
    SpoolWatcher watcher(options, [&intake](const StableFile& f) { intake.accept(f); });
    if (Status st = watcher.start(); !st) {
        log::error("cannot watch spools", {{"error", st.error().message()}});
        pool.stop(false);
        return 1;
    }

    const auto* s3 = dynamic_cast<const S3Store*>(runtime.store.get());
    auto sample = [&] {
        metrics.sample(
            {.jobs_by_state = runtime.db->counts_by_status(),
             .queue_depth = static_cast<std::int64_t>(pool.queue_depth()),
             .s3_retries_total = s3 ? std::optional<std::uint64_t>(s3->retries()) : std::nullopt,
             .inotify_overflows_total = watcher.stats().overflows.load(),
             .rescans_total = watcher.stats().rescans.load()});
    };
    StoreProbe store_probe(*runtime.store);
    HttpServer http(
        {.bind = cfg.metrics.bind, .port = cfg.metrics.port},
        [&] {
            sample();
            return metrics.render();
        },
        [&]() -> Readiness {
            if (!watcher.armed()) return {false, "watchers not armed"};
            if (!runtime.db) return {false, "database not open"};
            if (auto problem = store_probe.problem()) {
                return {false, "store unreachable: " + *problem};
            }
            return {true, {}};
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

    while (!wait_for_stop(stop_signals)) {
    }

    // Stop taking files, let running jobs finish; queued ones stay claimed in work/ and are
    // resumed by the next start.
    http.stop();
    pool.stop(false);
    watcher.stop();
    log::info("imgspool stopped",
              {{"queued_for_next_start", static_cast<unsigned long long>(pool.queue_depth())}});
    return 0;
}

}  // namespace imgspool
