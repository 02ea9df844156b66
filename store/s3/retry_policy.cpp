#include "store/s3/retry_policy.hpp"

#include <algorithm>

namespace imgspool::s3 {

std::chrono::milliseconds RetryPolicy::backoff(int failed_attempts, std::mt19937_64& rng) const {
    const int doublings = std::clamp(failed_attempts - 1, 0, 30);
    const long long ceiling =
        std::min<long long>(max_delay.count(), base_delay.count() * (1LL << doublings));
    std::uniform_int_distribution<long long> pick(0, std::max<long long>(ceiling, 0));
    return std::chrono::milliseconds(pick(rng));
}

bool is_retryable_status(long http_status, std::string_view s3_code) {
    if (s3_code == "SlowDown" || s3_code == "RequestTimeout" || s3_code == "InternalError" ||
        s3_code == "ServiceUnavailable") {
        return true;
    }
    return http_status >= 500 || http_status == 429 || http_status == 408;
}

bool is_retryable_transport(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return true;
        default:
            return false;
    }
}

bool is_transient_status(long http_status, std::string_view s3_code) {
    return is_retryable_status(http_status, s3_code) || s3_code == "RequestTimeTooSkewed";
}

bool is_transient_transport(CURLcode code) {
    return is_retryable_transport(code) || code == CURLE_OUT_OF_MEMORY;
}

}  // namespace imgspool::s3
