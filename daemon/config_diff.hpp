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
    std::vector<std::string> spools_changed;  // same name, another root or profile
    // Profiles added, removed or with other settings (by name).
    std::vector<std::string> profiles_changed;
    // Every other key a reload applies that changed, e.g. "limits.max_width", "store.path",
    // "store.s3.bucket", "daemon.settle_ms". Never a value: store keys hold secrets.
    std::vector<std::string> keys_changed;
    // Keys that keep their running value until a restart (state_dir, workers, queue_max,
    // max_job_attempts, [metrics]).
    std::vector<RestartOnlyChange> needs_restart;

    bool store_changed() const;    // a store.* key other than key_template: a new store is built
    bool watcher_changed() const;  // the spools' names or roots, or the watcher's settings
    bool empty() const;            // nothing changed at all
};

ConfigDiff diff_config(const Config& running, const Config& requested);

// `requested` with every restart-only key set back to its running value: what a reload runs.
Config reloadable_part(const Config& running, const Config& requested);

}  // namespace imgspool
