#include "pipeline/finish.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "common/printable_json.hpp"
#include "common/printable_name.hpp"
#include "pipeline/hash.hpp"
#include "watcher/claim.hpp"

namespace imgspool {
namespace stdfs = std::filesystem;

namespace {

bool taken(const stdfs::path& p) {
    std::error_code ec;
    return stdfs::exists(stdfs::symlink_status(p, ec));
}

std::string now_iso() {
    const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string note_text(const FailureNote& note, const std::string& file) {
    nlohmann::json body = {
        {"upload_id", note.upload_id},
        {"spool", note.spool},
        {"source", note.source_name},
        {"file", file},
        {"stage", stage_name(note.error.stage)},
        {"error", note.error.reason},
        {"failed_at", now_iso()},
    };
    // The printable text of a name is lossy only where the name is not UTF-8: then the exact
    // bytes go beside it.
    if (!is_valid_utf8(note.source_name)) body["source_bytes_hex"] = hex_bytes(note.source_name);
    if (!is_valid_utf8(file)) body["file_bytes_hex"] = hex_bytes(file);
    return dump_printable(body, 2) + "\n";
}

}  // namespace

Result<stdfs::path> move_to_done(const SpoolLayout& spool, const stdfs::path& from,
                                 const stdfs::path& relative) {
    return fs::move_unique(from, spool.done() / relative);
}

std::string failure_note_name(const std::string& name) {
    static constexpr std::string_view kSuffix = ".error.json";
    if (name.size() + kSuffix.size() <= fs::kNameMax) return name + std::string(kSuffix);
    constexpr std::size_t kTag = 1 + 8;  // "~" + 8 hex digits
    const std::size_t keep = utf8_prefix_length(name, fs::kNameMax - kSuffix.size() - kTag);
    return name.substr(0, keep) + "~" + sha256_hex(name).substr(0, 8) + std::string(kSuffix);
}

Result<stdfs::path> move_to_failed(const SpoolLayout& spool, const stdfs::path& from,
                                   const stdfs::path& relative, const FailureNote& note) {
    const stdfs::path wanted = spool.failed() / relative;
    const stdfs::path dir = wanted.parent_path();
    const std::string name = wanted.filename().native();
    if (Status st = fs::make_dirs(dir); !st) return st.error();
    for (int n = 0; n < 10000; ++n) {
        const std::string file = n == 0 ? name : fs::numbered_name(name, n);
        const stdfs::path target = dir / file;
        const stdfs::path note_path = dir / failure_note_name(file);
        if (taken(target) || taken(note_path)) continue;
        // The note appears whole under its name (written beside it, then renamed without
        // replacing), so whoever watches failed/ never reads half of one.
        if (Status written =
                fs::write_file_atomic(note_path, note_text(note, file), fs::Existing::keep);
            !written) {
            if (taken(note_path)) continue;  // lost a race for the note's name: try the next one
            Error e = written.error();
            e.stage = Stage::move;
            e.reason = "cannot write failure note " + note_path.string() + ": " + e.reason;
            e.file = from.string();
            return e;
        }
        Status moved = fs::rename_noreplace(from, target);
        if (!moved) {
            ::unlink(note_path.c_str());
            if (taken(target)) continue;  // lost a race for the name: try the next one
            return moved.error();
        }
        return target;
    }
    return make_error(Stage::move, "no free name near " + wanted.string(), from.string());
}

namespace {

// The job was committed before the exception: its original belongs in done/.
void finish_committed(const Job& job, JobOutcome& out) {
    out.success = true;
    if (!taken(job.work_path)) return;
    auto moved = move_to_done(job.spool, job.work_path, job.relative);
    if (!moved) {
        log::error("cannot move original to done/", {{"upload_id", job.upload_id},
                                                     {"source", job.relative.string()},
                                                     {"error", moved.error().message()}});
        return;
    }
    remove_work_folder(job.spool, job.upload_id);
    out.final_path = moved.value();
}

// Records the job failed with the exception's text and moves its original to failed/.
void fail_uncommitted(JobDb& db, const Job& job, const std::string& what, JobOutcome& out) {
    const Error err =
        make_error(Stage::internal, "unexpected error: " + what, job.relative.string());
    out.error = err;
    if (Status st = db.fail(job.upload_id, err); !st) {
        if (claim_lost(st.error())) {
            abandon(job, st.error(), out);
            return;
        }
        log::error("cannot record failure", {{"upload_id", job.upload_id},
                                             {"source", job.relative.string()},
                                             {"error", st.error().message()}});
    }
    if (!taken(job.work_path)) return;
    const FailureNote note{job.upload_id, job.spool.name, job.relative.string(), err};
    auto moved = move_to_failed(job.spool, job.work_path, job.relative, note);
    if (!moved) {
        log::error("cannot move original to failed/", {{"upload_id", job.upload_id},
                                                       {"source", job.relative.string()},
                                                       {"error", moved.error().message()}});
        return;
    }
    remove_work_folder(job.spool, job.upload_id);
    out.final_path = moved.value();
}

}  // namespace

void abandon(const Job& job, const Error& err, JobOutcome& out) {
    out.abandoned = true;
    out.success = false;
    out.deferred = false;
    out.retry_at.reset();
    out.error = err;
    log::warn("claim lost", {{"upload_id", job.upload_id},
                             {"spool", job.spool.name},
                             {"source", job.relative.string()},
                             {"error", err.reason}});
}

void fail_after_exception(JobDb& db, const Job& job, const std::string& what,
                          JobObserver* observer) {
    try {
        JobOutcome out;
        out.upload_id = job.upload_id;
        out.spool = job.spool.name;
        out.profile = job.spool.profile;
        out.relative = job.relative;
        const auto record = db.find(job.upload_id);
        if (!record) {
            log::warn("cannot read the job record after a worker exception",
                      {{"upload_id", job.upload_id}, {"error", record.error().message()}});
        }
        if (record && *record && (*record)->status == "complete") {
            out.outputs = (*record)->outputs;
            finish_committed(job, out);
        } else {
            fail_uncommitted(db, job, what, out);
        }
        if (observer) {
            if (out.abandoned) {
                observer->job_abandoned(out);
            } else {
                observer->job_finished(out);
            }
        }
    } catch (const std::exception& e) {
        // Even failing the job threw: what is left in work/ is resumed at the next start.
        try {
            log::error("cannot fail job after an unexpected error",
                       {{"upload_id", job.upload_id}, {"error", e.what()}});
        } catch (...) {  // nothing is left to report with
        }
    } catch (...) {
    }
}

void remove_work_folder(const SpoolLayout& spool, const std::string& upload_id) {
    // Empty folders only: a file left behind stays for recovery.
    if (!upload_id.empty()) remove_empty_folders(spool.work() / upload_id);
}

}  // namespace imgspool
