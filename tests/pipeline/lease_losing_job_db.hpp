// A JobDb for tests that loses a job's claim on cue: it forwards every call to a real JobDb,
// until the chosen update is called for the n-th time for a job. From then on that job belongs
// to another node, as on PostgreSQL after an adoption: that call and every later guarded update
// of the job answer a permanent Stage::lease error and write nothing. Reads still answer.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/job_db.hpp"

namespace imgspool::test {

class LeaseLosingJobDb final : public JobDb {
  public:
    // The guarded updates (those that check the job's owner).
    enum class Update {
        start_attempt,
        defer,
        record_crash,
        set_progress,
        set_request,
        set_source,
        complete,
        fail,
        forget_unclaimed
    };

    // The claim is lost at the `nth` call (1 = the first) of `lost_at` for a job.
    LeaseLosingJobDb(JobDb& real, Update lost_at, int nth = 1)
        : real_(real), lost_at_(lost_at), nth_(nth) {}

    static constexpr const char* kReason = "the job now belongs to node b (adopted from a)";

    // How many calls were refused.
    int refused() const {
        std::lock_guard lock(mutex_);
        return refused_;
    }

    std::string describe() const override { return "lease-losing " + real_.describe(); }
    Status insert_job(const std::string& upload_id, const std::string& spool,
                      const std::string& source_name, const std::string& profile,
                      const JobRequest& request = {}) override {
        return real_.insert_job(upload_id, spool, source_name, profile, request);
    }
    Status forget_unclaimed(const std::string& upload_id) override {
        if (auto lost = lose(Update::forget_unclaimed, upload_id)) return *lost;
        return real_.forget_unclaimed(upload_id);
    }
    Status start_attempt(const std::string& upload_id) override {
        if (auto lost = lose(Update::start_attempt, upload_id)) return *lost;
        return real_.start_attempt(upload_id);
    }
    Status defer(const std::string& upload_id, const Error& error,
                 std::chrono::system_clock::time_point next_attempt) override {
        if (auto lost = lose(Update::defer, upload_id)) return *lost;
        return real_.defer(upload_id, error, next_attempt);
    }
    Result<int> record_crash(const std::string& upload_id) override {
        if (auto lost = lose(Update::record_crash, upload_id)) return *lost;
        return real_.record_crash(upload_id);
    }
    Status set_progress(const std::string& upload_id, int progress) override {
        if (auto lost = lose(Update::set_progress, upload_id)) return *lost;
        return real_.set_progress(upload_id, progress);
    }
    Status set_request(const std::string& upload_id, const JobRequest& request) override {
        if (auto lost = lose(Update::set_request, upload_id)) return *lost;
        return real_.set_request(upload_id, request);
    }
    Status set_source(const std::string& upload_id, const std::string& source_hash,
                      std::uint64_t original_size, int width, int height,
                      const std::string& format) override {
        if (auto lost = lose(Update::set_source, upload_id)) return *lost;
        return real_.set_source(upload_id, source_hash, original_size, width, height, format);
    }
    Status complete(const std::string& upload_id, const std::vector<StoredVariant>& outputs,
                    const std::string& cache_fingerprint, bool cache_hit = false,
                    std::int64_t duration_ms = 0, const Placeholders& placeholders = {}) override {
        if (auto lost = lose(Update::complete, upload_id)) return *lost;
        return real_.complete(upload_id, outputs, cache_fingerprint, cache_hit, duration_ms,
                              placeholders);
    }
    Status fail(const std::string& upload_id, const Error& error) override {
        if (auto lost = lose(Update::fail, upload_id)) return *lost;
        return real_.fail(upload_id, error);
    }
    Result<std::optional<CachedSet>> cache_lookup(const std::string& source_hash,
                                                  const std::string& fingerprint) override {
        return real_.cache_lookup(source_hash, fingerprint);
    }
    Result<std::optional<JobRecord>> find(const std::string& upload_id) override {
        return real_.find(upload_id);
    }
    Result<std::map<std::string, std::int64_t>> counts_by_status() override {
        return real_.counts_by_status();
    }
    Result<std::vector<JobRecord>> unfinished() override { return real_.unfinished(); }
    Result<std::vector<InFlightJob>> jobs_in_flight() override { return real_.jobs_in_flight(); }
    Result<std::vector<FailedJob>> failures_today() override { return real_.failures_today(); }
    Result<std::vector<HourThroughput>> throughput_per_hour(int hours) override {
        return real_.throughput_per_hour(hours);
    }
    Result<CacheHitRate> cache_hit_rate() override { return real_.cache_hit_rate(); }
    Result<std::vector<DeferredJob>> jobs_deferred() override { return real_.jobs_deferred(); }
    Result<std::vector<WaitingFile>> waiting_files() override { return real_.waiting_files(); }
    Status replace_waiting_files(const std::vector<WaitingFile>& files) override {
        return real_.replace_waiting_files(files);
    }
    const std::string& node() const override { return real_.node(); }
    Result<bool> insert_claim(const std::string& upload_id, const std::string& spool,
                              const std::string& source_name, const std::string& profile,
                              const std::string& claim_key) override {
        return real_.insert_claim(upload_id, spool, source_name, profile, claim_key);
    }
    Status register_node(const NodeRegistration& me) override { return real_.register_node(me); }
    Status heartbeat(const NodeCounters& counters) override { return real_.heartbeat(counters); }
    Status leave() override { return real_.leave(); }
    Result<std::vector<AdoptedJob>> adopt_orphans(int limit,
                                                  const std::vector<std::string>& spools) override {
        return real_.adopt_orphans(limit, spools);
    }
    Result<std::vector<NodeStatus>> nodes() override { return real_.nodes(); }

  private:
    // The refusal when the job is (or now becomes) another node's; nullopt: forward the call.
    std::optional<Error> lose(Update update, const std::string& upload_id) {
        std::lock_guard lock(mutex_);
        if (update == lost_at_ && ++calls_[upload_id] == nth_) lost_.insert(upload_id);
        if (!lost_.contains(upload_id)) return std::nullopt;
        ++refused_;
        return make_error(Stage::lease, kReason);
    }

    JobDb& real_;
    const Update lost_at_;
    const int nth_;
    mutable std::mutex mutex_;
    std::map<std::string, int> calls_;  // calls of lost_at_, by upload_id
    std::set<std::string> lost_;        // jobs that belong to another node now
    int refused_ = 0;
};

}  // namespace imgspool::test
