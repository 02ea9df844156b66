// The job record: every job, its stored derivatives, the derivative cache and the views
// `imgspool status` and the documented queries read. SqliteJobDb (store/sqlite_job_db.hpp) is
// the embedded default. Implementations are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "store/job_db_common.hpp"
#include "store/job_records.hpp"

namespace imgspool {

class JobDb {
  public:
    virtual ~JobDb() = default;

    // What the daemon logs and check-config prints: backend and place, never a secret.
    virtual std::string describe() const = 0;
    // The node this JobDb writes as: new rows are its, and it updates only its own rows.
    virtual const std::string& node() const = 0;

    // pending row; a second insert of the same upload_id is a no-op (recovery re-inserts).
    // request: what an HTTP upload's form said, recorded at accept time; drops leave it
    // empty. A non-empty request.profile is the job's profile instead of `profile`, as in
    // set_request. Metadata that is not a JSON object is refused (Stage::validate).
    virtual Status insert_job(const std::string& upload_id, const std::string& spool,
                              const std::string& source_name, const std::string& profile,
                              const JobRequest& request = {}) = 0;
    // The claim of a dropped file: inserts the pending row owned by this node unless a row with
    // (spool, claim_key) exists. true: this node has it; false: another node (or an earlier run)
    // has it. The key stays with the row, so a file's identity is claimed once.
    virtual Result<bool> insert_claim(const std::string& upload_id, const std::string& spool,
                                      const std::string& source_name, const std::string& profile,
                                      const std::string& claim_key) = 0;
    // Removes the row of a job whose file could not be claimed after all (never started), which
    // frees its claim key.
    virtual Status forget_unclaimed(const std::string& upload_id) = 0;
    // Ownership: forget_unclaimed and every update below touch only this node's rows. A job of
    // another node is refused with a permanent Stage::lease error ("... the job now belongs to
    // node b (adopted from a)"), whatever its status: the claim passed to that node.
    // The updates below are refused (Stage::commit error) for an unknown or a complete job.
    // status processing and attempts + 1: counted before the run, so a run that kills the
    // daemon is known at the next start.
    virtual Status start_attempt(const std::string& upload_id) = 0;
    // Back to pending after a fault that passes: last_error, next_attempt_at (UTC).
    virtual Status defer(const std::string& upload_id, const Error& error,
                         std::chrono::system_clock::time_point next_attempt) = 0;
    // A run found cut short at start-up (status processing): crashes + 1, status pending.
    // Returns the new number of crashes.
    virtual Result<int> record_crash(const std::string& upload_id) = 0;
    virtual Status set_progress(const std::string& upload_id, int progress) = 0;  // 0-100
    // What a manifest asked for, once it is read: replaces every request column, and the
    // profile too when request.profile is non-empty. Refused like the updates above, and
    // (Stage::validate) for metadata that is not a JSON object.
    virtual Status set_request(const std::string& upload_id, const JobRequest& request) = 0;
    virtual Status set_source(const std::string& upload_id, const std::string& source_hash,
                              std::uint64_t original_size, int width, int height,
                              const std::string& format) = 0;

    // One transaction: images row with the URLs and placeholders, status complete, progress
    // 100, and (when cache_fingerprint is non-empty and this was no cache hit) the
    // derivative_cache row for (source_hash, fingerprint), naming this job as the one that
    // rendered the outputs. A job that is already complete is refused (the first record stands).
    virtual Status complete(const std::string& upload_id, const std::vector<StoredVariant>& outputs,
                            const std::string& cache_fingerprint, bool cache_hit = false,
                            std::int64_t duration_ms = 0,
                            const Placeholders& placeholders = {}) = 0;
    // status failed with error.reason and stage_name(error.stage); refused for a complete job.
    virtual Status fail(const std::string& upload_id, const Error& error) = 0;

    // Variants (and placeholders) stored earlier for these bytes and profile settings; none
    // when nothing is.
    virtual Result<std::optional<CachedSet>> cache_lookup(const std::string& source_hash,
                                                          const std::string& fingerprint) = 0;

    // An error is not "no such job": a database that does not answer says nothing about the
    // job, and callers defer instead of acting on its absence.
    virtual Result<std::optional<JobRecord>> find(const std::string& upload_id) = 0;
    // Jobs per status, every status present (0 when none), plus "waiting" files.
    virtual Result<std::map<std::string, std::int64_t>> counts_by_status() = 0;
    // This node's pending or processing jobs, oldest first.
    virtual Result<std::vector<JobRecord>> unfinished() = 0;

    // The views, as `imgspool status` shows them; errors name the view.
    virtual Result<std::vector<InFlightJob>> jobs_in_flight() = 0;  // oldest first
    virtual Result<std::vector<FailedJob>>
    failures_today() = 0;  // since midnight UTC, newest first
    virtual Result<std::vector<HourThroughput>> throughput_per_hour(int hours) = 0;  // newest first
    virtual Result<CacheHitRate> cache_hit_rate() = 0;
    virtual Result<std::vector<DeferredJob>> jobs_deferred() = 0;  // soonest first
    virtual Result<std::vector<WaitingFile>> waiting_files() = 0;  // oldest first

    // Replaces this node's rows of waiting_files with `files` (one transaction); other nodes'
    // rows stay.
    virtual Status replace_waiting_files(const std::vector<WaitingFile>& files) = 0;

    // ---- nodes: who shares the database, and whose jobs are orphans ----
    // Takes the node name for this process. Taken when no row holds it, the holder stopped, its
    // heartbeat is older than its lease_s, it ran on this host with this state_dir (this process
    // holds that state_dir's lock, so it is dead), or it ran on this host and its pid is gone.
    // Otherwise a live holder refuses: a permanent Stage::config error naming host, pid and
    // heartbeat age.
    virtual Status register_node(const NodeRegistration& me) = 0;
    // heartbeat_at = now (database clock) + counters; a permanent Stage::lease error when another
    // instance holds the name (or none registered it).
    virtual Status heartbeat(const NodeCounters& counters) = 0;
    // Clean stop: state = 'stopped', so other nodes adopt this node's queued jobs at once.
    virtual Status leave() = 0;
    // Up to `limit` unfinished jobs of nodes that stopped or are silent past their lease_s, of the
    // spools named (the ones this node takes files from: a job of another spool is left to a node
    // that has it), now this node's (FOR UPDATE SKIP LOCKED on PostgreSQL, so adopters share
    // them); processing rows get crashes + 1, and all become pending. Oldest first.
    virtual Result<std::vector<AdoptedJob>> adopt_orphans(
        int limit, const std::vector<std::string>& spools) = 0;
    virtual Result<std::vector<NodeStatus>> nodes() = 0;  // node_status, by node name

    // The schema version this build writes; opening migrates older databases up to it.
    static constexpr int schema_version = 5;

  protected:
    JobDb() = default;
    JobDb(const JobDb&) = delete;
    JobDb& operator=(const JobDb&) = delete;
};

}  // namespace imgspool
