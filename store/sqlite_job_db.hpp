// The embedded job record: SQLite at <state_dir>/imgspool.db, WAL mode, safe to read with the
// sqlite3 CLI while the daemon runs. One connection; every call holds its mutex.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "store/job_db.hpp"
#include "store/job_db_common.hpp"

struct sqlite3;

namespace imgspool {

class SqliteJobDb final : public JobDb {
  public:
    // Opens or creates the database and its schema (PRAGMA user_version); WAL, busy timeout.
    // `node` is the name this daemon writes as. The state_dir lock allows one daemon per file,
    // so register_node makes every unfinished job this node's (a renamed host keeps its jobs)
    // and drops other names' waiting files; opening alone (status, process) changes no owner.
    static Result<std::unique_ptr<SqliteJobDb>> open(const std::filesystem::path& file,
                                                     const std::string& node = local_node_name());
    ~SqliteJobDb() override;

    std::string describe() const override;
    const std::string& node() const override;
    Status insert_job(const std::string& upload_id, const std::string& spool,
                      const std::string& source_name, const std::string& profile,
                      const JobRequest& request = {}) override;
    Result<bool> insert_claim(const std::string& upload_id, const std::string& spool,
                              const std::string& source_name, const std::string& profile,
                              const std::string& claim_key) override;
    Status forget_unclaimed(const std::string& upload_id) override;
    Status start_attempt(const std::string& upload_id) override;
    Status defer(const std::string& upload_id, const Error& error,
                 std::chrono::system_clock::time_point next_attempt) override;
    Result<int> record_crash(const std::string& upload_id) override;
    Status set_progress(const std::string& upload_id, int progress) override;
    Status set_request(const std::string& upload_id, const JobRequest& request) override;
    Status set_source(const std::string& upload_id, const std::string& source_hash,
                      std::uint64_t original_size, int width, int height,
                      const std::string& format) override;
    Status complete(const std::string& upload_id, const std::vector<StoredVariant>& outputs,
                    const std::string& cache_fingerprint, bool cache_hit = false,
                    std::int64_t duration_ms = 0, const Placeholders& placeholders = {}) override;
    Status fail(const std::string& upload_id, const Error& error) override;
    Result<std::optional<CachedSet>> cache_lookup(const std::string& source_hash,
                                                  const std::string& fingerprint) override;
    Result<std::optional<JobRecord>> find(const std::string& upload_id) override;
    Result<std::map<std::string, std::int64_t>> counts_by_status() override;
    Result<std::vector<JobRecord>> unfinished() override;
    Result<std::vector<InFlightJob>> jobs_in_flight() override;
    Result<std::vector<FailedJob>> failures_today() override;
    Result<std::vector<HourThroughput>> throughput_per_hour(int hours) override;
    Result<CacheHitRate> cache_hit_rate() override;
    Result<std::vector<DeferredJob>> jobs_deferred() override;
    Result<std::vector<WaitingFile>> waiting_files() override;
    Status replace_waiting_files(const std::vector<WaitingFile>& files) override;

    Status register_node(const NodeRegistration& me) override;
    Status heartbeat(const NodeCounters& counters) override;
    Status leave() override;
    Result<std::vector<AdoptedJob>> adopt_orphans(int limit,
                                                  const std::vector<std::string>& spools) override;
    Result<std::vector<NodeStatus>> nodes() override;

  private:
    struct Closer {
        void operator()(sqlite3* db) const;
    };
    using Handle = std::unique_ptr<sqlite3, Closer>;

    SqliteJobDb(Handle db, std::filesystem::path file, std::string node);
    // Under mutex_: the Stage::lease error of a nodes write that found another instance.
    Error taken_over(std::string_view what);

    Handle db_;
    std::filesystem::path file_;
    const std::string node_;
    std::mutex mutex_;
    std::string instance_;  // guarded by mutex_; set by register_node
};

}  // namespace imgspool
