// Reads s3://bucket/key sources (job manifests) with the same signed client as the S3 store:
// SigV4, retries with backoff for 5xx, throttling and broken connections, the configured
// timeouts. It has its own TransferEngine, so fetches never take the store's connections, and
// makes it on the first get(): a daemon that never sees an s3:// source opens nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/error.hpp"
#include "store/s3/transfer_engine.hpp"
#include "store/s3_config.hpp"

namespace imgspool::s3 {

class ObjectReader {
  public:
    // [fetch.s3] or the store's settings; config.bucket is ignored (each get names its bucket).
    explicit ObjectReader(S3Config config);
    ObjectReader(const ObjectReader&) = delete;
    ObjectReader& operator=(const ObjectReader&) = delete;

    // The object's bytes, or a Stage::fetch error naming s3://bucket/key: NoSuchKey, AccessDenied
    // and other refusals are permanent; 5xx, throttling and timeouts (after the engine's retries)
    // transient. A body over max_bytes is cut while it streams (a Content-Length over it is
    // refused before the body is read): permanent "answer larger than N MiB (limits.max_bytes)".
    // Safe to call from several threads at once.
    Result<std::string> get(const std::string& bucket, const std::string& key,
                            std::uint64_t max_bytes);

    // Attempts retried since the reader was made (for metrics).
    std::uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }
    // Whether the first get() has made the engine (its thread and connection pool) yet.
    bool engine_started() const { return started_.load(std::memory_order_acquire); }

  private:
    Result<TransferEngine*> engine();

    const S3Config config_;  // the engine keeps a reference: declared before it
    const Status valid_;
    std::atomic<std::uint64_t> retries_{0};
    std::mutex making_;  // guards engine_ until started_ is set; it never changes after
    std::unique_ptr<TransferEngine> engine_;
    std::atomic<bool> started_{false};
};

}  // namespace imgspool::s3
