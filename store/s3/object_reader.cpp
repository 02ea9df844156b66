#include "store/s3/object_reader.hpp"

#include <stdexcept>
#include <utility>

#include "store/s3/config_check.hpp"
#include "store/s3/redact.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_url.hpp"

namespace imgspool::s3 {

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

// "10 MiB" for whole mebibytes (every limit in the shipped configs), else the exact byte count.
std::string size_words(std::uint64_t bytes) {
    if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
    return std::to_string(bytes) + " bytes";
}

}  // namespace

ObjectReader::ObjectReader(S3Config config)
    : config_(std::move(config)), valid_(validate_s3_service(config_)) {}

Result<TransferEngine*> ObjectReader::engine() {
    std::lock_guard lock(making_);
    if (!engine_) {
        try {
            engine_ = std::make_unique<TransferEngine>(config_, retries_);
        } catch (const std::runtime_error& e) {  // libcurl out of memory: may pass
            return make_transient(Stage::fetch,
                                  std::string("cannot start the S3 client: ") + e.what());
        }
        started_.store(true, std::memory_order_release);
    }
    return engine_.get();
}

Result<std::string> ObjectReader::get(const std::string& bucket, const std::string& key,
                                      std::uint64_t max_bytes) {
    const std::string uri = s3_uri(bucket, key);
    // Settings and names that no retry can fix fail before a connection is opened.
    if (!valid_) return make_error(Stage::fetch, uri + ": " + valid_.error().reason);
    if (!valid_bucket_name(bucket)) {
        return make_error(Stage::fetch, uri + ": \"" + bucket +
                                            "\" is not a valid S3 bucket name (3-63 lower-case "
                                            "letters, digits, '-' and '.')");
    }
    if (key.empty()) return make_error(Stage::fetch, uri + ": the object key is empty");

    Result<TransferEngine*> made = engine();
    if (!made) return made.error();
    std::string body;
    S3Request request;
    request.method = "GET";
    request.key = key;
    request.label = "GET " + uri;
    request.bucket = bucket;
    request.body_out = &body;
    request.body_limit = max_bytes;
    BatchResult result = S3Client(**made, job_options(config_)).perform_all({request});
    if (!result.failure) return body;

    if (!result.responses.empty() && result.responses.front().body_too_large) {
        return make_error(Stage::fetch, uri + ": answer larger than " + size_words(max_bytes) +
                                            " (limits.max_bytes)");
    }
    // The engine's reason already names the request (GET s3://bucket/key) and whether it gave
    // up after retries; only the stage changes, and transient stays as the engine judged it.
    Error error = std::move(*result.failure);
    error.stage = Stage::fetch;
    error.reason = redact(std::move(error.reason), (*made)->credentials());
    return error;
}

}  // namespace imgspool::s3
