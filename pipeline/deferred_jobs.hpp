// Jobs waiting for their next run after a deferral, held in time order; one thread hands each to
// the worker pool when it is due. The database says the same (pending, next_attempt_at), so a
// restart finds them again; this is the running daemon's copy, which works while the database
// itself is the fault.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "pipeline/job.hpp"

namespace imgspool {

class DeferredJobs {
  public:
    using Clock = std::chrono::system_clock;
    // Hands a due job on; may block (a full queue). false: the receiver is stopping.
    using Submit = std::function<bool(Job)>;

    explicit DeferredJobs(Submit submit);
    ~DeferredJobs();  // stop()
    DeferredJobs(const DeferredJobs&) = delete;
    DeferredJobs& operator=(const DeferredJobs&) = delete;

    void start();
    // Ends the thread; jobs not yet due stay where they are (claimed in work/, pending in the
    // database) for the next start. Idempotent.
    void stop();

    void add(Job job, Clock::time_point due);
    // Every waiting job is due now: the fault that deferred them has cleared.
    void release_all();
    // Jobs waiting for their time (not those already handed on).
    std::size_t size() const;

  private:
    void loop();

    Submit submit_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::multimap<Clock::time_point, Job> waiting_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace imgspool
