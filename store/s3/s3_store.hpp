// The S3 object store ([store] kind = "s3"): every object of a job PUT in parallel over reused
// connections, large ones as multipart uploads, integrity-checked by the server (signed
// x-amz-content-sha256 and Content-MD5), retried like the mature clients do.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "store/object_store.hpp"
#include "store/s3/curl_share.hpp"
#include "store/s3/s3_url.hpp"
#include "store/s3_config.hpp"

namespace imgspool {

class S3Store final : public ObjectStore {
  public:
    // public_base_url (CDN_URL) empty: URLs are the endpoint URLs of the objects. An invalid
    // config is reported by check() and put_all(), with the setting to fix.
    S3Store(S3Config config, std::string public_base_url);

    // Safe to call from several threads at once.
    Status put_all(const std::vector<PutObject>& objects) override;
    std::string url_for(const std::string& key) const override;
    // An authenticated HEAD of the bucket: credentials, bucket name and endpoint in one request.
    Status check() override;
    // "s3:bucket@http://127.0.0.1:9000" or "s3:bucket@us-east-1"; never holds a secret.
    std::string describe() const override;

    // Attempts retried since the store was made (for metrics).
    std::uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }

    static constexpr const char* kCacheControl = "public, max-age=31536000";

  private:
    Status validity() const;

    S3Config config_;
    std::string public_base_url_;
    Status valid_;
    s3::Endpoint endpoint_;
    s3::CurlShareCache share_;
    std::atomic<std::uint64_t> retries_{0};
};

}  // namespace imgspool
