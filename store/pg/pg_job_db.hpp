// The job record on PostgreSQL: what several hosts share. The same tables, views and answers as
// SqliteJobDb (store/pg/pg_schema.cpp); every call runs on a pooled connection, so workers do
// not wait for each other. A lost connection or a server restart is a transient error (the job
// defers) and the pool reconnects; a serialization failure or deadlock is retried in place.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "store/job_db.hpp"
#include "store/pg/database_settings.hpp"
#include "store/pg/pg_pool.hpp"

namespace imgspool::pg {

class PgJobDb final : public JobDb {
  public:
    // Connects, checks the server, and creates or migrates the schema (pg_schema.hpp).
    // pool_size: connections kept (at least 1); node_name: the node this JobDb writes as (also
    // in application_name, for pg_stat_activity).
    static Result<std::unique_ptr<PgJobDb>> open(const DatabaseSettings& settings, int pool_size,
                                                 std::string node_name);

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

    std::string describe() const override;

    // The pool's: called once when the server answers again after an outage (the daemon
    // releases its deferred jobs then), and the sessions re-established so far (a metric).
    void on_recovered(std::function<void()> callback);
    std::uint64_t reconnects() const;

  private:
    PgJobDb(std::unique_ptr<ConnectionPool> pool, std::string description, std::string node);
    std::string instance() const;
    Error taken_over(Connection& conn, const std::string& instance, std::string_view what);

    std::unique_ptr<ConnectionPool> pool_;
    std::string description_;  // "postgresql host=… port=… dbname=… user=…", no password
    const std::string node_;
    mutable std::mutex instance_mutex_;
    std::string instance_;  // guarded by instance_mutex_; set by register_node
};

}  // namespace imgspool::pg
