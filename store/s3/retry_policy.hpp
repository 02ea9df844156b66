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

// Connection refused/reset, timeouts, an empty or cut reply and a failed DNS lookup retry; bad
// URLs and TLS certificate problems do not.
bool is_retryable_transport(CURLcode code);

// Whether a request that failed for good may succeed later without anyone changing the config
// (Error::transient: the job is deferred, not failed). Everything that retries, once the
// retries are used up. Besides: RequestTimeTooSkewed, which is not worth retrying at once but
// passes when NTP corrects the clock (a machine without a battery-backed clock boots with a
// wrong time and syncs minutes later: its jobs must wait, not fail).
bool is_transient_status(long http_status, std::string_view s3_code);

// Besides what retries: libcurl running out of memory. A host that does not resolve counts
// as a DNS outage, not as a typo: a typo shows at start-up (check-config, /readyz) and the
// deferred jobs complete once it is fixed, while failing them would lose every job of an outage.
bool is_transient_transport(CURLcode code);

}  // namespace imgspool::s3
