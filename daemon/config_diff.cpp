#include "daemon/config_diff.hpp"

#include <algorithm>

namespace imgspool {
namespace {

// Keys the watcher is built with: changing one replaces the watcher.
constexpr const char* kWatcherKeys[] = {"daemon.settle_ms", "daemon.rescan_s",
                                        "daemon.abandon_after_s", "limits.max_bytes"};

std::string text(bool v) {
    return v ? "true" : "false";
}
std::string text(int v) {
    return std::to_string(v);
}
std::string text(const std::string& v) {
    return v;
}
std::string text(const std::filesystem::path& v) {
    return v.string();
}

const SpoolLayout* named(const std::vector<SpoolLayout>& spools, const std::string& name) {
    auto it = std::find_if(spools.begin(), spools.end(),
                           [&name](const SpoolLayout& s) { return s.name == name; });
    return it == spools.end() ? nullptr : &*it;
}

// Collects the changed keys of one diff.
struct Comparer {
    ConfigDiff& diff;

    template <typename T>
    void key(const char* name, const T& running, const T& requested) {
        if (running != requested) diff.keys_changed.emplace_back(name);
    }
    template <typename T>
    void restart_key(const char* name, const T& running, const T& requested) {
        if (running != requested)
            diff.needs_restart.push_back({name, text(running), text(requested)});
    }
};

void compare_spools(const Config& a, const Config& b, ConfigDiff& diff) {
    for (const SpoolLayout& s : a.spools) {
        const SpoolLayout* now = named(b.spools, s.name);
        if (!now) {
            diff.spools_removed.push_back(s.name);
        } else if (now->root != s.root || now->profile != s.profile) {
            diff.spools_changed.push_back(s.name);
        }
    }
    for (const SpoolLayout& s : b.spools) {
        if (!named(a.spools, s.name)) diff.spools_added.push_back(s.name);
    }
}

void compare_profiles(const Config& a, const Config& b, ConfigDiff& diff) {
    for (const auto& [name, profile] : a.profiles) {
        auto it = b.profiles.find(name);
        if (it == b.profiles.end() || it->second.fingerprint() != profile.fingerprint()) {
            diff.profiles_changed.push_back(name);
        }
    }
    for (const auto& [name, profile] : b.profiles) {
        if (!a.profiles.contains(name)) diff.profiles_changed.push_back(name);
    }
}

void compare_store(const StoreSettings& a, const StoreSettings& b, Comparer& c) {
    c.key("store.kind", a.kind, b.kind);
    c.key("store.path", a.path, b.path);
    c.key("store.public_base_url", a.public_base_url, b.public_base_url);
    c.key("store.key_template", a.key_template, b.key_template);
    const S3Config &x = a.s3, &y = b.s3;
    c.key("store.s3.bucket", x.bucket, y.bucket);
    c.key("store.s3.region", x.region, y.region);
    c.key("store.s3.endpoint", x.endpoint, y.endpoint);
    c.key("store.s3.access_key_id", x.access_key_id, y.access_key_id);
    c.key("store.s3.secret_access_key", x.secret_access_key, y.secret_access_key);
    c.key("store.s3.session_token", x.session_token, y.session_token);
    c.key("store.s3.multipart_threshold", x.multipart_threshold, y.multipart_threshold);
    c.key("store.s3.multipart_part_size", x.multipart_part_size, y.multipart_part_size);
    c.key("store.s3.max_attempts", x.max_attempts, y.max_attempts);
    c.key("store.s3.connect_timeout_ms", x.connect_timeout_ms, y.connect_timeout_ms);
    c.key("store.s3.request_timeout_ms", x.request_timeout_ms, y.request_timeout_ms);
    c.key("store.s3.parallel_uploads", x.parallel_uploads, y.parallel_uploads);
    c.key("store.s3.max_connections", x.max_connections, y.max_connections);
    c.key("store.s3.retry_base_delay_ms", x.retry_base_delay_ms, y.retry_base_delay_ms);
    c.key("store.s3.retry_max_delay_ms", x.retry_max_delay_ms, y.retry_max_delay_ms);
}

void compare_limits(const Limits& a, const Limits& b, Comparer& c) {
    c.key("limits.max_bytes", a.max_bytes, b.max_bytes);
    c.key("limits.min_width", a.min_width, b.min_width);
    c.key("limits.min_height", a.min_height, b.min_height);
    c.key("limits.max_width", a.max_width, b.max_width);
    c.key("limits.max_height", a.max_height, b.max_height);
    c.key("limits.max_pixels", a.max_pixels, b.max_pixels);
}

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

}  // namespace

bool ConfigDiff::store_changed() const {
    return std::any_of(keys_changed.begin(), keys_changed.end(), [](const std::string& k) {
        return starts_with(k, "store.") && k != "store.key_template";
    });
}

bool ConfigDiff::watcher_changed() const {
    if (!spools_added.empty() || !spools_removed.empty() || !spools_changed.empty()) return true;
    return std::any_of(keys_changed.begin(), keys_changed.end(), [](const std::string& k) {
        return std::find(std::begin(kWatcherKeys), std::end(kWatcherKeys), k) !=
               std::end(kWatcherKeys);
    });
}

bool ConfigDiff::empty() const {
    return spools_added.empty() && spools_removed.empty() && spools_changed.empty() &&
           profiles_changed.empty() && keys_changed.empty() && needs_restart.empty();
}

ConfigDiff diff_config(const Config& running, const Config& requested) {
    ConfigDiff diff;
    Comparer c{diff};
    const DaemonSettings &a = running.daemon, &b = requested.daemon;
    c.restart_key("daemon.state_dir", a.state_dir, b.state_dir);
    c.restart_key("daemon.workers", a.workers, b.workers);
    c.restart_key("daemon.queue_max", a.queue_max, b.queue_max);
    // Read once, by the recovery of what a crash left at start-up.
    c.restart_key("daemon.max_job_attempts", a.max_job_attempts, b.max_job_attempts);
    c.restart_key("metrics.enabled", running.metrics.enabled, requested.metrics.enabled);
    c.restart_key("metrics.bind", running.metrics.bind, requested.metrics.bind);
    c.restart_key("metrics.port", running.metrics.port, requested.metrics.port);

    c.key("daemon.settle_ms", a.settle_ms, b.settle_ms);
    c.key("daemon.rescan_s", a.rescan_s, b.rescan_s);
    c.key("daemon.abandon_after_s", a.abandon_after_s, b.abandon_after_s);
    c.key("daemon.retry_min_s", a.retry_min_s, b.retry_min_s);
    c.key("daemon.retry_max_s", a.retry_max_s, b.retry_max_s);
    c.key("daemon.max_deferred", a.max_deferred, b.max_deferred);
    compare_limits(running.limits, requested.limits, c);
    compare_store(running.store, requested.store, c);
    compare_spools(running, requested, diff);
    compare_profiles(running, requested, diff);
    return diff;
}

Config reloadable_part(const Config& running, const Config& requested) {
    Config out = requested;
    out.daemon.state_dir = running.daemon.state_dir;
    out.daemon.workers = running.daemon.workers;
    out.daemon.queue_max = running.daemon.queue_max;
    out.daemon.max_job_attempts = running.daemon.max_job_attempts;
    out.metrics = running.metrics;
    return out;
}

}  // namespace imgspool
