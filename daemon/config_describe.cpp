// describe_config: the effective settings as TOML that parse_config reads back. Secrets are
// masked: a key id keeps its first four characters ("AKIA****"), the rest become "****".
#include <sstream>

#include "daemon/config_parts.hpp"
#include "store/pg/database_url.hpp"

namespace imgspool {

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

std::string q(const std::string& s) {
    return toml_string(s);
}

std::string masked(const std::string& secret, std::size_t shown) {
    if (secret.empty()) return q("");
    return q((secret.size() > shown ? secret.substr(0, shown) : "") + "****");
}

const char* b(bool v) {
    return v ? "true" : "false";
}

// The S3 keys [store] and [fetch.s3] share.
void describe_s3_connection(std::ostream& out, const S3Config& s3) {
    out << "region = " << q(s3.region) << "\n"
        << "endpoint = " << q(s3.endpoint) << "\n"
        << "access_key_id = " << masked(s3.access_key_id, 4) << "\n"
        << "secret_access_key = " << masked(s3.secret_access_key, 0) << "\n"
        << "session_token = " << masked(s3.session_token, 0) << "\n"
        << "max_attempts = " << s3.max_attempts << "\n"
        << "connect_timeout_ms = " << s3.connect_timeout_ms << "\n"
        << "request_timeout_ms = " << s3.request_timeout_ms << "\n"
        << "max_connections = " << s3.max_connections << "\n"
        << "retry_base_delay_ms = " << s3.retry_base_delay_ms << "\n"
        << "retry_max_delay_ms = " << s3.retry_max_delay_ms << "\n";
}

void describe_store(std::ostream& out, const StoreSettings& st) {
    out << "[store]\n"
        << "kind = " << q(st.kind) << "\n"
        << "path = " << q(st.path.string()) << "\n"
        << "public_base_url = " << q(st.public_base_url) << "\n"
        << "key_template = " << q(st.key_template) << "\n";
    if (st.kind != "s3") return;
    const S3Config& s3 = st.s3;
    out << "bucket = " << q(s3.bucket) << "\n";
    describe_s3_connection(out, s3);
    out << "multipart_threshold_mb = " << s3.multipart_threshold / kMiB << "\n"
        << "multipart_part_size_mb = " << s3.multipart_part_size / kMiB << "\n"
        << "parallel_uploads = " << s3.parallel_uploads << "\n";
}

void describe_fetch(std::ostream& out, const FetchConfig& f, const StoreSettings& store) {
    std::string hosts;
    for (const std::string& h : f.allow_hosts) hosts += (hosts.empty() ? "" : ", ") + q(h);
    out << "\n[fetch]\n"
        << "allow_hosts = [" << hosts << "]\n"
        << "max_redirects = " << f.max_redirects << "\n"
        << "connect_timeout_s = " << f.connect_timeout_s << "\n"
        << "timeout_s = " << f.timeout_s << "\n";
    if (f.s3_set) {
        out << "\n[fetch.s3]\n";
        describe_s3_connection(out, f.s3);
    } else if (store.kind == "s3") {
        out << "# no [fetch.s3]: s3:// sources are read with the [store] S3 settings\n";
    } else {
        out << "# no [fetch.s3] and no S3 store: s3:// sources cannot be read\n";
    }
}

void describe_http(std::ostream& out, const HttpSettings& h) {
    out << "\n[http]\n"
        << "enabled = " << b(h.enabled) << "\n"
        << "bind = " << q(h.bind) << "\n"
        << "port = " << h.port << "\n"
        << "spool = " << q(h.spool) << "\n"
        << "token = " << masked(h.token, 0) << "\n"
        << "max_connections = " << h.max_connections << "\n"
        << "idle_timeout_s = " << h.idle_timeout_s << "\n"
        << "request_timeout_s = " << h.request_timeout_s << "\n";
}

// The URL with its password as "****" (checked when read, so libpq parses it).
void describe_database(std::ostream& out, const pg::DatabaseSettings& db) {
    out << "\n[database]\n"
        << "url = " << q(db.url.empty() ? "" : pg::masked_database_url(db.url))
        << (db.url.empty() ? "  # SQLite in state_dir" : "") << "\n"
        << "pool_size = " << db.pool_size << "\n"
        << "connect_timeout_s = " << db.connect_timeout_s << "\n"
        << "statement_timeout_s = " << db.statement_timeout_s << "\n";
}

// Config files give one quality per variant, shared by its formats: written from the first.
void describe_profile(std::ostream& out, const Profile& p) {
    out << "\n[profiles." << p.name << "]\n"
        << "keep_metadata = " << b(p.keep_metadata) << "\n"
        << "jpeg_progressive = " << b(p.jpeg_progressive) << "\n"
        << "png_compression = " << p.png_compression << "\n"
        << "webp_effort = " << p.webp_effort << "\n"
        << "avif_effort = " << p.avif_effort << "\n"
        << "fail_on = " << q(fail_on_name(p.fail_on)) << "\n"
        << "source_fallback = " << q(format_name(p.source_fallback)) << "\n"
        << "animated = " << b(p.animated) << "\n"
        << "max_frames = " << p.max_frames << "\n"
        << "max_animation_pixels = " << p.max_animation_pixels << "\n";
    std::string placeholders;
    if (p.placeholders.blurhash) placeholders += q("blurhash");
    if (p.placeholders.lqip) placeholders += (placeholders.empty() ? "" : ", ") + q("lqip");
    out << "placeholder = [" << placeholders << "]\n";
    for (const Variant& v : p.variants) {
        std::string formats;
        for (const OutputFormat& o : v.outputs) {
            formats +=
                (formats.empty() ? "" : ", ") + q(o.format ? format_name(*o.format) : "source");
        }
        out << "\n[[profiles." << p.name << ".variant]]\n"
            << "name = " << q(v.name) << "\n"
            << "width = " << v.width << "\n"
            << "height = " << v.height << "\n"
            << "fit = " << q(v.fit == Fit::cover ? "cover" : "inside") << "\n"
            << "crop = " << q(crop_name(v.crop)) << "\n"
            << "enlarge = " << b(v.enlarge) << "\n"
            << "formats = [" << formats << "]\n"
            << "quality = " << (v.outputs.empty() ? 85 : v.outputs.front().quality) << "\n";
        if (const std::optional<Watermark>& w = v.watermark) {
            out << "watermark = { image = " << q(w->image.string())
                << ", gravity = " << q(gravity_name(w->gravity)) << ", margin = " << w->margin
                << ", opacity = " << toml::format(toml::value(w->opacity))
                << ", min_width = " << w->min_width << " }  # overlay sha256 " << w->overlay_sha256
                << "\n";
        }
    }
}

}  // namespace

std::string describe_config(const Config& c) {
    std::ostringstream out;
    out << "# imgspool effective configuration, read from " << c.file.string() << "\n"
        << "# (after environment overrides; secrets masked)\n\n"
        << "[daemon]\n"
        << "state_dir = " << q(c.daemon.state_dir.string()) << "\n"
        << "workers = " << c.daemon.workers << "  # effective: " << c.effective_workers() << "\n"
        << "settle_ms = " << c.daemon.settle_ms << "\n"
        << "rescan_s = " << c.daemon.rescan_s << "\n"
        << "queue_max = " << c.daemon.queue_max << "\n"
        << "abandon_after_s = " << c.daemon.abandon_after_s << "\n"
        << "max_job_attempts = " << c.daemon.max_job_attempts << "\n"
        << "retry_min_s = " << c.daemon.retry_min_s << "\n"
        << "retry_max_s = " << c.daemon.retry_max_s << "\n"
        << "max_deferred = " << c.daemon.max_deferred << "\n"
        << "node = " << q(c.daemon.node) << "\n"
        << "lease_s = " << c.daemon.lease_s << "\n";
    for (const SpoolLayout& s : c.spools) {
        out << "\n[[spool]]\n"
            << "name = " << q(s.name) << "\n"
            << "root = " << q(s.root.string()) << "\n"
            << "profile = " << q(s.profile) << "\n";
        if (s.watch == WatchMode::poll) {
            out << "watch = \"poll\"\n"
                << "poll_s = " << s.poll.count() << "\n";
        } else {
            out << "watch = \"inotify\"\n";
        }
    }
    out << "\n";
    describe_store(out, c.store);
    const Limits& l = c.limits;
    out << "\n[limits]\n"
        << "max_bytes = " << l.max_bytes << "\n"
        << "min_width = " << l.min_width << "\n"
        << "min_height = " << l.min_height << "\n"
        << "max_width = " << l.max_width << "\n"
        << "max_height = " << l.max_height << "\n"
        << "max_pixels = " << l.max_pixels << "\n"
        << "\n[metrics]\n"
        << "enabled = " << b(c.metrics.enabled) << "\n"
        << "bind = " << q(c.metrics.bind) << "\n"
        << "port = " << c.metrics.port << "\n";
    describe_fetch(out, c.fetch, c.store);
    describe_http(out, c.http);
    describe_database(out, c.database);
    std::string builtins;
    for (const auto& [name, profile] : builtin_profiles()) {
        builtins += (builtins.empty() ? "" : ", ") + name;
    }
    out << "\n# built-in profiles: " << builtins << "\n";
    for (const auto& [name, profile] : c.profiles) {
        if (builtin_profiles().count(name) == 0) describe_profile(out, profile);
    }
    return out.str();
}

}  // namespace imgspool
