#include "pipeline/worker_pool.hpp"

#include <exception>

#include "common/log.hpp"

namespace imgspool {

WorkerPool::WorkerPool(int workers, std::size_t queue_max, Handler handler, CrashHandler on_crash)
    : WorkerPool(
          workers, queue_max,
          [handler = std::move(handler)](const Job& job, Heartbeat&) { handler(job); }, nullptr,
          std::move(on_crash)) {}

WorkerPool::WorkerPool(int workers, std::size_t queue_max, TrackedHandler handler,
                       ProgressTracker* progress, CrashHandler on_crash)
    : handler_(std::move(handler)),
      on_crash_(std::move(on_crash)),
      progress_(progress),
      queue_(queue_max) {
    if (workers < 1) workers = 1;
    threads_.reserve(static_cast<size_t>(workers));
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { work(i + 1); });
}

WorkerPool::~WorkerPool() {
    stop(false);
}

bool WorkerPool::submit(Job job) {
    return queue_.push(std::move(job));
}

bool WorkerPool::try_submit(Job& job) {
    return queue_.try_push(job);
}

void WorkerPool::stop(bool drain) {
    queue_.close(drain);
    for (std::thread& t : threads_) {
        if (t.joinable()) t.join();
    }
}

void WorkerPool::work(int index) {
    const std::shared_ptr<Heartbeat> heartbeat =
        heartbeat_in(progress_, "worker " + std::to_string(index));
    heartbeat->park();
    while (auto job = queue_.pop()) {
        heartbeat->unpark();
        ++busy_;
        run_guarded(*job, *heartbeat);
        --busy_;
        heartbeat->park();
    }
}

void WorkerPool::run_guarded(const Job& job, Heartbeat& heartbeat) {
    std::string what;
    try {
        handler_(job, heartbeat);
        return;
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
        what = "an exception that is not a std::exception";
    }
    try {
        log::error("job handler threw", {{"upload_id", job.upload_id},
                                         {"spool", job.spool.name},
                                         {"source", job.relative.string()},
                                         {"error", what}});
        if (on_crash_) on_crash_(job, what);
    } catch (...) {  // the crash handler's own failure: the worker still goes on
    }
}

}  // namespace imgspool
