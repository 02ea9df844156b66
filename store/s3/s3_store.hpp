// The S3 object store ([store] kind = "s3"): every object of a job PUT in parallel over the
// store's one connection pool (at most max_connections connections, reused across requests and
// jobs), large ones as multipart uploads, integrity-checked by the server (signed
// x-amz-content-sha256 and Content-MD5), retried like the mature clients do.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "store/object_store.hpp"
#include "store/s3/s3_url.hpp"
#include "store/s3/transfer_engine.hpp"
#include "store/s3_config.hpp"

namespace imgspool {

class S3Store final : public ObjectStore {
  public:
    // public_base_url (CDN_URL) empty: URLs are the endpoint URLs of the objects. An invalid
    // config is reported by check(), put_all() and remove_all(), with the setting to fix.
    S3Store(S3Config config, std::string public_base_url);

    // All three are safe to call from several threads at once; their requests share the pool.
    Status put_all(const std::vector<PutObject>& objects) override;
    Status remove_all(const std::vector<std::string>& keys) override;
    // An authenticated HEAD of the bucket, on a small budget of its own (s3::check_options).
    Status check() override;

    std::string url_for(const std::string& key) const override;
    // "s3:bucket@http://127.0.0.1:9000" or "s3:bucket@us-east-1"; never holds a secret.
    std::string describe() const override;

    // Attempts retried since the store was made (for metrics).
    std::uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }

    static constexpr const char* kCacheControl = "public, max-age=31536000";

  private:
    Status validity() const;
    // failure as put_all reports it; when it is permanent, the keys this put_all may have
    // stored are removed first and the reason says whether that worked.
    Error give_up(Error failure, const std::vector<std::string>& maybe_stored);

    S3Config config_;
    std::string public_base_url_;
    Status valid_;
    s3::Endpoint endpoint_;
    std::atomic<std::uint64_t> retries_{0};
    std::unique_ptr<s3::TransferEngine> engine_;  // null when the config is invalid
};

}  // namespace imgspool
