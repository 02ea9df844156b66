// The last step of every job: the original leaves work/ for done/ or failed/, never
// overwriting anything (a clash gets a ".N" suffix), and a failure leaves NAME.error.json
// beside the original in failed/.
#pragma once

#include <filesystem>
#include <string>

#include "common/error.hpp"
#include "common/spool_layout.hpp"
#include "pipeline/job.hpp"
#include "store/job_db.hpp"

namespace imgspool {

// Moves `from` (in work/) to done/<relative>. Returns the path used.
Result<std::filesystem::path> move_to_done(const SpoolLayout& spool,
                                           const std::filesystem::path& from,
                                           const std::filesystem::path& relative);

struct FailureNote {
    std::string upload_id;
    std::string spool;
    std::string source_name;  // the path under inbox/, as bytes
    Error error;
};

// The note's file name for an original named `name` in failed/: NAME.error.json, or, when that
// would be longer than NAME_MAX, the name's first bytes (cut at a UTF-8 boundary) + "~" + 8 hex
// digits of the SHA-256 of the whole name + ".error.json". The note's "file" names the original.
std::string failure_note_name(const std::string& name);

// Writes the failure note beside where the original will go, then moves `from` to
// failed/<relative> (or a ".N" name when that or its note is taken). The note holds upload_id,
// spool, source (the path under inbox/) and file (the original's name in failed/) as printable
// text (printable_name), each with a *_bytes_hex twin when the bytes are not valid UTF-8, plus
// stage, error and failed_at. The note is written first so that a full disk leaves the original
// in work/ (a transient error) rather than in failed/ without its note; a note that cannot be
// written completely is removed. Returns the path of the original in failed/.
Result<std::filesystem::path> move_to_failed(const SpoolLayout& spool,
                                             const std::filesystem::path& from,
                                             const std::filesystem::path& relative,
                                             const FailureNote& note);

// True when `err` says the job's claim passed to another node (Stage::lease): every later write
// about the job would be refused the same way, and the job is the adopter's to finish.
inline bool claim_lost(const Error& err) {
    return err.stage == Stage::lease;
}

// The one way a run ends after its claim was lost: `out` becomes abandoned (not done, failed or
// deferred; no retry) and "claim lost" is logged at warn with the reason. Nothing else happens:
// no record of a failure, no deletion of stored objects (the adopter writes the same keys), no
// move out of work/<upload_id>/ (the adopter's folder now).
void abandon(const Job& job, const Error& err, JobOutcome& out);

// For a job whose handler threw (WorkerPool has logged the exception): unless the job is already
// complete (then the original goes to done/), records it failed with the exception's text and moves
// the original to failed/ with a note; then tells `observer` the outcome. A failure the job
// record refuses because the claim was lost abandons the job instead (observer: job_abandoned).
// Never throws; what it cannot do is logged.
void fail_after_exception(JobDb& db, const Job& job, const std::string& what,
                          JobObserver* observer = nullptr);

// Removes work/<upload_id>/ and the empty folders below it once the original has left.
void remove_work_folder(const SpoolLayout& spool, const std::string& upload_id);

}  // namespace imgspool
