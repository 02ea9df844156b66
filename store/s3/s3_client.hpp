// The S3 calls (PUT, multipart, DELETE, HEAD) are written against this: a batch budget (how many
// attempts, which timeouts) over the store's shared TransferEngine, which owns the connections.
#pragma once

#include <vector>

#include "common/error.hpp"
#include "store/s3/transfer_engine.hpp"
#include "store/s3_config.hpp"

namespace imgspool::s3 {

// The budget of a job's requests: the configured attempts, timeouts and parallel_uploads.
BatchOptions job_options(const S3Config& config);

// The readiness check's own small budget, so a stalled store answers within seconds, not after
// max_attempts full request timeouts: at most 2 attempts, connect within 2 s, answer within 5 s,
// all of it (a free connection included) within 2 × 5 s + 1 s; ahead of queued job requests.
BatchOptions check_options(const S3Config& config);

// Cheap to make; safe to use from several threads at once (the engine is).
class S3Client {
  public:
    S3Client(TransferEngine& engine, BatchOptions options) : engine_(engine), options_(options) {}

    // Every request, with what each may have left on the server.
    BatchResult perform_all(const std::vector<S3Request>& requests);

    // The answers in request order, or the first request's final failure (Stage::store,
    // "PUT key: HTTP 503 SlowDown: ... (gave up after 5 attempts)", transient when it may pass).
    Result<std::vector<S3Response>> perform(const std::vector<S3Request>& requests);

    Result<S3Response> perform_one(const S3Request& request);

    const Endpoint& endpoint() const { return engine_.endpoint(); }
    const Credentials& credentials() const { return engine_.credentials(); }

  private:
    TransferEngine& engine_;
    BatchOptions options_;
};

}  // namespace imgspool::s3
