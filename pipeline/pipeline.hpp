// The pipeline as one ordered list of steps:
//   read -> validate -> hash -> cache lookup -> render -> store -> commit -> move to done/
// and on any failure: record the reason -> move to failed/ with NAME.error.json beside it.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "pipeline/job.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/validate.hpp"
#include "store/job_db.hpp"
#include "store/object_store.hpp"

namespace imgspool {

struct PipelineSettings {
    Limits limits;
    std::string key_template = "images/{upload_id}/{variant}.{ext}";
    std::map<std::string, Profile> profiles;  // built-in plus custom, by name
};

class Pipeline {
  public:
    Pipeline(PipelineSettings settings, JobDb& db, ObjectStore& store,
             JobObserver* observer = nullptr);

    // Runs one claimed job to its end. Never throws; the outcome says what happened, and the
    // original is in done/ or failed/ afterwards (unless moving it failed, which is logged).
    JobOutcome run(const Job& job);

    // Recovery of a job whose database row already says complete (crash between commit and
    // move): only the move to done/ is left to do.
    JobOutcome finish_completed(const Job& job);
    // Recovery of a job already recorded failed: move it to failed/ with its reason.
    JobOutcome finish_failed(const Job& job, const JobRecord& record);

  private:
    struct Work;  // defined in pipeline.cpp
    using TimePoint = std::chrono::steady_clock::time_point;

    JobOutcome begin_outcome(const Job& job) const;
    Status step_start(Work& w);
    Status step_read(Work& w);
    Status step_validate(Work& w);
    Status step_hash_and_lookup(Work& w);
    Status step_render(Work& w);
    Status step_store(Work& w);
    Status step_commit(Work& w, TimePoint started);
    void finish_done(const Job& job, JobOutcome& out);
    void finish_failure(const Job& job, const Error& err, JobOutcome& out);
    void report(const JobOutcome& out);

    PipelineSettings settings_;
    std::map<std::string, std::string> cache_keys_;  // profile name -> derivative cache key
    JobDb& db_;
    ObjectStore& store_;
    JobObserver* observer_;
};

}  // namespace imgspool
