#include "daemon/intake.hpp"

#include <sys/stat.h>

#include <set>

#include "common/log.hpp"
#include "pipeline/finish.hpp"

namespace imgspool {

namespace {

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

Intake::Intake(Runtime& runtime, Pipeline& pipeline, WorkerPool& pool, JobObserver* observer)
    : rt_(runtime), pipeline_(pipeline), pool_(pool), observer_(observer) {}

void Intake::accept(const StableFile& file) {
    const SpoolLayout* spool = find_spool(rt_.config, file.spool);
    if (!spool) return;
    if (!file.regular) {
        reject_non_regular(*spool, file);
        return;
    }
    auto claimed = claim(*spool, file.path, new_upload_id());
    if (!claimed) {
        // Usually the file vanished or was replaced between settling and claiming; the
        // watcher reports it again if it is still there.
        log::warn("cannot claim file", {{"spool", spool->name},
                                        {"source", file.relative.string()},
                                        {"error", claimed.error().message()}});
        return;
    }
    const ClaimedFile& c = claimed.value();
    if (Status st =
            rt_.db->insert_job(c.upload_id, spool->name, c.relative.string(), spool->profile);
        !st) {
        // Left in work/: the next start records and runs it.
        log::error("cannot record job", {{"upload_id", c.upload_id},
                                         {"spool", spool->name},
                                         {"source", c.relative.string()},
                                         {"error", st.error().message()}});
        return;
    }
    log::debug(
        "claimed",
        {{"upload_id", c.upload_id}, {"spool", spool->name}, {"source", c.relative.string()}});
    pool_.submit(Job{c.upload_id, *spool, c.work_path, c.relative});
}

void Intake::reject_non_regular(const SpoolLayout& spool, const StableFile& file) {
    const std::string upload_id = new_upload_id();
    const Error err = make_error(Stage::validate,
                                 "not a regular file (" + kind_of(file.path) +
                                     "): only regular files are taken, it was not opened",
                                 file.relative.string());
    (void)rt_.db->insert_job(upload_id, spool.name, file.relative.string(), spool.profile);
    (void)rt_.db->fail(upload_id, err);
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
}

void Intake::recover() {
    for (const SpoolLayout& spool : rt_.config.spools) recover_spool(spool);
}

void Intake::recover_spool(const SpoolLayout& spool) {
    std::set<std::string> present;
    for (const ClaimedFile& c : list_claimed(spool)) {
        present.insert(c.upload_id);
        const Job job{c.upload_id, spool, c.work_path, c.relative};
        auto record = rt_.db->find(c.upload_id);
        if (record && record->status == "complete") {
            pipeline_.finish_completed(job);
        } else if (record && record->status == "failed") {
            pipeline_.finish_failed(job, *record);
        } else {
            if (!record) {
                (void)rt_.db->insert_job(c.upload_id, spool.name, c.relative.string(),
                                         spool.profile);
            }
            log::info("resuming job", {{"upload_id", c.upload_id},
                                       {"spool", spool.name},
                                       {"source", c.relative.string()}});
            pool_.submit(job);
        }
    }
    for (const JobRecord& r : rt_.db->unfinished()) {
        if (r.spool != spool.name || present.count(r.upload_id)) continue;
        const Error err = make_error(
            Stage::claim, "source file vanished from work/ before a restart", r.source_name);
        (void)rt_.db->fail(r.upload_id, err);
        log::warn("job failed", {{"upload_id", r.upload_id},
                                 {"spool", spool.name},
                                 {"source", r.source_name},
                                 {"stage", "claim"},
                                 {"error", err.reason}});
    }
}

}  // namespace imgspool
