#include "pipeline/worker_pool.hpp"

#include <exception>

#include "common/log.hpp"

namespace imgspool {

WorkerPool::WorkerPool(int workers, std::size_t queue_max, Handler handler, CrashHandler on_crash)
    : handler_(std::move(handler)), on_crash_(std::move(on_crash)), queue_(queue_max) {
    if (workers < 1) workers = 1;
    threads_.reserve(static_cast<size_t>(workers));
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
    stop(false);
}

bool WorkerPool::submit(Job job) {
    return queue_.push(std::move(job));
}

void WorkerPool::stop(bool drain) {
    queue_.close(drain);
    for (std::thread& t : threads_) {
        if (t.joinable()) t.join();
    }
}

void WorkerPool::work() {
    while (auto job = queue_.pop()) {
        ++busy_;
        run_guarded(*job);
        --busy_;
    }
}

void WorkerPool::run_guarded(const Job& job) {
    std::string what;
    try {
        handler_(job);
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
