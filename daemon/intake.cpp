#include "daemon/intake.hpp"

#include <sys/stat.h>

#include <set>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "common/printable_name.hpp"
#include "daemon/claim_key.hpp"
#include "daemon/open_job_db.hpp"
#include "pipeline/finish.hpp"

namespace imgspool {

namespace {

// A claim refused this many times for a reason that will not pass goes to failed/ as a copy.
constexpr int kMaxClaimRefusals = 3;

// Moves a received upload to its place in work/. The temporary file is in the first spool's
// work/; another spool's may be on another file system, and then the bytes are copied next to
// their place first, so the last step is still one atomic rename.
Status place_upload(const std::filesystem::path& temp, const std::filesystem::path& work,
                    const std::filesystem::path& dest) {
    Status moved = fs::rename_noreplace(temp, dest);
    if (moved || temp.parent_path() == work) return moved;
    const std::filesystem::path near = work / (dest.filename().string() + ".part");
    std::error_code ec;
    std::filesystem::copy_file(temp, near, std::filesystem::copy_options::none, ec);
    if (ec) {
        Error e = make_error(Stage::claim,
                             "cannot copy the upload to " + near.string() + ": " + ec.message());
        e.transient = is_transient_errno(ec.value());
        std::filesystem::remove(near, ec);  // a partial copy; the temporary file is the caller's
        return e;
    }
    moved = fs::rename_noreplace(near, dest);
    if (!moved) {
        std::filesystem::remove(near, ec);
        return moved;
    }
    // The bytes are in place: the temporary file in the other spool's work/ has served.
    std::filesystem::remove(temp, ec);
    return moved;
}

std::string kind_of(const std::filesystem::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return "vanished";
    if (S_ISLNK(st.st_mode)) return "a symbolic link";
    if (S_ISFIFO(st.st_mode)) return "a FIFO";
    if (S_ISSOCK(st.st_mode)) return "a socket";
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return "a device";
    if (S_ISDIR(st.st_mode)) return "a folder";
    return "not a regular file";
}

}  // namespace

Intake::Intake(Runtime& runtime, Pipeline& pipeline, WorkerPool& pool, DeferredJobs& deferred,
               JobObserver* observer)
    : rt_(runtime),
      pipeline_(pipeline),
      pool_(pool),
      deferred_(deferred),
      observer_(observer),
      max_deferred_(runtime.config.daemon.max_deferred),
      lazy_claims_(uses_postgresql(runtime.config)),
      spools_(std::make_shared<const std::vector<SpoolLayout>>(runtime.config.spools)),
      settings_(pipeline.current().settings()) {}

void Intake::reconfigure(std::vector<SpoolLayout> spools,
                         std::shared_ptr<const PipelineSettings> settings, int max_deferred) {
    auto next = std::make_shared<const std::vector<SpoolLayout>>(std::move(spools));
    max_deferred_ = max_deferred;
    std::lock_guard lock(mutex_);
    spools_.swap(next);
    settings_.swap(settings);
}

bool Intake::intake_paused() {
    const int max_deferred = max_deferred_;
    const auto limit = static_cast<std::size_t>(max_deferred);
    const std::size_t waiting = deferred_.size();
    std::lock_guard lock(mutex_);
    if (waiting < limit) {
        if (paused_logged_) log::info("intake resumed", {{"deferred_jobs", waiting}});
        paused_logged_ = false;
        return false;
    }
    if (!paused_logged_) {
        log::warn("intake paused: too many deferred jobs; new files wait in inbox/",
                  {{"deferred_jobs", waiting}, {"max_deferred", max_deferred}});
    }
    paused_logged_ = true;
    return true;
}

Offer Intake::accept(const StableFile& file) {
    std::optional<SpoolLayout> spool;
    std::shared_ptr<const PipelineSettings> settings;
    {
        std::lock_guard lock(mutex_);
        for (const SpoolLayout& s : *spools_) {
            if (s.name == file.spool) spool = s;
        }
        settings = settings_;
    }
    // A spool removed by a reload: the file stays in inbox/, its watcher is being replaced.
    if (!spool) return Offer::taken;
    if (intake_paused()) return Offer::try_later;
    if (!file.regular) return reject_non_regular(*spool, file);
    if (!file.abandoned.empty()) return fail_abandoned(*spool, file);

    // Nodes sharing the spool: claim only when a worker will soon be free, so a burst of files
    // is spread over the nodes with idle workers instead of queueing behind one.
    if (lazy_claims_ && !pool_.wait_for_room(static_cast<std::size_t>(pool_.size()))) {
        return Offer::try_later;  // stopping: the file stays in inbox/
    }
    const std::string upload_id = new_upload_id();
    const std::string source = printable_name(file.relative.native());
    if (std::optional<Offer> not_ours = record_claim(*spool, file, upload_id, source)) {
        return *not_ours;
    }
    auto claimed = claim(*spool, file.path, upload_id);
    if (!claimed) {
        if (Status st = rt_.db->forget_unclaimed(upload_id); !st) {
            log::warn("cannot remove the row of an unclaimed file",
                      {{"upload_id", upload_id}, {"error", st.error().message()}});
        }
        return claim_refused(*spool, file, claimed.error());
    }
    {
        std::lock_guard lock(mutex_);
        claim_refusals_.erase({spool->name, source});
    }
    const ClaimedFile& c = claimed.value();
    log::debug("claimed", {{"upload_id", c.upload_id}, {"spool", spool->name}, {"source", source}});
    // false only while stopping: the file stays claimed and recorded for the next start.
    // The settings as they are now go with the job: a reload while it waits changes nothing.
    (void)pool_.submit(
        Job{c.upload_id, *spool, c.work_path, c.relative, c.state, 0, std::move(settings)});
    return Offer::taken;
}

std::optional<std::string> Intake::busy_reason() {
    if (intake_paused()) {
        return "intake paused: " + std::to_string(deferred_.size()) + " jobs are deferred";
    }
    if (pool_.queue_depth() >= pool_.queue_capacity()) {
        return "queue full (" + std::to_string(pool_.queue_depth()) + " jobs waiting)";
    }
    return std::nullopt;
}

Result<std::string> Intake::accept_upload(const ReceivedUpload& upload) {
    std::optional<SpoolLayout> spool;
    std::shared_ptr<const PipelineSettings> settings;
    {
        std::lock_guard lock(mutex_);
        for (const SpoolLayout& s : *spools_) {
            if (upload.spool.empty() ? !spool : s.name == upload.spool) spool = s;
        }
        settings = settings_;
    }
    if (!spool) return make_error(Stage::config, "no spool named \"" + upload.spool + "\"");
    if (!upload.request.profile.empty()) {
        if (!settings->profiles.count(upload.request.profile)) {
            return make_error(Stage::config, "no profile named \"" + upload.request.profile + "\"");
        }
        spool->profile = upload.request.profile;  // this job's profile; the row records it
    }
    const std::string upload_id = new_upload_id();
    const std::filesystem::path relative =
        std::filesystem::path("http") / (upload_id + upload.extension);
    // Recorded first, as a dropped file is: nothing sits in work/ without a row.
    if (Status st = rt_.db->insert_job(upload_id, spool->name, relative.string(), spool->profile,
                                       upload.request);
        !st) {
        return st.error();
    }
    const std::filesystem::path dest = spool->work() / upload_id / relative;
    if (Status moved = place_upload(upload.temp, spool->work(), dest); !moved) {
        (void)rt_.db->forget_unclaimed(upload_id);
        remove_empty_folders(spool->work() / upload_id);
        return moved.error();
    }
    std::optional<FileState> state = lstat_state(dest);
    Job job{upload_id, *spool, dest, relative, state, 0, std::move(settings)};
    log::info("upload accepted", {{"upload_id", upload_id},
                                  {"spool", spool->name},
                                  {"source", relative.string()},
                                  {"bytes", state ? state->size : 0}});
    // The HTTP thread never waits for room: a job the queue cannot take now runs a little later.
    if (!pool_.try_submit(job)) {
        deferred_.add(job, std::chrono::system_clock::now() + job.settings->recheck_after);
    }
    return upload_id;
}

Offer Intake::claim_refused(const SpoolLayout& spool, const StableFile& file, const Error& error) {
    const std::string source = file.relative.string();
    if (error.transient) {
        log::info("cannot claim now; offered again",
                  {{"spool", spool.name}, {"source", source}, {"error", error.reason}});
        return Offer::try_later;
    }
    if (!std::filesystem::exists(std::filesystem::symlink_status(file.path))) {
        return Offer::taken;  // gone between settling and claiming: nothing to do
    }
    int refusals = 0;
    {
        std::lock_guard lock(mutex_);
        refusals = ++claim_refusals_[{spool.name, source}];
    }
    if (refusals < kMaxClaimRefusals) {
        log::warn("cannot claim file", {{"spool", spool.name},
                                        {"source", source},
                                        {"error", error.reason},
                                        {"tries", refusals}});
        return Offer::try_later;
    }
    if (refusals > kMaxClaimRefusals) return Offer::taken;  // noted once in failed/ already
    // The original cannot leave inbox/ (the daemon may not write there): a copy goes to
    // failed/ with the reason, and the original stays where the user put it.
    const std::string upload_id = new_upload_id();
    const std::filesystem::path copy = spool.work() / upload_id / file.relative;
    std::error_code ec;
    if (Status made = fs::make_dirs(copy.parent_path()); made) {
        std::filesystem::copy_file(file.path, copy, std::filesystem::copy_options::none, ec);
    }
    if (ec || !std::filesystem::exists(copy)) {
        remove_empty_folders(spool.work() / upload_id);
        log::error("cannot claim file, nor copy it to failed/; it stays in inbox/",
                   {{"spool", spool.name}, {"source", source}, {"error", error.reason}});
        return Offer::taken;
    }
    const Error err = make_error(
        Stage::claim,
        "cannot claim the file: " + error.reason + " (tried " + std::to_string(refusals) +
            " times); this is a copy, the original is still in inbox/ where the daemon cannot "
            "move it",
        source);
    fail_recorded(spool, upload_id, copy, file.relative, err);
    return Offer::taken;
}

// Recorded first: a file is never in work/ (or failed/) without a row that says why. The
// database decides which node claims it: only one row per unfinished claim key can exist,
// whatever the renames of several NFS clients would say.
std::optional<Offer> Intake::record_claim(const SpoolLayout& spool, const StableFile& file,
                                          const std::string& upload_id, const std::string& source) {
    const std::optional<FileState> state = lstat_state(file.path);
    if (!state) return Offer::taken;  // claimed by another node meanwhile, or taken away
    auto recorded = rt_.db->insert_claim(upload_id, spool.name, source, spool.profile,
                                         claim_key_of(*state, file.relative));
    if (!recorded) {
        log::warn(
            "cannot record a new job; the file stays in inbox/ and is offered again",
            {{"spool", spool.name}, {"source", source}, {"error", recorded.error().message()}});
        return Offer::try_later;
    }
    if (!*recorded) {
        log::debug("claimed by another node", {{"spool", spool.name}, {"source", source}});
        return Offer::taken;
    }
    return std::nullopt;
}

Offer Intake::fail_abandoned(const SpoolLayout& spool, const StableFile& file) {
    const std::string upload_id = new_upload_id();
    const std::string source = printable_name(file.relative.native());
    if (std::optional<Offer> not_ours = record_claim(spool, file, upload_id, source)) {
        return *not_ours;
    }
    // A writer that is still there loses nothing: the file keeps its bytes in failed/.
    const std::filesystem::path dest = spool.work() / upload_id / file.relative;
    if (Status moved = fs::rename_noreplace(file.path, dest); !moved) {
        (void)rt_.db->forget_unclaimed(upload_id);
        remove_empty_folders(spool.work() / upload_id);
        return claim_refused(spool, file, moved.error());
    }
    fail_recorded(spool, upload_id, dest, file.relative,
                  make_error(Stage::validate, file.abandoned, source));
    return Offer::taken;
}

// Records a job that failed before it ran and moves its file (in work/) to failed/ with the
// note; if the move cannot be done now, the pipeline's retry of a recorded failure does it.
void Intake::fail_recorded(const SpoolLayout& spool, const std::string& upload_id,
                           const std::filesystem::path& path, const std::filesystem::path& relative,
                           const Error& error) {
    if (Status st = rt_.db->fail(upload_id, error); !st) {
        // Its row stays pending and the file in work/: the next start decides again.
        log::error("cannot record a failure; decided again at the next start",
                   {{"upload_id", upload_id},
                    {"spool", spool.name},
                    {"source", relative.string()},
                    {"error", st.error().message()}});
        return;
    }
    // The pipeline moves a job recorded failed to failed/ with its note, and retries the move.
    (void)pool_.submit(Job{upload_id, spool, path, relative, std::nullopt, 0});
    ++rejected_;
    log::warn("job failed", {{"upload_id", upload_id},
                             {"spool", spool.name},
                             {"source", relative.string()},
                             {"stage", stage_name(error.stage)},
                             {"error", error.reason}});
}

Offer Intake::reject_non_regular(const SpoolLayout& spool, const StableFile& file) {
    const std::string upload_id = new_upload_id();
    const Error err = make_error(Stage::validate,
                                 "not a regular file (" + kind_of(file.path) +
                                     "): only regular files are taken, it was not opened",
                                 file.relative.string());
    const std::string source = printable_name(file.relative.native());
    if (std::optional<Offer> not_ours = record_claim(spool, file, upload_id, source)) {
        return *not_ours;
    }
    if (Status st = rt_.db->fail(upload_id, err); !st) {
        // The link or FIFO still goes to failed/ with its note; the row stays pending without a
        // file, and the next start forgets it (a row whose file never reached work/).
        log::error("cannot record a failure; its row is forgotten at the next start",
                   {{"upload_id", upload_id},
                    {"spool", spool.name},
                    {"source", source},
                    {"error", st.error().message()}});
    }
    FailureNote note{upload_id, spool.name, file.relative.string(), err};
    // rename() moves the link or FIFO itself; nothing is read through it.
    auto moved = move_to_failed(spool, file.path, file.relative, note);
    ++rejected_;
    if (observer_) {
        JobOutcome out;
        out.upload_id = upload_id;
        out.spool = spool.name;
        out.profile = spool.profile;
        out.relative = file.relative;
        out.error = err;
        if (moved) out.final_path = moved.value();
        observer_->job_finished(out);
    }
    log::warn("job failed", {{"upload_id", upload_id},
                             {"spool", spool.name},
                             {"source", file.relative.string()},
                             {"stage", "validate"},
                             {"error", err.reason},
                             {"path", moved ? moved.value().string() : std::string()}});
    return Offer::taken;
}

RecoveryPlan Intake::plan_recovery() {
    RecoveryPlan plan;
    for (const SpoolLayout& spool : rt_.config.spools) {
        for (ClaimedFile& c : list_claimed(spool)) plan.claimed.push_back({&spool, std::move(c)});
    }
    if (auto rows = rt_.db->unfinished()) {
        plan.unfinished = std::move(*rows);
    } else {
        // Rows without a file are judged at the next start; the files are judged row by row.
        log::error("cannot list unfinished jobs; orphaned rows are left for the next start",
                   {{"error", rows.error().message()}});
    }
    return plan;
}

void Intake::recover(const RecoveryPlan& plan) {
    std::set<std::string> present;
    for (const RecoveryPlan::Claimed& c : plan.claimed) {
        present.insert(c.file.upload_id);
        recover_file(c);
    }
    for (const JobRecord& r : plan.unfinished) {
        if (!present.count(r.upload_id)) recover_orphan_row(r);
    }
}

void Intake::recover_file(const RecoveryPlan::Claimed& c) {
    const SpoolLayout& spool = *c.spool;
    const std::string source = printable_name(c.file.relative.native());
    auto found = rt_.db->find(c.file.upload_id);
    Job job{c.file.upload_id, spool, c.file.work_path, c.file.relative, std::nullopt, 0};
    if (!found) {
        // Unknown is not absent: re-inserting could claim a row that exists. The pipeline
        // reads the record again when the job's time comes.
        deferred_.add(job, std::chrono::system_clock::now() +
                               std::chrono::seconds(rt_.config.daemon.retry_min_s));
        log::warn("cannot read the job record; the job is tried again later",
                  {{"upload_id", c.file.upload_id},
                   {"spool", spool.name},
                   {"source", source},
                   {"error", found.error().message()}});
        return;
    }
    const std::optional<JobRecord>& record = *found;
    // Another node's job on a shared spool: it finishes it, or adopts it if that node died.
    if (record && record->node != rt_.db->node()) return;
    // An upload or a manifest may have asked for another profile than the spool's.
    if (record && !record->profile.empty()) job.spool.profile = record->profile;
    if (!record) {
        (void)rt_.db->insert_job(c.file.upload_id, spool.name, source, spool.profile);
    } else if (record->status == "processing") {
        // The daemon died while this job ran. Counted, so a file that kills the decoder does
        // not take the daemon down at every start.
        auto crashes = rt_.db->record_crash(c.file.upload_id);
        if (crashes && *crashes >= rt_.config.daemon.max_job_attempts) {
            fail_recorded(spool, c.file.upload_id, c.file.work_path, c.file.relative,
                          make_error(Stage::internal,
                                     "processing this file stopped the daemon " +
                                         std::to_string(*crashes) + " times",
                                     source));
            return;
        }
    } else if (record->status == "pending" && !record->next_attempt_at.empty()) {
        deferred_.add(
            job, parse_iso_utc(record->next_attempt_at).value_or(std::chrono::system_clock::now()));
        log::info("deferred job waits for its time",
                  {{"upload_id", c.file.upload_id},
                   {"spool", spool.name},
                   {"source", source},
                   {"next_attempt_at", record->next_attempt_at}});
        return;
    }
    log::info("resuming job",
              {{"upload_id", c.file.upload_id}, {"spool", spool.name}, {"source", source}});
    (void)pool_.submit(job);  // the pipeline finishes complete and failed ones, runs the rest
}

std::vector<std::string> Intake::spool_names() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> names;
    for (const SpoolLayout& s : *spools_) names.push_back(s.name);
    return names;
}

void Intake::recover_adopted(const AdoptedJob& adopted) {
    const JobRecord& r = adopted.record;
    std::optional<SpoolLayout> spool;
    {
        std::lock_guard lock(mutex_);
        for (const SpoolLayout& s : *spools_) {
            if (s.name == r.spool) spool = s;
        }
    }
    if (!spool) {
        log::error(
            "adopted a job of a spool a reload just removed from this node; it stays pending "
            "until this node stops, when a node that has the spool adopts it",
            {{"upload_id", r.upload_id}, {"spool", r.spool}, {"from_node", adopted.from_node}});
        return;
    }
    const std::vector<ClaimedFile> files = list_claimed(*spool, r.upload_id);
    if (files.empty()) {
        recover_orphan_row(r);
        return;
    }
    // The adoption counted a run the dead node had in progress as a crash, as a restart would.
    if (r.crashes >= rt_.config.daemon.max_job_attempts) {
        const ClaimedFile& f = files.front();
        fail_recorded(*spool, r.upload_id, f.work_path, f.relative,
                      make_error(Stage::internal,
                                 "processing this file stopped a daemon " +
                                     std::to_string(r.crashes) + " times",
                                 r.source_name));
        return;
    }
    for (const ClaimedFile& f : files) recover_file({&*spool, f});
}

void Intake::recover_orphan_row(const JobRecord& r) {
    if (r.attempts == 0 && r.status == "pending") {
        // Recorded, then the claim never happened (a crash in between): the file is still in
        // inbox/ or was taken away by its owner. Not a job.
        (void)rt_.db->forget_unclaimed(r.upload_id);
        return;
    }
    const Error err =
        make_error(Stage::claim, "source file vanished from work/ before a restart", r.source_name);
    (void)rt_.db->fail(r.upload_id, err);
    log::warn("job failed", {{"upload_id", r.upload_id},
                             {"spool", r.spool},
                             {"source", r.source_name},
                             {"stage", "claim"},
                             {"error", err.reason}});
}

}  // namespace imgspool
