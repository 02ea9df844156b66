// `imgspool run`: the daemon in the foreground until SIGTERM or SIGINT; SIGHUP reloads the
// configuration (daemon/reload.hpp).
#include <unistd.h>
#include <vips/vips.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <thread>

#include "common/log.hpp"
#include "daemon/commands.hpp"
#include "daemon/health_database.hpp"
#include "daemon/health_monitor.hpp"
#include "daemon/health_probes.hpp"
#include "daemon/http_dropin.hpp"
#include "daemon/instance_lock.hpp"
#include "daemon/intake.hpp"
#include "daemon/node_membership.hpp"
#include "daemon/open_job_db.hpp"
#include "daemon/reload.hpp"
#include "daemon/replaceable_watcher.hpp"
#include "daemon/service_notifier.hpp"
#include "daemon/service_reporter.hpp"
#include "daemon/service_status.hpp"
#include "daemon/signals.hpp"
#include "daemon/waiting_files_sync.hpp"
#include "metrics/http_server.hpp"
#include "metrics/imgspool_metrics.hpp"
#include "pipeline/deferred_jobs.hpp"
#include "pipeline/finish.hpp"
#include "pipeline/hash.hpp"
#include "upload/upload_server.hpp"

namespace imgspool {
namespace {

std::string host_name() {
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';  // shown as ""
    return host.data();
}

// Who the metrics are of (imgspool_node_info, the node label of every series).
NodeInfo node_info(const Config& cfg) {
    return {.node = cfg.daemon.node,
            .host = host_name(),
            .version = IMGSPOOL_VERSION,
            .database = uses_postgresql(cfg) ? "postgresql" : "sqlite"};
}

// This process as the nodes table records it. The cache scope tells nodes that store to
// different places apart (they cannot share derivatives): `imgspool status` shows it per node.
NodeRegistration registration_of(const Config& cfg, const std::string& store_description) {
    return {
        .host = host_name(),
        .instance = new_upload_id(),
        .state_dir = std::filesystem::absolute(cfg.daemon.state_dir).lexically_normal(),
        .pid = ::getpid(),
        .version = IMGSPOOL_VERSION,
        .workers = cfg.effective_workers(),
        .lease_s = cfg.daemon.lease_s,
        .cache_scope = sha256_hex(cfg.store.key_template + "\n" + store_description).substr(0, 12)};
}

}  // namespace

int run_daemon(Config config) {
    const StopSignals stop_signals;
    ServiceNotifier systemd = ServiceNotifier::from_environment();
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

    ImgspoolMetrics metrics(node_info(cfg));
    JobsToday jobs_today;
    jobs_today.seed(*runtime.db);
    ObserverFanOut observers({&metrics, &jobs_today});
    // The workers and the watcher beat here; the systemd watchdog is pinged while none is stuck.
    ProgressTracker progress;
    // The pipeline owns the store from here: a reload may swap it.
    Pipeline pipeline(pipeline_settings(cfg), *runtime.db, std::move(runtime.store), &observers);
    std::optional<WorkerPool> pool;  // built before deferred, which hands it due jobs
    DeferredJobs deferred([&pool](Job job) { return pool->submit(std::move(job)); });
    pool.emplace(
        workers, static_cast<size_t>(cfg.daemon.queue_max),
        [&pipeline, &deferred](const Job& job, Heartbeat& heartbeat) {
            const JobOutcome out = pipeline.run(job, &heartbeat);
            if (!out.retry_at) return;
            Job next = job;
            ++next.deferrals;
            if (out.seen) next.claimed = out.seen;  // the next run needs it unchanged
            deferred.add(std::move(next), *out.retry_at);
        },
        &progress,
        [&runtime, &metrics](const Job& job, const std::string& what) {
            fail_after_exception(*runtime.db, job, what, &metrics);
        });
    Intake intake(runtime, pipeline, *pool, deferred, &metrics);
    // Joined before recovery: from here on no other node adopts this node's jobs, and a node of
    // the same name alive elsewhere stops this start.
    auto membership = NodeMembership::join(
        *runtime.db, registration_of(cfg, pipeline.current().store()->describe()),
        {.counters =
             [&pool] {
                 return NodeCounters{.in_flight = pool->busy(),
                                     .queue_depth = static_cast<std::int64_t>(pool->queue_depth())};
             },
         .room =
             [&pool, workers] {
                 return std::max(
                     0, 2 * workers - pool->busy() - static_cast<int>(pool->queue_depth()));
             },
         .adopt = [&intake](const AdoptedJob& job) { intake.recover_adopted(job); },
         .spools = [&intake] { return intake.spool_names(); }});
    if (!membership) {
        log::error("cannot start", {{"error", membership.error().message()}});
        pool->stop(false);
        return 1;
    }
    NodeMembership& node = **membership;
    // What a crash left in work/ is listed now and finished once the watchers run, so new drops
    // do not wait behind it.
    const RecoveryPlan recovery = intake.plan_recovery();

    ReplaceableWatcher watcher([&intake](const StableFile& f) { return intake.accept(f); },
                               &progress);
    if (Status st = watcher.start(watcher_options(cfg)); !st) {
        log::error("cannot watch spools", {{"error", st.error().message()}});
        pool->stop(false);
        node.leave();
        return 1;
    }
    deferred.start();
    node.start();
    std::thread recovering([&intake, &recovery] { intake.recover(recovery); });
    WaitingFilesSync waiting([&watcher] { return watcher.waiting_files(); }, *runtime.db);
    (void)runtime.db->replace_waiting_files({});  // what an earlier run saw is judged again
    waiting.start();

    // Jobs deferred by a store or database fault need not wait out their backoff once it
    // answers again. PostgreSQL's pool tells at its first reconnect, the health check within
    // its interval (also for SQLite).
    const DatabaseRecoveryHook database_recovered(*runtime.db,
                                                  [&deferred] { deferred.release_all(); });
    HealthMonitor health(
        daemon_health_probes([&pipeline] { return pipeline.current().store(); }, *runtime.db),
        {.on_store_recovered = [&deferred] { deferred.release_all(); },
         .on_database_recovered = [&deferred] { deferred.release_all(); }});
    health.start();
    HttpDropIn dropin(intake, *runtime.db, pipeline.current(), cfg);
    upload::UploadServer uploads(
        {.bind = cfg.http.bind,
         .port = cfg.http.port,
         .max_connections = static_cast<unsigned>(cfg.http.max_connections),
         .idle_timeout_s = static_cast<unsigned>(cfg.http.idle_timeout_s),
         .request_timeout = std::chrono::seconds(cfg.http.request_timeout_s),
         .on_answer = [&metrics](std::string_view endpoint,
                                 unsigned status) { metrics.http_answered(endpoint, status); }},
        dropin);
    uploads.set_token(cfg.http.token);
    ConfigReloader reloader(
        cfg, std::move(locks).value(),
        {.pipeline = pipeline,
         .intake = intake,
         .watcher = watcher,
         .deferred = deferred,
         .reconfigure_http = [&](const Config& next) {
             dropin.reconfigure(next);
             uploads.set_token(next.http.token);
             uploads.set_request_timeout(std::chrono::seconds(next.http.request_timeout_s));
         }});
    auto sample = [&] {
        metrics.sample({.jobs_by_state = health.job_counts(),
                        .queue_depth = static_cast<std::int64_t>(pool->queue_depth()),
                        .deferred_jobs = static_cast<std::int64_t>(deferred.size()),
                        .s3_retries_total = reloader.s3_retries_total(),
                        .inotify_overflows_total = watcher.overflows(),
                        .rescans_total = watcher.rescans(),
                        .db_reconnects_total = database_reconnects(*runtime.db)});
    };
    HttpServer http(
        {.bind = cfg.metrics.bind, .port = cfg.metrics.port},
        [&] {
            sample();
            return metrics.render();
        },
        [&]() -> Readiness {
            if (!watcher.armed()) return {false, "watchers not armed"};
            if (auto problem = node.problem()) return {false, *problem};
            return health.readiness();
        });
    Status serving = ok_status();
    if (cfg.metrics.enabled) serving = http.start();
    if (serving && cfg.http.enabled) serving = uploads.start();
    if (!serving) {
        log::error("cannot serve HTTP", {{"error", serving.error().message()}});
        http.stop();
        watcher.stop();
        waiting.stop();
        pool->stop(false);
        deferred.stop();
        recovering.join();
        node.leave();
        return 1;
    }
    ServiceReporter reporter(
        systemd,
        {.status_line =
             [&] {
                 const JobsToday::Counts today = jobs_today.counts();
                 return format_service_status({.in_flight = static_cast<std::size_t>(pool->busy()),
                                               .queued = pool->queue_depth(),
                                               .waiting = watcher.waiting_files().size(),
                                               .deferred = deferred.size(),
                                               .done_today = today.done,
                                               .failed_today = today.failed});
             },
         .stuck =
             [&](std::chrono::steady_clock::duration limit) {
                 std::vector<std::string> stuck =
                     progress.stalled(std::chrono::steady_clock::now(), limit);
                 if (!watcher.armed()) stuck.emplace_back("the watcher (not armed)");
                 return stuck;
             }});
    // The database is open and the watches are armed (start() returned): files dropped from now
    // on are seen, and those dropped before were found by the start-up scan.
    if (watcher.armed()) systemd.ready();
    reporter.start();
    log::info(
        "imgspool started",
        {{"workers", workers},
         {"spools", static_cast<unsigned long long>(cfg.spools.size())},
         {"store", pipeline.current().store()->describe()},
         {"database", runtime.db->describe()},
         {"metrics", cfg.metrics.enabled ? cfg.metrics.bind + ":" + std::to_string(http.port())
                                         : std::string("off")},
         {"http_dropin", cfg.http.enabled ? cfg.http.bind + ":" + std::to_string(uploads.port())
                                          : std::string("off")}});

    for (DaemonSignal sig = DaemonSignal::none; sig != DaemonSignal::stop;
         sig = stop_signals.wait()) {
        if (sig != DaemonSignal::reload) continue;
        // systemd waits for READY=1 after RELOADING=1 (`systemctl reload` returns then); the
        // reload logs what it applied, or why it was rejected and the running config stays.
        systemd.reloading();
        (void)reloader.reload();
        systemd.ready();
    }
    systemd.stopping();
    reporter.stop();
    systemd.status("stopping: finishing " + std::to_string(pool->busy()) + " jobs in flight");

    // Stop taking files, let running jobs finish; queued and deferred ones stay claimed in work/
    // and pending in the database, and the next start resumes them.
    uploads.stop();  // no new jobs from clients; an upload being received is not answered
    http.stop();
    health.stop();
    watcher.stop();
    waiting.stop();
    pool->stop(false);  // also frees a hand-over of `deferred` or `recovering` waiting for room
    deferred.stop();
    recovering.join();
    // Other nodes sharing the spool take over the queued and deferred jobs now, not after lease_s.
    node.leave();
    log::info("imgspool stopped",
              {{"queued_for_next_start", static_cast<unsigned long long>(pool->queue_depth())},
               {"deferred", static_cast<unsigned long long>(deferred.size())}});
    return 0;
}

}  // namespace imgspool
