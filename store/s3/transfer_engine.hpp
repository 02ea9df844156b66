// The S3 store's connection pool: one libcurl multi handle driven by one store thread, shared by
// every request of every job. Connections (and TLS sessions) stay open between requests and
// jobs, and at most max_connections requests are in flight across the whole store, so a burst of
// jobs never opens more connections than that. Callers on any thread hand a batch of requests
// over and wait for its result; only the store thread touches libcurl.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "store/s3/curl_handles.hpp"
#include "store/s3/curl_share.hpp"
#include "store/s3/retry_policy.hpp"
#include "store/s3/s3_url.hpp"
#include "store/s3/sigv4.hpp"
#include "store/s3_config.hpp"

namespace imgspool::s3 {

struct S3Request {
    std::string method;       // "PUT", "POST", "HEAD", "DELETE", "GET"
    std::string key;          // object key; empty: the bucket itself
    NameValues query;         // decoded, e.g. {{"partNumber", "1"}, {"uploadId", id}}
    NameValues headers;       // sent and signed besides Host, X-Amz-*, Content-MD5
    std::string_view body;    // borrowed until the batch is done
    std::string label;        // names the request in errors and logs: "PUT images/x/small.jpg"
    bool missing_ok = false;  // a 404 answer counts as success (DELETE of what may not exist)
    // Empty: the configured bucket; else another one at the same service. (The `= {}` lets the
    // many requests that brace-initialise up to `label` leave it out under -Wextra.)
    std::string bucket = {};
    // A 2xx answer's whole body goes here (written on the store thread, cleared before every
    // attempt) instead of S3Response::body; error answers still go to S3Response::body. Must
    // outlive the batch. More than body_limit bytes (announced or received) fail the request for
    // good, without retries: the body is cut while it streams, never held beyond the limit.
    std::string* body_out = nullptr;
    std::uint64_t body_limit = 0;
};

struct S3Response {
    long status = 0;
    std::string body;    // the first 64 KiB
    NameValues headers;  // lower-case names
    int attempts = 0;
    bool body_too_large = false;  // the request failed because its body passed body_limit

    // The value of a response header (lower-case name), "" when absent.
    std::string header(std::string_view name) const;
};

// What a request may have left on the server once its batch is over.
enum class RequestFate {
    not_written,    // never sent, or every attempt was answered with an error
    written,        // answered 2xx
    maybe_written,  // an attempt broke after the request was sent: the server may have acted
};

// How hard one batch tries. Jobs use the configured values; the readiness check a small budget.
struct BatchOptions {
    int parallel = 8;  // requests of this batch in flight at once
    int max_attempts = 5;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds request_timeout{60000};  // per attempt
    // The whole batch, waiting for a free connection included; zero: no limit beyond the
    // per-attempt timeouts.
    std::chrono::milliseconds deadline{0};
    bool urgent = false;  // starts before the requests of batches handed over earlier
};

struct BatchResult {
    std::vector<S3Response> responses;  // in request order
    std::vector<RequestFate> fates;     // in request order
    // The first request's final failure (Stage::store; transient when retrying later may
    // succeed). After it no further request of the batch is started or retried; the ones
    // already running are let finish, so `fates` is exact.
    std::optional<Error> failure;
};

class TransferEngine {
  public:
    // config must outlive the engine; retries counts every retried attempt. Starts the store
    // thread; throws std::runtime_error when libcurl cannot be set up.
    TransferEngine(const S3Config& config, std::atomic<std::uint64_t>& retries);
    // Fails the batches still running (transient: "the S3 store is shutting down") and joins.
    ~TransferEngine();
    TransferEngine(const TransferEngine&) = delete;
    TransferEngine& operator=(const TransferEngine&) = delete;

    // Runs the requests on the store thread; blocks until all are over. Thread-safe.
    BatchResult run(const std::vector<S3Request>& requests, const BatchOptions& options);

    const Endpoint& endpoint() const { return endpoint_; }
    const Credentials& credentials() const { return credentials_; }

  private:
    struct Transfer;
    struct Batch;

    void loop();
    void admit_new_batches();
    void expire_deadlines(std::chrono::steady_clock::time_point now);
    void start_due_transfers(std::chrono::steady_clock::time_point now);
    void collect_finished();
    void retire_finished_batches();
    int poll_timeout_ms(std::chrono::steady_clock::time_point now) const;

    bool start_attempt(Transfer& transfer);
    void detach(Transfer& transfer);
    void finish_attempt(Transfer& transfer, CURLcode result);
    void fail_batch(Batch& batch, Error error);

    const S3Config& config_;
    Endpoint endpoint_;
    Credentials credentials_;
    std::atomic<std::uint64_t>& retries_;
    CurlShareCache share_;  // TLS sessions and DNS, for the connections opened later
    CurlMulti multi_;
    std::mt19937_64 rng_;
    int in_flight_ = 0;           // store thread only
    std::vector<Batch*> active_;  // store thread only, in start order

    std::mutex mutex_;
    std::condition_variable batch_done_;
    std::deque<Batch*> handed_over_;  // guarded by mutex_
    bool stopping_ = false;           // guarded by mutex_
    std::thread thread_;
};

}  // namespace imgspool::s3
