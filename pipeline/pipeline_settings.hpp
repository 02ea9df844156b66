// What the pipeline needs from the configuration, and the holder a reload swaps: jobs take a
// snapshot of the settings when they are claimed and of the store when they start.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/error.hpp"
#include "common/progress_tracker.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/retry_delay.hpp"
#include "pipeline/validate.hpp"
#include "store/object_store.hpp"

namespace imgspool {

// Reads a manifest's source (http(s):// or s3://) into memory, never more than max_bytes; beats
// `beat` (may be null) while bytes arrive. Errors are Stage::fetch, transient when they may pass.
using SourceFetch = std::function<Result<std::string>(const std::string& source,
                                                      std::uint64_t max_bytes, Heartbeat* beat)>;

struct PipelineSettings {
    Limits limits;
    std::string key_template = "images/{upload_id}/{variant}.{ext}";
    std::map<std::string, Profile> profiles;  // built-in plus custom, by name
    RetrySettings retry;
    // A job deferred because its file is not whole or changed runs again after this (settle_ms).
    std::chrono::milliseconds recheck_after{2000};
    // A claimed file still incomplete and unmodified this long fails ([daemon] abandon_after_s).
    std::chrono::seconds abandon_after{3600};
    // Empty: manifests fail, there is nothing to fetch their sources with.
    SourceFetch fetch_source;
};

// The settings and the store that jobs starting now get. Each is handed out as a shared,
// immutable snapshot, so a swap (a configuration reload) never changes what a job in flight
// reads: it keeps its own copy alive for as long as it runs. Thread-safe.
class SwappableSettings {
  public:
    SwappableSettings(PipelineSettings settings, std::shared_ptr<ObjectStore> store);

    std::shared_ptr<const PipelineSettings> settings() const;
    std::shared_ptr<ObjectStore> store() const;

    void set_settings(std::shared_ptr<const PipelineSettings> settings);
    void set_store(std::shared_ptr<ObjectStore> store);

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const PipelineSettings> settings_;
    std::shared_ptr<ObjectStore> store_;
};

}  // namespace imgspool
