// Intake: turns a stable inbox file (or a file left in work/ by a crash) into a queued job.
// A file is recorded in the database before it is claimed, so nothing sits in work/ without a
// row that says why; while the database cannot record it, the file stays in inbox/.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "daemon/runtime.hpp"
#include "pipeline/deferred_jobs.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/worker_pool.hpp"
#include "watcher/claim.hpp"
#include "watcher/spool_watcher.hpp"

namespace imgspool {

// What a crash or a stop left behind, listed before the watchers start (so files claimed
// afterwards are not mistaken for it) and finished on a thread of its own.
struct RecoveryPlan {
    struct Claimed {
        const SpoolLayout* spool;
        ClaimedFile file;
    };
    std::vector<Claimed> claimed;       // files in work/
    std::vector<JobRecord> unfinished;  // pending or processing rows
};

// A file the HTTP drop-in received and checked, waiting in a spool's work/ folder (directly in
// it, where no job's files are) to become a job.
struct ReceivedUpload {
    std::filesystem::path temp;
    std::string extension;  // ".jpg", ".png", ".webp" or ".job.json"
    std::string spool;      // "" = the first spool
    JobRequest request;     // origin "http"; request.profile "" = the spool's
};

class Intake {
  public:
    // observer (may be null) hears of files rejected without running the pipeline. The spools
    // and max_deferred are the runtime's config until a reload sets others.
    Intake(Runtime& runtime, Pipeline& pipeline, WorkerPool& pool, DeferredJobs& deferred,
           JobObserver* observer);

    // The watcher's callback: record as pending, claim, queue (blocks while the queue is full).
    // Non-regular files and abandoned incomplete ones go to failed/ with the reason. try_later
    // while too many jobs are deferred, the database cannot record the job, or a writer holds
    // the file.
    Offer accept(const StableFile& file);

    // The HTTP drop-in's way in: records the job, moves the file into work/<id>/http/<id><ext>
    // and queues it (without waiting: a full queue defers it instead), so the pipeline runs it
    // like a dropped file. Returns the job's upload_id. The temporary file is the caller's to
    // remove when this fails. Errors: Stage::config for an unknown spool or profile; transient
    // when the database or the disk cannot take it now. Any thread.
    Result<std::string> accept_upload(const ReceivedUpload& upload);
    // Why new uploads cannot be taken now (intake paused, queue full), or nullopt.
    std::optional<std::string> busy_reason();

    RecoveryPlan plan_recovery();
    // Committed jobs are only moved to done/, failed ones to failed/; a job whose run was cut
    // short is counted as a crash and run again, or failed once it stopped the daemon
    // max_job_attempts times; deferred ones wait for their time; rows whose file is gone are
    // failed with that reason.
    void recover(const RecoveryPlan& plan);
    // A job taken over from a node that stopped or fell silent (NodeMembership): resumed as a
    // restart would resume it (its file in work/<id>/ runs again; a row whose file never left
    // inbox/ is forgotten so any node claims the file afresh). Any thread.
    void recover_adopted(const AdoptedJob& adopted);
    // The names of the spools files are taken from now (a reload may change them). Any thread.
    std::vector<std::string> spool_names();

    std::uint64_t rejected_files() const { return rejected_.load(); }

    // A reload: files of spools not in the list are no longer taken (the watcher stops
    // reporting them; one it reports meanwhile stays in inbox/); later claims carry `settings`.
    // Spools and settings change together, so no claim pairs a spool with a profile set that
    // lacks its profile. Any thread.
    void reconfigure(std::vector<SpoolLayout> spools,
                     std::shared_ptr<const PipelineSettings> settings, int max_deferred);

  private:
    using FileId = std::pair<std::string, std::string>;  // spool, relative path

    // Records this node's claim of `file`: nullopt when it is this node's; otherwise what to
    // answer the watcher (another node has it, or the database cannot say now).
    // `source` is the file's printable name, as the row records it.
    std::optional<Offer> record_claim(const SpoolLayout& spool, const StableFile& file,
                                      const std::string& upload_id, const std::string& source);
    Offer reject_non_regular(const SpoolLayout& spool, const StableFile& file);
    Offer fail_abandoned(const SpoolLayout& spool, const StableFile& file);
    Offer claim_refused(const SpoolLayout& spool, const StableFile& file, const Error& error);
    void recover_file(const RecoveryPlan::Claimed& c);
    void recover_orphan_row(const JobRecord& record);
    void fail_recorded(const SpoolLayout& spool, const std::string& upload_id,
                       const std::filesystem::path& path, const std::filesystem::path& relative,
                       const Error& error);
    bool intake_paused();

    Runtime& rt_;
    Pipeline& pipeline_;
    WorkerPool& pool_;
    DeferredJobs& deferred_;
    JobObserver* observer_;
    std::atomic<std::uint64_t> rejected_{0};
    std::atomic<int> max_deferred_;
    const bool lazy_claims_;  // other nodes share the spools (PostgreSQL job record)

    std::mutex mutex_;  // guards the members below (accept runs on the watcher's thread only,
                        // but recovery may reach them too)
    // Claims refused for a reason that will not pass (EACCES, EROFS, ...), per file; at
    // kMaxClaimRefusals a copy goes to failed/ with the reason, and later refusals are quiet.
    std::map<FileId, int> claim_refusals_;
    bool paused_logged_ = false;
    std::shared_ptr<const std::vector<SpoolLayout>> spools_;  // the spools files are taken from
    std::shared_ptr<const PipelineSettings> settings_;        // what their claims carry
};

}  // namespace imgspool
