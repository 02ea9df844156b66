// The pipeline as one ordered list of steps:
//   read -> validate -> hash -> cache lookup -> render -> store -> commit -> move to done/
// and on any failure: record the reason -> move to failed/ with NAME.error.json beside it.
#pragma once

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
    PipelineSettings settings_;
    JobDb& db_;
    ObjectStore& store_;
    JobObserver* observer_;
};

}  // namespace imgspool
