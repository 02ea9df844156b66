// SIGHUP: the running daemon reads its configuration file again and applies what changed,
// without dropping work. All or nothing: a file with errors, a new spool whose lock another
// process holds, a store that cannot be built or inboxes that cannot be watched reject the
// reload and the running configuration stays.
//
// - New spools are locked, their folders created, and watched. Removed spools stop taking new
//   files; their jobs in flight, queued and deferred finish (a Job carries its spool). A
//   removed spool's lock is kept until the daemon exits, so no other instance takes over a
//   spool whose jobs may still be running here (and adding it back needs no new lock).
// - Profiles, limits, key_template and retry settings apply to jobs claimed after the reload;
//   a job claimed before keeps the settings it was claimed with (Job::settings).
// - A changed [store] is built first, then swapped in for jobs that start afterwards; jobs
//   running on the old one finish on it. Deferred jobs run on the new one, at once.
// - [fetch] applies to the next fetch, a deferred job's next run included; [http] token, spool
//   and request_timeout_s to the next request.
// - Restart-only keys (ConfigDiff::needs_restart) are logged and keep their running value.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/error.hpp"
#include "daemon/config.hpp"
#include "daemon/config_diff.hpp"
#include "daemon/instance_lock.hpp"
#include "daemon/intake.hpp"
#include "daemon/replaceable_watcher.hpp"
#include "pipeline/deferred_jobs.hpp"
#include "pipeline/pipeline.hpp"

namespace imgspool {

// What a reload changes in the running daemon; all outlive the reloader.
struct ReloadTargets {
    Pipeline& pipeline;
    Intake& intake;
    ReplaceableWatcher& watcher;
    DeferredJobs& deferred;
    // The HTTP drop-in, when it runs: its token, spool and request timeout follow a reload.
    std::function<void(const Config&)> reconfigure_http{};
};

// The watcher's options for a configuration.
WatcherOptions watcher_options(const Config& config);

class ConfigReloader {
  public:
    // running: the configuration the daemon started with; locks: what lock_instance() took
    // for it (the reloader keeps them, and those of spools added later, until it is destroyed).
    ConfigReloader(Config running, std::vector<InstanceLock> locks, ReloadTargets targets);

    // Reads the running configuration's file again (load_config, environment included) and
    // applies it. Logs the outcome: one line with what changed, or every reason it was
    // rejected. Main thread only (one reload at a time).
    Status reload();
    // Applies an already loaded configuration (reload() after load_config).
    Status apply(const Config& requested);

    // imgspool_s3_retries_total over every S3 store this daemon has used (a swap would
    // otherwise make the counter go back); nullopt when none was S3. Any thread.
    std::optional<std::uint64_t> s3_retries_total() const;

  private:
    Status lock_new_spools(const Config& next,
                           std::map<std::filesystem::path, InstanceLock>& taken) const;
    void swap_store(std::shared_ptr<ObjectStore> store);
    void log_applied(const ConfigDiff& diff) const;

    Config running_;
    std::map<std::filesystem::path, InstanceLock> locks_;  // by lock file
    ReloadTargets targets_;
    std::shared_ptr<const PipelineSettings> settings_;  // of running_
    std::atomic<std::uint64_t> retired_s3_retries_{0};
    std::atomic<bool> used_s3_{false};
};

}  // namespace imgspool
