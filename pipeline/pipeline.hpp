// The pipeline as one ordered list of steps:
//   start -> read (or, for a *.job.json manifest, fetch its source) -> validate -> hash -> cache
//   lookup -> render -> store -> commit -> move to done/
// On a fault that passes by itself (Error::transient) the job is deferred: it stays claimed in
// work/, its row says pending with last_error and next_attempt_at, and it runs again later.
// On any other failure: record the reason, delete what this run stored, move the original to
// failed/ with NAME.error.json beside it.
// When the job record refuses a write because another node adopted the job (Stage::lease), the
// run is abandoned (abandon() in finish.hpp): nothing more is written, deleted or moved.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "common/progress_tracker.hpp"
#include "pipeline/job.hpp"
#include "pipeline/pipeline_settings.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/retry_delay.hpp"
#include "pipeline/validate.hpp"
#include "store/job_db.hpp"
#include "store/object_store.hpp"

namespace imgspool {

class Pipeline {
  public:
    Pipeline(PipelineSettings settings, JobDb& db, std::shared_ptr<ObjectStore> store,
             JobObserver* observer = nullptr);
    // The store is not owned: it must outlive the pipeline.
    Pipeline(PipelineSettings settings, JobDb& db, ObjectStore& store,
             JobObserver* observer = nullptr);

    // The settings new claims take (Job::settings) and the store jobs starting now use; a
    // reload swaps them.
    SwappableSettings& current() { return current_; }

    // Runs one claimed job to its end, or defers it. Never throws; the outcome says what
    // happened: decided (the original in done/ or failed/), deferred (out.retry_at says when
    // to run it again), or abandoned: any write to the job record answered Stage::lease (the
    // job was adopted by another node), so the run stopped there and left everything as it was. A
    // job already recorded complete or failed (a restart, a retried move) is only moved on.
    // `heartbeat` (the worker's, may be null) beats at every step, so a step that hangs (a store
    // that never answers) shows in the systemd watchdog.
    JobOutcome run(const Job& job, Heartbeat* heartbeat = nullptr);

    // Recovery of a job whose database row already says complete (crash between commit and
    // move): only the move to done/ is left to do; the record gives the stored outputs.
    JobOutcome finish_completed(const Job& job, const JobRecord& record);
    // Recovery of a job already recorded failed: move it to failed/ with its reason.
    JobOutcome finish_failed(const Job& job, const JobRecord& record);

  private:
    struct Work;  // defined in pipeline.cpp
    using TimePoint = std::chrono::steady_clock::time_point;

    JobOutcome begin_outcome(const Job& job) const;
    Status step_start(Work& w);
    Status use_profile(Work& w, const std::string& name);
    Status step_read(Work& w, Heartbeat* heartbeat);
    Status step_fetch(Work& w, Heartbeat* heartbeat);
    Status step_validate(Work& w);
    Status step_hash_and_lookup(Work& w);
    Status step_render(Work& w);
    Status step_store(Work& w);
    Status step_commit(Work& w, TimePoint started);
    void finish_done(const Job& job, const PipelineSettings& settings, JobOutcome& out);
    // Records the failure, then removes what `run` (null for a recovered job) stored and moves
    // the original to failed/.
    void finish_failure(const Job& job, const PipelineSettings& settings, const Error& err,
                        JobOutcome& out, const Work* run = nullptr);
    void defer(const Job& job, const PipelineSettings& settings, const Error& err, JobOutcome& out);
    // Asks for another run when the original could not leave work/ yet.
    void retry_move(const Job& job, const PipelineSettings& settings, const Error& err,
                    JobOutcome& out);
    // The job's own settings snapshot, or the current ones for a job claimed without one.
    std::shared_ptr<const PipelineSettings> settings_for(const Job& job) const;
    void remove_stored(const Work& w);
    // Only a lost claim stops the job: other failures to record progress are logged and passed.
    Status set_progress(const std::string& upload_id, int progress);
    void report(const JobOutcome& out);

    SwappableSettings current_;
    JobDb& db_;
    JobObserver* observer_;
    std::mutex rng_mutex_;
    std::mt19937_64 rng_;  // jitter of the retry delays
};

}  // namespace imgspool
