// The plain sections of the file: [daemon], [[spool]], [store], [limits], [metrics], [fetch],
// [http].
#include <algorithm>
#include <chrono>
#include <cstdint>

#include "daemon/config_parts.hpp"
#include "store/object_store.hpp"
#include "store/pg/database_url.hpp"

namespace imgspool {

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

Status read_daemon(TableReader& top, const std::string& origin, Config& config) {
    const toml::value* table = top.table("daemon");
    if (!table) return ok_status();
    DaemonSettings& d = config.daemon;
    TableReader r(*table, "[daemon]", origin);
    r.path("state_dir", d.state_dir);
    r.integer("workers", d.workers, 0, 256);
    r.integer("settle_ms", d.settle_ms, 0, 600000);
    r.integer("rescan_s", d.rescan_s, 1, 86400);
    r.integer("queue_max", d.queue_max, 1, 100000);
    r.integer("abandon_after_s", d.abandon_after_s, 1, 30 * 86400);
    r.integer("max_job_attempts", d.max_job_attempts, 1, 100);
    r.integer("retry_min_s", d.retry_min_s, 1, 86400);
    r.integer("retry_max_s", d.retry_max_s, 1, 86400);
    r.integer("max_deferred", d.max_deferred, 1, 1000000);
    r.string("node", d.node);
    r.integer("lease_s", d.lease_s, 3, 3600);
    if (!d.node.empty() && !is_node_name(d.node)) {
        r.fail("node", std::string("expected ") + kNodeNameForm + ", got " + toml_string(d.node));
    }
    if (!r.failed() && d.retry_max_s < d.retry_min_s) {
        r.fail("retry_max_s",
               "must not be less than retry_min_s (" + std::to_string(d.retry_min_s) + ")");
    }
    return r.finish();
}

// watch = "inotify" | "poll" and poll_s. poll_s on a watched spool is refused rather than
// ignored: whoever wrote it expects polling, which would silently not happen.
void read_watch(TableReader& r, const toml::value& table, SpoolLayout& spool) {
    std::string watch = "inotify";
    r.string("watch", watch);
    if (watch == "poll") {
        spool.watch = WatchMode::poll;
    } else if (watch != "inotify") {
        r.fail("watch", "expected \"inotify\" or \"poll\", got " + toml_string(watch));
    }
    int poll_s = static_cast<int>(spool.poll.count());
    r.integer("poll_s", poll_s, 1, 300);
    spool.poll = std::chrono::seconds(poll_s);
    if (!r.failed() && spool.watch != WatchMode::poll && table.as_table().contains("poll_s")) {
        r.fail("poll_s", "only used with watch = \"poll\" (this spool is watched with inotify)");
    }
}

Status read_spools(TableReader& top, const std::string& origin, Config& config) {
    const toml::array* spools = top.table_array("spool");
    if (!spools) return ok_status();
    for (std::size_t i = 0; i < spools->size(); ++i) {
        SpoolLayout spool;
        spool.profile = "web";
        TableReader r((*spools)[i], "[[spool]] #" + std::to_string(i + 1), origin);
        r.require("name");
        r.string("name", spool.name);
        if (!r.failed() && !is_plain_name(spool.name)) {
            r.fail("name", "expected letters, digits, '_' or '-', got " + toml_string(spool.name));
        }
        r.require("root");
        r.path("root", spool.root);
        r.string("profile", spool.profile);
        read_watch(r, (*spools)[i], spool);
        if (Status s = r.finish(); !s) return s;
        config.spools.push_back(std::move(spool));
    }
    return ok_status();
}

// The S3 keys that say how to reach S3, shared by [store] and [fetch.s3].
void read_s3_connection(TableReader& r, S3Config& s3) {
    r.string("region", s3.region);
    r.string("endpoint", s3.endpoint);
    if (!s3.endpoint.empty()) {
        std::optional<std::string> url = normalise_url(s3.endpoint);
        if (!url) {
            r.fail("endpoint",
                   "expected an http:// or https:// URL, got " + toml_string(s3.endpoint));
        }
        s3.endpoint = url.value_or(s3.endpoint);
    }
    r.string("access_key_id", s3.access_key_id);
    r.string("secret_access_key", s3.secret_access_key);
    r.string("session_token", s3.session_token);
    r.integer("max_attempts", s3.max_attempts, 1, 20);
    r.integer("connect_timeout_ms", s3.connect_timeout_ms, 1, 600000);
    r.integer("request_timeout_ms", s3.request_timeout_ms, 1, 3600000);
    r.integer("max_connections", s3.max_connections, 1, 256);
    r.integer("retry_base_delay_ms", s3.retry_base_delay_ms, 1, 60000);
    r.integer("retry_max_delay_ms", s3.retry_max_delay_ms, 1, 600000);
    if (s3.retry_base_delay_ms > s3.retry_max_delay_ms) {
        r.fail("retry_base_delay_ms", std::to_string(s3.retry_base_delay_ms) +
                                          " is larger than retry_max_delay_ms " +
                                          std::to_string(s3.retry_max_delay_ms));
    }
}

// [store]'s S3 keys: the connection plus the bucket and how uploads are split.
void read_s3(TableReader& r, S3Config& s3) {
    r.string("bucket", s3.bucket);
    read_s3_connection(r, s3);
    std::uint64_t threshold_mb = s3.multipart_threshold / kMiB;
    r.unsigned_integer("multipart_threshold_mb", threshold_mb, 5, 5120);
    s3.multipart_threshold = threshold_mb * kMiB;
    std::uint64_t part_mb = s3.multipart_part_size / kMiB;
    r.unsigned_integer("multipart_part_size_mb", part_mb, 5, 5120);
    s3.multipart_part_size = part_mb * kMiB;
    r.integer("parallel_uploads", s3.parallel_uploads, 1, 64);
}

Status read_store(TableReader& top, const std::string& origin, Config& config) {
    const toml::value* table = top.table("store");
    if (!table) return ok_status();
    StoreSettings& st = config.store;
    TableReader r(*table, "[store]", origin);
    r.string("kind", st.kind);
    if (st.kind != "local" && st.kind != "s3") {
        r.fail("kind", "expected \"local\" or \"s3\", got " + toml_string(st.kind));
    }
    r.path("path", st.path);
    r.string("public_base_url", st.public_base_url);
    if (!st.public_base_url.empty()) {
        std::optional<std::string> url = normalise_url(st.public_base_url);
        if (!url) {
            r.fail("public_base_url",
                   "expected an http:// or https:// URL, got " + toml_string(st.public_base_url));
        }
        st.public_base_url = url.value_or(st.public_base_url);
    }
    r.string("key_template", st.key_template);
    if (Status s = validate_key_template(st.key_template); !s) {
        r.fail("key_template", s.error().reason);
    }
    read_s3(r, st.s3);
    return r.finish();
}

Status read_limits(TableReader& top, const std::string& origin, Config& config) {
    const toml::value* table = top.table("limits");
    if (!table) return ok_status();
    Limits& l = config.limits;
    TableReader r(*table, "[limits]", origin);
    constexpr int kMaxSide = 1000000;
    r.unsigned_integer("max_bytes", l.max_bytes, 1, 4096 * kMiB);
    r.integer("min_width", l.min_width, 1, kMaxSide);
    r.integer("min_height", l.min_height, 1, kMaxSide);
    r.integer("max_width", l.max_width, 1, kMaxSide);
    r.integer("max_height", l.max_height, 1, kMaxSide);
    r.unsigned_integer("max_pixels", l.max_pixels, 1, 1'000'000'000'000ull);
    if (l.min_width > l.max_width) {
        r.fail("min_width", std::to_string(l.min_width) + " is larger than max_width " +
                                std::to_string(l.max_width));
    }
    if (l.min_height > l.max_height) {
        r.fail("min_height", std::to_string(l.min_height) + " is larger than max_height " +
                                 std::to_string(l.max_height));
    }
    return r.finish();
}

Status read_metrics(TableReader& top, const std::string& origin, Config& config) {
    const toml::value* table = top.table("metrics");
    if (!table) return ok_status();
    MetricsSettings& m = config.metrics;
    TableReader r(*table, "[metrics]", origin);
    r.boolean("enabled", m.enabled);
    r.string("bind", m.bind);
    if (m.bind.empty()) r.fail("bind", "expected an address such as \"127.0.0.1\", got \"\"");
    r.integer("port", m.port, 1, 65535);
    return r.finish();
}

// [fetch] and its [fetch.s3] table, which only reads objects: no bucket (each s3:// URL names
// one) and no upload tuning.
Status read_fetch(TableReader& top, const std::string& origin, Config& config) {
    const toml::value* table = top.table("fetch");
    if (!table) return ok_status();
    FetchConfig& f = config.fetch;
    TableReader r(*table, "[fetch]", origin);
    r.string_list("allow_hosts", f.allow_hosts);
    if (std::find(f.allow_hosts.begin(), f.allow_hosts.end(), "") != f.allow_hosts.end()) {
        r.fail("allow_hosts", "expected host names, IP addresses or CIDR ranges, got \"\"");
    }
    r.integer("max_redirects", f.max_redirects, 0, 20);
    r.integer("connect_timeout_s", f.connect_timeout_s, 1, 300);
    r.integer("timeout_s", f.timeout_s, 1, 600);
    if (!r.failed() && f.connect_timeout_s > f.timeout_s) {
        r.fail("connect_timeout_s", std::to_string(f.connect_timeout_s) +
                                        " is larger than timeout_s " + std::to_string(f.timeout_s));
    }
    const toml::value* s3_table = r.table("s3");
    if (Status st = r.finish(); !st || !s3_table) return st;
    TableReader s3(*s3_table, "[fetch.s3]", origin);
    f.s3_set = true;
    if (s3_table->as_table().contains("bucket")) {
        s3.fail("bucket", "not used here: each s3:// source names its bucket");
    }
    read_s3_connection(s3, f.s3);
    return s3.finish();
}

Status read_http(TableReader& top, const std::string& origin, Config& config) {
    const toml::value* table = top.table("http");
    if (!table) return ok_status();
    HttpSettings& h = config.http;
    TableReader r(*table, "[http]", origin);
    r.boolean("enabled", h.enabled);
    r.string("bind", h.bind);
    if (!is_address_literal(h.bind)) {
        r.fail("bind", "expected an IPv4 or IPv6 address such as \"127.0.0.1\" or \"::1\", got " +
                           toml_string(h.bind));
    }
    r.integer("port", h.port, 1, 65535);
    r.string("spool", h.spool);
    r.string("token", h.token);
    r.integer("max_connections", h.max_connections, 1, 1024);
    r.integer("idle_timeout_s", h.idle_timeout_s, 1, 3600);
    r.integer("request_timeout_s", h.request_timeout_s, 1, 3600);
    return r.finish();
}

// [database]: where the job record lives. The URL is checked by libpq's parser, and an error
// never repeats it (it may hold a password).
Status read_database(TableReader& top, const std::string& origin, Config& config) {
    const toml::value* table = top.table("database");
    if (!table) return ok_status();
    pg::DatabaseSettings& db = config.database;
    TableReader r(*table, "[database]", origin);
    r.string("url", db.url);
    if (!db.url.empty()) {
        if (Status s = pg::check_database_url(db.url, "the value"); !s) {
            r.fail("url", s.error().reason);
        }
    }
    r.integer("pool_size", db.pool_size, 0, 256);
    if (db.pool_size == 1) {
        r.fail("pool_size", "expected 0 (workers + 3) or an integer 2..256, got 1");
    }
    r.integer("connect_timeout_s", db.connect_timeout_s, 1, 60);
    r.integer("statement_timeout_s", db.statement_timeout_s, 1, 600);
    return r.finish();
}

}  // namespace

Status read_sections(const toml::value& root, const std::string& origin, Config& config) {
    TableReader top(root, "", origin);
    using Section = Status (*)(TableReader&, const std::string&, Config&);
    for (Section section : {read_daemon, read_spools, read_store, read_limits, read_metrics,
                            read_fetch, read_http, read_database, read_profiles}) {
        if (Status s = section(top, origin, config); !s) return s;
    }
    return top.finish();
}

}  // namespace imgspool
