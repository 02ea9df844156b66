#include "store/s3/s3_client.hpp"

#include <algorithm>

namespace imgspool::s3 {

namespace {

constexpr std::chrono::milliseconds kCheckConnectTimeout{2000};
constexpr std::chrono::milliseconds kCheckRequestTimeout{5000};
constexpr int kCheckAttempts = 2;

}  // namespace

BatchOptions job_options(const S3Config& config) {
    BatchOptions o;
    o.parallel = config.parallel_uploads;
    o.max_attempts = config.max_attempts;
    o.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
    o.request_timeout = std::chrono::milliseconds(config.request_timeout_ms);
    return o;
}

BatchOptions check_options(const S3Config& config) {
    BatchOptions o;
    o.parallel = 1;
    o.max_attempts = std::min(config.max_attempts, kCheckAttempts);
    o.connect_timeout =
        std::min(std::chrono::milliseconds(config.connect_timeout_ms), kCheckConnectTimeout);
    o.request_timeout =
        std::min(std::chrono::milliseconds(config.request_timeout_ms), kCheckRequestTimeout);
    o.deadline = o.request_timeout * o.max_attempts + std::chrono::milliseconds(1000);
    o.urgent = true;
    return o;
}

BatchResult S3Client::perform_all(const std::vector<S3Request>& requests) {
    return engine_.run(requests, options_);
}

Result<std::vector<S3Response>> S3Client::perform(const std::vector<S3Request>& requests) {
    BatchResult result = engine_.run(requests, options_);
    if (result.failure) return std::move(*result.failure);
    return std::move(result.responses);
}

Result<S3Response> S3Client::perform_one(const S3Request& request) {
    auto responses = perform({request});
    if (!responses) return responses.error();
    return std::move(responses.value().front());
}

}  // namespace imgspool::s3
