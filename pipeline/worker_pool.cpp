#include "pipeline/worker_pool.hpp"

namespace imgspool {

WorkerPool::WorkerPool(int workers, std::size_t queue_max, Handler handler)
    : handler_(std::move(handler)), queue_(queue_max) {
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
        handler_(*job);
        --busy_;
    }
}

}  // namespace imgspool
