#include "pipeline/deferred_jobs.hpp"

#include <vector>

namespace imgspool {

DeferredJobs::DeferredJobs(Submit submit) : submit_(std::move(submit)) {}

DeferredJobs::~DeferredJobs() {
    stop();
}

void DeferredJobs::start() {
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || stopping_) return;
    thread_ = std::thread([this] { loop(); });
}

void DeferredJobs::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void DeferredJobs::add(Job job, Clock::time_point due) {
    {
        std::lock_guard lock(mutex_);
        waiting_.emplace(due, std::move(job));
    }
    changed_.notify_all();
}

void DeferredJobs::release_all() {
    {
        std::lock_guard lock(mutex_);
        std::multimap<Clock::time_point, Job> now;
        const auto t = Clock::now();
        for (auto& [due, job] : waiting_) now.emplace(std::min(due, t), std::move(job));
        waiting_.swap(now);
    }
    changed_.notify_all();
}

std::size_t DeferredJobs::size() const {
    std::lock_guard lock(mutex_);
    return waiting_.size();
}

void DeferredJobs::loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (waiting_.empty()) {
            changed_.wait(lock);
            continue;
        }
        const auto due = waiting_.begin()->first;
        if (Clock::now() < due) {
            changed_.wait_until(lock, due);
            continue;
        }
        Job job = std::move(waiting_.begin()->second);
        waiting_.erase(waiting_.begin());
        lock.unlock();
        const bool taken = submit_(std::move(job));
        lock.lock();
        if (!taken) return;  // the pool is stopping; the job stays claimed for the next start
    }
}

}  // namespace imgspool
