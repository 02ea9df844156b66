// The daemon's configuration: TOML (toml11) plus environment overrides. Unknown keys and bad
// values are errors that name the key.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/spool_layout.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/validate.hpp"
#include "store/pg/database_settings.hpp"
#include "store/s3_config.hpp"

namespace imgspool {

struct DaemonSettings {
    std::filesystem::path state_dir = "var";  // holds imgspool.db
    int workers = 0;                          // 0 = one per core
    int settle_ms = 2000;
    int rescan_s = 30;
    int queue_max = 64;
    int abandon_after_s = 3600;  // a file incomplete and unchanged this long goes to failed/
    int max_job_attempts = 3;    // starts cut short by the daemon's death before failed/
    int retry_min_s = 5;         // first wait of a deferred job
    int retry_max_s = 300;       // longest wait between two runs of a deferred job
    int max_deferred = 1000;     // deferred jobs at which intake pauses
    // This daemon's name among the nodes sharing one database: [A-Za-z0-9._-]{1,63}. "" in
    // the file (or no key) = the host name, resolved by load_config; IMGSPOOL_NODE wins.
    std::string node;
    // Silence (no heartbeat in the database) after which other nodes adopt this node's jobs.
    int lease_s = 30;
};

struct StoreSettings {
    std::string kind = "local";                  // "local" | "s3"
    std::filesystem::path path = "var/objects";  // local store root
    std::string public_base_url;                 // CDN base; empty = store's own URLs
    std::string key_template = "images/{upload_id}/{variant}.{ext}";
    S3Config s3;
};

struct MetricsSettings {
    bool enabled = false;
    std::string bind = "127.0.0.1";
    int port = 9091;
};

// [fetch]: how manifest sources (http://, https://, s3://) are fetched. Reloadable: a change
// applies to the next fetch.
struct FetchConfig {
    // Host names, IP addresses or CIDR ranges that may be fetched although they are loopback,
    // private, link-local or otherwise not public. Kept as written (only empty entries are
    // refused here); their syntax is fetch::parse_allow_entry's.
    std::vector<std::string> allow_hosts;
    int max_redirects = 5;       // 0..20, each hop checked again
    int connect_timeout_s = 10;  // 1..300 and at most timeout_s
    int timeout_s = 60;          // 1..600: the whole fetch, every hop
    // [fetch.s3] (or a FETCH_S3_* variable) was given: s3:// sources use `s3`. Otherwise they
    // use [store]'s S3 settings when the store is S3, and cannot be read when it is not.
    bool s3_set = false;
    S3Config s3;  // bucket unused: it comes from each s3:// URL
};

// [http]: the HTTP drop-in (POST /images/upload, POST /jobs, GET /images/{id}). A reload
// applies spool, token and request_timeout_s; the others need a restart, like [metrics].
struct HttpSettings {
    bool enabled = false;
    std::string bind = "127.0.0.1";  // an IPv4 or IPv6 address literal
    int port = 8080;                 // 1..65535, not [metrics] port on the same address
    std::string spool;               // where uploads go; "" in the file = the first [[spool]]
    std::string token;               // bearer token, "" = none; secret; IMGSPOOL_HTTP_TOKEN
    int max_connections = 64;        // 1..1024
    int idle_timeout_s = 30;         // 1..3600: a connection silent this long is closed
    int request_timeout_s = 120;     // 1..3600: the whole request
};

struct Config {
    std::filesystem::path file;  // where it was read from
    DaemonSettings daemon;
    std::vector<SpoolLayout> spools;
    StoreSettings store;
    Limits limits;
    std::map<std::string, Profile> profiles;  // built-in plus [profiles.NAME]
    MetricsSettings metrics;
    FetchConfig fetch;
    HttpSettings http;
    pg::DatabaseSettings database;  // [database]; url "" = SQLite at database_path()

    int effective_workers() const;  // workers, or the number of cores when 0
    std::filesystem::path database_path() const { return daemon.state_dir / "imgspool.db"; }
};

// Reads and checks the file, then applies the environment (S3_*, AWS_*, CDN_URL,
// ENABLE_METRICS, METRICS_PORT, METRICS_BIND, FETCH_S3_*, IMGSPOOL_HTTP_TOKEN, DATABASE_URL,
// IMGSPOOL_NODE). Relative paths
// are resolved against the current directory. Never throws: every problem is a Stage::config
// Error naming the key or variable. imgspool.example.toml documents every key.
Result<Config> load_config(const std::filesystem::path& file);

// Same, from TOML text (for tests); `origin` names the source in errors.
Result<Config> parse_config(const std::string& toml_text, const std::string& origin);

// The effective settings as TOML text that parse_config reads back; secrets shown as "****"
// (an access key id keeps its first four characters: "AKIA****"; a database URL keeps all but
// its password).
std::string describe_config(const Config& config);

}  // namespace imgspool
