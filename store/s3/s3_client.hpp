// The S3 REST API over libcurl: signed requests run in parallel on one multi handle (so one job's
// uploads reuse their connections), each retried by the RetryPolicy, failures described with the
// HTTP status and S3's error code and message.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "store/s3/curl_handles.hpp"
#include "store/s3/retry_policy.hpp"
#include "store/s3/s3_url.hpp"
#include "store/s3/sigv4.hpp"
#include "store/s3_config.hpp"

namespace imgspool::s3 {

struct S3Request {
    std::string method;     // "PUT", "POST", "HEAD", "DELETE", "GET"
    std::string key;        // object key; empty: the bucket itself
    NameValues query;       // decoded, e.g. {{"partNumber", "1"}, {"uploadId", id}}
    NameValues headers;     // sent and signed besides Host, X-Amz-*, Content-MD5
    std::string_view body;  // borrowed until perform returns
    std::string label;      // names the request in errors and logs: "PUT images/x/small.jpg"
};

struct S3Response {
    long status = 0;
    std::string body;    // the first 64 KiB
    NameValues headers;  // lower-case names
    int attempts = 0;

    // The value of a response header (lower-case name), "" when absent.
    std::string header(std::string_view name) const;
};

// One client per job (or per check): it owns the multi handle and so the connections.
// Not thread-safe; the CURLSH passed in may be shared between clients of several threads.
class S3Client {
  public:
    // config must outlive the client; retries counts every retried attempt.
    S3Client(const S3Config& config, CURLSH* share, std::atomic<std::uint64_t>& retries);

    // Runs every request, at most parallel_uploads at once. Returns the answers in request order,
    // or the first request's final failure (Stage::store, "PUT key: HTTP 503 SlowDown: ...
    // (gave up after 5 attempts)"); the requests still running are then cancelled.
    Result<std::vector<S3Response>> perform(const std::vector<S3Request>& requests);

    Result<S3Response> perform_one(const S3Request& request);

    const Endpoint& endpoint() const { return endpoint_; }
    const Credentials& credentials() const { return credentials_; }

  private:
    struct Transfer;
    bool start_attempt(Transfer& transfer);
    // Returns an Error once the transfer has failed for good.
    std::optional<Error> finish_attempt(Transfer& transfer, CURLcode result);

    const S3Config& config_;
    Endpoint endpoint_;
    Credentials credentials_;
    RetryPolicy policy_;
    CURLSH* share_;
    std::atomic<std::uint64_t>& retries_;
    CurlMulti multi_;
    std::mt19937_64 rng_;
};

}  // namespace imgspool::s3
