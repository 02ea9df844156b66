#include "store/s3/config_check.hpp"

#include <string>

#include "store/s3/s3_url.hpp"

namespace imgspool::s3 {

namespace {

constexpr std::uint64_t kMinPartSize =
    5ull * 1024 * 1024;  // S3's minimum for all but the last part

constexpr int kMaxConnections = 256;

bool valid_region(const std::string& region) {
    if (region.empty()) return false;
    for (char c : region) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    return true;
}

Status fail(std::string reason) {
    return make_error(Stage::config, std::move(reason));
}

}  // namespace

bool valid_bucket_name(std::string_view name) {
    if (name.size() < 3 || name.size() > 63) return false;
    const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(name.front()) || !alnum(name.back())) return false;
    for (char c : name) {
        if (!alnum(c) && c != '-' && c != '.') return false;
    }
    return true;
}

Status validate_s3_config(const S3Config& c) {
    if (c.bucket.empty()) return fail("S3 bucket is not set (S3_BUCKET or [store] bucket)");
    if (!valid_bucket_name(c.bucket)) {
        return fail("S3 bucket name \"" + c.bucket +
                    "\" is invalid: use 3-63 lower-case letters, digits, '-' and '.'");
    }
    return validate_s3_service(c);
}

Status validate_s3_service(const S3Config& c) {
    if (!valid_region(c.region)) {
        return fail("S3 region \"" + c.region +
                    "\" is invalid (S3_REGION / AWS_REGION or [store] region, e.g. us-east-1)");
    }
    if (!c.endpoint.empty() && endpoint_host(c.endpoint).empty()) {
        return fail("S3 endpoint \"" + c.endpoint +
                    "\" must look like http://host:port or https://host (S3_ENDPOINT or [store] "
                    "endpoint)");
    }
    if (c.access_key_id.empty()) {
        return fail(
            "S3 access key id is not set (S3_ACCESS_KEY_ID / AWS_ACCESS_KEY_ID or [store] "
            "access_key_id)");
    }
    if (c.secret_access_key.empty()) {
        return fail(
            "S3 secret access key is not set (S3_SECRET_ACCESS_KEY / AWS_SECRET_ACCESS_KEY or "
            "[store] secret_access_key)");
    }
    if (c.multipart_part_size < kMinPartSize) {
        return fail("S3 multipart_part_size is " + std::to_string(c.multipart_part_size) +
                    " bytes; S3 needs at least 5 MiB (5242880)");
    }
    if (c.max_attempts < 1 || c.max_attempts > 20) {
        return fail("S3 max_attempts must be between 1 and 20, not " +
                    std::to_string(c.max_attempts));
    }
    if (c.parallel_uploads < 1 || c.parallel_uploads > 64) {
        return fail("S3 parallel_uploads must be between 1 and 64, not " +
                    std::to_string(c.parallel_uploads));
    }
    if (c.max_connections < 1 || c.max_connections > kMaxConnections) {
        return fail("S3 max_connections must be between 1 and " + std::to_string(kMaxConnections) +
                    ", not " + std::to_string(c.max_connections));
    }
    if (c.connect_timeout_ms <= 0 || c.request_timeout_ms <= 0) {
        return fail("S3 connect_timeout_ms and request_timeout_ms must be positive");
    }
    if (c.retry_base_delay_ms < 0 || c.retry_max_delay_ms < c.retry_base_delay_ms) {
        return fail("S3 retry delays must satisfy 0 <= retry_base_delay_ms <= retry_max_delay_ms");
    }
    return ok_status();
}

}  // namespace imgspool::s3
