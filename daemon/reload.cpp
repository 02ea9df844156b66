#include "daemon/reload.hpp"

#include "common/fs.hpp"
#include "common/log.hpp"
#include "daemon/runtime.hpp"
#include "store/s3/s3_store.hpp"

namespace imgspool {
namespace {

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

const S3Store* as_s3(const ObjectStore* store) {
    return dynamic_cast<const S3Store*>(store);
}

Status make_spool_folders(const SpoolLayout& spool) {
    for (const auto& dir : {spool.inbox(), spool.work(), spool.done(), spool.failed()}) {
        if (Status st = fs::make_dirs(dir); !st) return st;
    }
    return ok_status();
}

}  // namespace

WatcherOptions watcher_options(const Config& config) {
    WatcherOptions options{config.spools, std::chrono::milliseconds(config.daemon.settle_ms),
                           std::chrono::seconds(config.daemon.rescan_s)};
    options.abandon_after = std::chrono::seconds(config.daemon.abandon_after_s);
    options.max_judged_bytes = config.limits.max_bytes;
    options.wake_dir = config.daemon.state_dir;
    return options;
}

ConfigReloader::ConfigReloader(Config running, std::vector<InstanceLock> locks,
                               ReloadTargets targets)
    : running_(std::move(running)),
      targets_(targets),
      settings_(targets.pipeline.current().settings()) {
    for (InstanceLock& lock : locks) {
        std::filesystem::path file = lock.file();
        locks_.emplace(std::move(file), std::move(lock));
    }
    used_s3_ = as_s3(targets_.pipeline.current().store().get()) != nullptr;
}

Status ConfigReloader::reload() {
    log::info("reloading the configuration", {{"config", running_.file.string()}});
    Result<Config> requested = load_config(running_.file);
    Status st = requested ? apply(requested.value()) : Status(requested.error());
    if (!st) {
        log::error("configuration reload rejected; the running configuration stays",
                   {{"config", running_.file.string()}, {"error", st.error().message()}});
    }
    return st;
}

Status ConfigReloader::lock_new_spools(const Config& next,
                                       std::map<std::filesystem::path, InstanceLock>& taken) const {
    for (const SpoolLayout& spool : next.spools) {
        const std::filesystem::path file = spool_lock_path(spool);
        if (locks_.contains(file) || taken.contains(file)) continue;
        // [database] needs a restart, so the running mode is the mode of every spool lock.
        auto lock = lock_spool(spool, spool_lock_mode(running_));
        if (!lock) return lock.error();
        taken.emplace(file, std::move(lock).value());
    }
    return ok_status();
}

Status ConfigReloader::apply(const Config& requested) {
    const ConfigDiff diff = diff_config(running_, requested);
    for (const RestartOnlyChange& c : diff.needs_restart) {
        log::warn("configuration key needs a restart; it keeps its running value",
                  {{"key", c.key}, {"running", c.running}, {"requested", c.requested}});
    }
    Config next = reloadable_part(running_, requested);

    // Everything that can fail, before anything changes.
    std::map<std::filesystem::path, InstanceLock> new_locks;
    if (Status st = lock_new_spools(next, new_locks); !st) return st;
    for (const SpoolLayout& spool : next.spools) {
        if (Status st = make_spool_folders(spool); !st) return st;
    }
    std::shared_ptr<ObjectStore> store;
    if (diff.store_changed()) {
        auto made = make_store(next.store);
        if (!made) return made.error();
        store = std::move(made).value();
    }
    auto settings = std::make_shared<const PipelineSettings>(pipeline_settings(next));

    // Spools and settings for claims from now on; then the watcher of the new spools. A file
    // of a removed spool that the old watcher still reports stays in its inbox.
    targets_.intake.reconfigure(next.spools, settings, next.daemon.max_deferred);
    if (diff.watcher_changed()) {
        if (Status st = targets_.watcher.replace(watcher_options(next)); !st) {
            targets_.intake.reconfigure(running_.spools, settings_, running_.daemon.max_deferred);
            return st;
        }
    }
    targets_.pipeline.current().set_settings(settings);
    if (targets_.reconfigure_http) targets_.reconfigure_http(next);
    if (store) swap_store(std::move(store));
    locks_.merge(new_locks);
    running_ = std::move(next);
    settings_ = std::move(settings);
    log_applied(diff);
    return ok_status();
}

void ConfigReloader::swap_store(std::shared_ptr<ObjectStore> store) {
    const std::shared_ptr<ObjectStore> old = targets_.pipeline.current().store();
    if (as_s3(store.get())) used_s3_ = true;
    targets_.pipeline.current().set_store(std::move(store));
    if (const S3Store* s3 = as_s3(old.get())) retired_s3_retries_ += s3->retries();
    // Deferred jobs need not wait out a backoff earned on the old store.
    targets_.deferred.release_all();
}

std::optional<std::uint64_t> ConfigReloader::s3_retries_total() const {
    if (!used_s3_) return std::nullopt;
    const std::shared_ptr<ObjectStore> store = targets_.pipeline.current().store();
    const S3Store* s3 = as_s3(store.get());
    return retired_s3_retries_.load() + (s3 ? s3->retries() : 0);
}

void ConfigReloader::log_applied(const ConfigDiff& diff) const {
    std::vector<std::string> restart_keys;
    for (const RestartOnlyChange& c : diff.needs_restart) restart_keys.push_back(c.key);
    log::info("configuration reloaded",
              {{"config", running_.file.string()},
               {"spools_added", joined(diff.spools_added)},
               {"spools_removed", joined(diff.spools_removed)},
               {"spools_changed", joined(diff.spools_changed)},
               {"profiles_changed", joined(diff.profiles_changed)},
               {"store_changed", diff.store_changed()},
               {"keys_changed", joined(diff.keys_changed)},
               {"needs_restart", joined(restart_keys)},
               {"spools", static_cast<unsigned long long>(running_.spools.size())},
               {"store", targets_.pipeline.current().store()->describe()}});
}

}  // namespace imgspool
