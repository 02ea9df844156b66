// N worker threads running pipeline jobs from a bounded queue.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/progress_tracker.hpp"
#include "pipeline/bounded_queue.hpp"
#include "pipeline/job.hpp"

namespace imgspool {

class WorkerPool {
  public:
    using Handler = std::function<void(const Job&)>;
    // A handler given the worker's heartbeat, to beat as the job moves from step to step.
    using TrackedHandler = std::function<void(const Job&, Heartbeat&)>;
    // Called with the job and the exception's text when the handler throws (e.g.
    // fail_after_exception). The worker logs the exception first and carries on with the next
    // job either way: one job's exception never ends the process.
    using CrashHandler = std::function<void(const Job&, const std::string& what)>;

    WorkerPool(int workers, std::size_t queue_max, Handler handler,
               CrashHandler on_crash = nullptr);
    // Each worker has a heartbeat in `progress` (when not null): parked while it waits for a
    // job, unparked while it runs one, beaten by the handler at every step.
    WorkerPool(int workers, std::size_t queue_max, TrackedHandler handler,
               ProgressTracker* progress, CrashHandler on_crash = nullptr);
    ~WorkerPool();  // stop(false) then join
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Blocks while the queue is full. false once the pool is stopping.
    bool submit(Job job);
    // Blocks until fewer than `limit` jobs are queued (a node sharing a spool claims a file only
    // when a worker will soon be free, leaving the rest to nodes with idle workers). false once
    // the pool is stopping.
    bool wait_for_room(std::size_t limit) { return queue_.wait_below(limit); }
    // Never blocks (for threads that answer clients): false, with `job` untouched, while the
    // queue is full or the pool is stopping.
    bool try_submit(Job& job);

    // drain=true: finish every queued job, then end (batch mode). drain=false: finish only the
    // jobs already running; queued jobs stay where they are (claimed in work/) for the next
    // start to resume. Returns once all workers have ended.
    void stop(bool drain);

    std::size_t queue_depth() const { return queue_.size(); }
    std::size_t queue_capacity() const { return queue_.capacity(); }
    int busy() const { return busy_.load(); }
    int size() const { return static_cast<int>(threads_.size()); }

  private:
    void work(int index);
    void run_guarded(const Job& job, Heartbeat& heartbeat);

    TrackedHandler handler_;
    CrashHandler on_crash_;
    ProgressTracker* progress_;
    BoundedQueue<Job> queue_;
    std::atomic<int> busy_{0};
    std::vector<std::thread> threads_;
};

}  // namespace imgspool
