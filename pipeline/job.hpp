// A job as it moves through the pipeline, and what happened to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/spool_layout.hpp"
#include "store/job_db.hpp"
#include "watcher/file_state.hpp"

namespace imgspool {

struct PipelineSettings;  // pipeline/pipeline_settings.hpp

struct Job {
    std::string upload_id;
    SpoolLayout spool;
    std::filesystem::path work_path;  // work/<upload_id>/<relative>
    std::filesystem::path relative;   // as it was under inbox/
    // The file as it was claimed (or last seen before a deferral): a run whose file differs
    // does not use it. nullopt after a restart: nothing to compare with.
    std::optional<FileState> claimed{};
    int deferrals = 0;  // runs of this process that ended deferred (for the backoff)
    // The settings (profiles, limits, key template, retries) as they were when the job was
    // claimed: a reload changes them for later claims only. Null: the pipeline's current ones.
    std::shared_ptr<const PipelineSettings> settings{};
};

struct JobOutcome {
    std::string upload_id;
    std::string spool;
    std::string profile;
    std::filesystem::path relative;
    bool success = false;
    bool cache_hit = false;
    std::optional<Error> error;  // set when !success, and when deferred
    // The outcome is not decided: a fault that passes (error says which); the job stays
    // claimed in work/ and runs again at retry_at.
    bool deferred = false;
    // Set when the job must run again (deferred, or decided but its original could not be moved
    // yet): when, and the file's state then (the next run requires it unchanged).
    std::optional<std::chrono::system_clock::time_point> retry_at;
    std::optional<FileState> seen;
    // The job's claim passed to another node (error says so, Stage::lease): this run stopped
    // without writing anything more. Neither done, failed nor deferred: the original stays in
    // work/<upload_id>/ and the stored objects stay, both the adopter's now.
    bool abandoned = false;
    // Where the original ended up (done/ or failed/); empty if it could not be moved.
    std::filesystem::path final_path;
    std::uint64_t original_bytes = 0;
    std::uint64_t output_bytes = 0;  // sum over outputs (0 on a cache hit: nothing stored)
    int width = 0;
    int height = 0;
    std::string format;
    std::vector<StoredVariant> outputs;
    Placeholders placeholders;  // those the profile asked for ("" otherwise)
    std::chrono::duration<double> elapsed{0};
};

// What the pipeline reports as it goes; metrics and progress displays implement it.
// Called from worker threads: implementations must be thread-safe.
class JobObserver {
  public:
    virtual ~JobObserver() = default;
    virtual void job_started(const Job&) {}
    virtual void job_finished(const JobOutcome&) {}
    virtual void job_deferred(const JobOutcome&) {}
    // A run stopped because another node adopted its job (JobOutcome::abandoned); never
    // followed by job_finished for this run.
    virtual void job_abandoned(const JobOutcome&) {}
};

// Passes each report on to several observers, in order.
class ObserverFanOut final : public JobObserver {
  public:
    explicit ObserverFanOut(std::vector<JobObserver*> observers)
        : observers_(std::move(observers)) {}
    void job_started(const Job& job) override {
        for (JobObserver* o : observers_) o->job_started(job);
    }
    void job_finished(const JobOutcome& out) override {
        for (JobObserver* o : observers_) o->job_finished(out);
    }
    void job_deferred(const JobOutcome& out) override {
        for (JobObserver* o : observers_) o->job_deferred(out);
    }
    void job_abandoned(const JobOutcome& out) override {
        for (JobObserver* o : observers_) o->job_abandoned(out);
    }

  private:
    std::vector<JobObserver*> observers_;
};

}  // namespace imgspool
