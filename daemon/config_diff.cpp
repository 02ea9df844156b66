#include "daemon/config_diff.hpp"

#include <algorithm>

#include "store/pg/database_url.hpp"

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
    void key(const std::string& name, const T& running, const T& requested) {
        if (running != requested) diff.keys_changed.push_back(name);
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
        } else if (now->root != s.root || now->profile != s.profile || now->watch != s.watch ||
                   now->poll != s.poll) {
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

// `prefix` is "store.s3." or "fetch.s3.". Only key names are kept: some hold secrets.
void compare_s3(const std::string& prefix, const S3Config& x, const S3Config& y, Comparer& c) {
    c.key(prefix + "bucket", x.bucket, y.bucket);
    c.key(prefix + "region", x.region, y.region);
    c.key(prefix + "endpoint", x.endpoint, y.endpoint);
    c.key(prefix + "access_key_id", x.access_key_id, y.access_key_id);
    c.key(prefix + "secret_access_key", x.secret_access_key, y.secret_access_key);
    c.key(prefix + "session_token", x.session_token, y.session_token);
    c.key(prefix + "multipart_threshold", x.multipart_threshold, y.multipart_threshold);
    c.key(prefix + "multipart_part_size", x.multipart_part_size, y.multipart_part_size);
    c.key(prefix + "max_attempts", x.max_attempts, y.max_attempts);
    c.key(prefix + "connect_timeout_ms", x.connect_timeout_ms, y.connect_timeout_ms);
    c.key(prefix + "request_timeout_ms", x.request_timeout_ms, y.request_timeout_ms);
    c.key(prefix + "parallel_uploads", x.parallel_uploads, y.parallel_uploads);
    c.key(prefix + "max_connections", x.max_connections, y.max_connections);
    c.key(prefix + "retry_base_delay_ms", x.retry_base_delay_ms, y.retry_base_delay_ms);
    c.key(prefix + "retry_max_delay_ms", x.retry_max_delay_ms, y.retry_max_delay_ms);
}

void compare_store(const StoreSettings& a, const StoreSettings& b, Comparer& c) {
    c.key("store.kind", a.kind, b.kind);
    c.key("store.path", a.path, b.path);
    c.key("store.public_base_url", a.public_base_url, b.public_base_url);
    c.key("store.key_template", a.key_template, b.key_template);
    compare_s3("store.s3.", a.s3, b.s3, c);
}

void compare_limits(const Limits& a, const Limits& b, Comparer& c) {
    c.key("limits.max_bytes", a.max_bytes, b.max_bytes);
    c.key("limits.min_width", a.min_width, b.min_width);
    c.key("limits.min_height", a.min_height, b.min_height);
    c.key("limits.max_width", a.max_width, b.max_width);
    c.key("limits.max_height", a.max_height, b.max_height);
    c.key("limits.max_pixels", a.max_pixels, b.max_pixels);
}

// Reloadable: the fetch settings are rebuilt for the next fetch.
void compare_fetch(const FetchConfig& a, const FetchConfig& b, Comparer& c) {
    c.key("fetch.allow_hosts", a.allow_hosts, b.allow_hosts);
    c.key("fetch.max_redirects", a.max_redirects, b.max_redirects);
    c.key("fetch.connect_timeout_s", a.connect_timeout_s, b.connect_timeout_s);
    c.key("fetch.timeout_s", a.timeout_s, b.timeout_s);
    c.key("fetch.s3", a.s3_set, b.s3_set);  // [fetch.s3] given or removed
    compare_s3("fetch.s3.", a.s3, b.s3, c);
}

// The socket and libmicrohttpd's options are set at start; the rest is read per request.
void compare_http(const HttpSettings& a, const HttpSettings& b, Comparer& c) {
    c.restart_key("http.enabled", a.enabled, b.enabled);
    c.restart_key("http.bind", a.bind, b.bind);
    c.restart_key("http.port", a.port, b.port);
    c.restart_key("http.max_connections", a.max_connections, b.max_connections);
    c.restart_key("http.idle_timeout_s", a.idle_timeout_s, b.idle_timeout_s);
    c.key("http.spool", a.spool, b.spool);
    c.key("http.token", a.token, b.token);
    c.key("http.request_timeout_s", a.request_timeout_s, b.request_timeout_s);
}

// Restart-only: a live switch of the job record under running jobs is not worth its risks. The
// URL is shown with its password masked.
void compare_database(const pg::DatabaseSettings& a, const pg::DatabaseSettings& b, Comparer& c) {
    const auto shown = [](const std::string& url) {
        return url.empty() ? std::string("\"\" (SQLite)") : pg::masked_database_url(url);
    };
    if (a.url != b.url)
        c.diff.needs_restart.push_back({"database.url", shown(a.url), shown(b.url)});
    c.restart_key("database.pool_size", a.pool_size, b.pool_size);
    c.restart_key("database.connect_timeout_s", a.connect_timeout_s, b.connect_timeout_s);
    c.restart_key("database.statement_timeout_s", a.statement_timeout_s, b.statement_timeout_s);
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

bool ConfigDiff::fetch_changed() const {
    return std::any_of(keys_changed.begin(), keys_changed.end(),
                       [](const std::string& k) { return starts_with(k, "fetch."); });
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
    // Identity: how the database and other nodes know this daemon.
    c.restart_key("daemon.node", a.node, b.node);
    c.restart_key("daemon.lease_s", a.lease_s, b.lease_s);  // what the other nodes were told
    compare_database(running.database, requested.database, c);
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
    compare_fetch(running.fetch, requested.fetch, c);
    compare_http(running.http, requested.http, c);
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
    out.daemon.node = running.daemon.node;
    out.daemon.lease_s = running.daemon.lease_s;
    out.database = running.database;
    out.metrics = running.metrics;
    out.http.enabled = running.http.enabled;
    out.http.bind = running.http.bind;
    out.http.port = running.http.port;
    out.http.max_connections = running.http.max_connections;
    out.http.idle_timeout_s = running.http.idle_timeout_s;
    return out;
}

}  // namespace imgspool
