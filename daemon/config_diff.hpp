// What a configuration reload changes: the running Config against the one just read. Pure; the
// daemon applies the answer (daemon/reload.hpp).
#pragma once

#include <string>
#include <vector>

#include "daemon/config.hpp"

namespace imgspool {

// A key that only takes effect at the next start, with both values as text.
struct RestartOnlyChange {
    std::string key;  // "daemon.workers"
    std::string running;
    std::string requested;
};

struct ConfigDiff {
    std::vector<std::string> spools_added;    // by name
    std::vector<std::string> spools_removed;  // by name
    std::vector<std::string> spools_changed;  // same name, another root, profile, watch or poll_s
    // Profiles added, removed or with other settings (by name).
    std::vector<std::string> profiles_changed;
    // Every other key a reload applies that changed, e.g. "limits.max_width", "store.path",
    // "store.s3.bucket", "daemon.settle_ms", "fetch.timeout_s", "http.token". Never a value:
    // store, fetch.s3 and http keys hold secrets.
    std::vector<std::string> keys_changed;
    // Keys that keep their running value until a restart (state_dir, workers, queue_max,
    // max_job_attempts, node, lease_s, [database] (the URL's password masked), [metrics],
    // http.enabled/bind/port/max_connections/idle_timeout_s).
    std::vector<RestartOnlyChange> needs_restart;

    bool store_changed() const;  // a store.* key other than key_template: a new store is built
    // A fetch.* key (allow_hosts, timeouts, [fetch.s3]). Without [fetch.s3], s3:// sources
    // use the store's S3 settings, so store.s3.* keys matter to fetching too.
    bool fetch_changed() const;
    bool watcher_changed() const;  // the spools' names or roots, or the watcher's settings
    bool empty() const;            // nothing changed at all
};

ConfigDiff diff_config(const Config& running, const Config& requested);

// `requested` with every restart-only key set back to its running value: what a reload runs.
Config reloadable_part(const Config& running, const Config& requested);

}  // namespace imgspool
