// Intake: turns a stable inbox file (or a file left in work/ by a crash) into a queued job.
#pragma once

#include "daemon/runtime.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/worker_pool.hpp"
#include "watcher/claim.hpp"
#include "watcher/spool_watcher.hpp"

namespace imgspool {

class Intake {
  public:
    // observer (may be null) hears of files rejected without running the pipeline.
    Intake(Runtime& runtime, Pipeline& pipeline, WorkerPool& pool, JobObserver* observer);

    // The watcher's callback: claim, record as pending, queue (blocks while the queue is full).
    // Non-regular files go straight to failed/ with the reason; they are never opened.
    void accept(const StableFile& file);

    // At start-up, before the watcher: finishes what a crash left in work/. Committed jobs are
    // only moved to done/, failed ones to failed/, the rest are queued again; database rows
    // whose file is gone are marked failed with that reason.
    void recover();

    std::uint64_t rejected_files() const { return rejected_.load(); }

  private:
    void reject_non_regular(const SpoolLayout& spool, const StableFile& file);
    void recover_spool(const SpoolLayout& spool);

    Runtime& rt_;
    Pipeline& pipeline_;
    WorkerPool& pool_;
    JobObserver* observer_;
    std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace imgspool
