// A job as it moves through the pipeline, and what happened to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/spool_layout.hpp"
#include "store/job_db.hpp"

namespace imgspool {

struct Job {
    std::string upload_id;
    SpoolLayout spool;
    std::filesystem::path work_path;  // work/<upload_id>/<relative>
    std::filesystem::path relative;   // as it was under inbox/
};

struct JobOutcome {
    std::string upload_id;
    std::string spool;
    std::string profile;
    std::filesystem::path relative;
    bool success = false;
    bool cache_hit = false;
    std::optional<Error> error;  // set when !success
    // Where the original ended up (done/ or failed/); empty if it could not be moved.
    std::filesystem::path final_path;
    std::uint64_t original_bytes = 0;
    std::uint64_t output_bytes = 0;  // sum over outputs (0 on a cache hit: nothing stored)
    int width = 0;
    int height = 0;
    std::string format;
    std::vector<StoredVariant> outputs;
    std::chrono::duration<double> elapsed{0};
};

// What the pipeline reports as it goes; metrics and progress displays implement it.
// Called from worker threads: implementations must be thread-safe.
class JobObserver {
  public:
    virtual ~JobObserver() = default;
    virtual void job_started(const Job&) {}
    virtual void job_finished(const JobOutcome&) {}
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

  private:
    std::vector<JobObserver*> observers_;
};

}  // namespace imgspool
