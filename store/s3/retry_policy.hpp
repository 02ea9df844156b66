// When to try an S3 request again and how long to wait first: the mature clients' rules —
// server errors, throttling and broken connections retry with capped exponential backoff and full
// jitter, a bounded number of times; anything the client got wrong fails at once.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <random>
#include <string_view>

namespace imgspool::s3 {

struct RetryPolicy {
    int max_attempts = 5;  // including the first
    std::chrono::milliseconds base_delay{100};
    std::chrono::milliseconds max_delay{5000};

    // Wait before attempt number failed_attempts + 1: uniform in
    // [0, min(max_delay, base_delay * 2^(failed_attempts - 1))].
    std::chrono::milliseconds backoff(int failed_attempts, std::mt19937_64& rng) const;

    bool may_retry(int attempts_made) const { return attempts_made < max_attempts; }
};

// 5xx, 429, 408 and the S3 codes SlowDown, RequestTimeout, InternalError retry; other answers
// (AccessDenied, NoSuchBucket, SignatureDoesNotMatch, BadDigest, RequestTimeTooSkewed) do not.
bool is_retryable_status(long http_status, std::string_view s3_code);

// Connection refused/reset, timeouts, an empty or cut reply retry; bad URLs, TLS certificate
// problems and unknown hosts do not.
bool is_retryable_transport(CURLcode code);

}  // namespace imgspool::s3
