// Checks that span sections (run after the environment is applied) and path resolution.
#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <array>
#include <system_error>

#include "daemon/config_parts.hpp"
#include "fetch/address_policy.hpp"
#include "store/s3/config_check.hpp"

namespace imgspool {

namespace fs = std::filesystem;

bool is_node_name(const std::string& name) {
    return !name.empty() && name.size() <= 63 &&
           std::all_of(name.begin(), name.end(), [](unsigned char c) {
               return std::isalnum(c) != 0 || c == '.' || c == '_' || c == '-';
           });
}

bool is_plain_name(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '_' || c == '-';
    });
}

std::optional<std::string> normalise_url(const std::string& url) {
    std::string out = url;
    while (!out.empty() && out.back() == '/') out.pop_back();
    for (const char* scheme : {"http://", "https://"}) {
        std::string_view s(scheme);
        if (out.size() > s.size() && out.compare(0, s.size(), s) == 0) return out;
    }
    return std::nullopt;
}

namespace {

struct Address {
    int family = 0;
    std::array<unsigned char, 16> bytes{};  // an IPv4 address fills the first four
};

std::optional<Address> parse_address(const std::string& text) {
    Address a;
    for (int family : {AF_INET, AF_INET6}) {
        if (inet_pton(family, text.c_str(), a.bytes.data()) == 1) {
            a.family = family;
            return a;
        }
    }
    return std::nullopt;
}

// Two listeners on one port collide when they bind the same address, or when either binds a
// wildcard (0.0.0.0, ::), which takes the port on every address.
bool same_listener(const std::string& a, const std::string& b) {
    std::optional<Address> x = parse_address(a), y = parse_address(b);
    if (!x || !y) return a == b;
    const auto wildcard = [](const Address& v) {
        return std::all_of(v.bytes.begin(), v.bytes.end(), [](unsigned char c) { return c == 0; });
    };
    return wildcard(*x) || wildcard(*y) || (x->family == y->family && x->bytes == y->bytes);
}

}  // namespace

bool is_address_literal(const std::string& text) {
    return parse_address(text).has_value();
}

namespace {

// Absolute against the current directory, lexically normal, without a trailing separator.
Result<fs::path> resolve(const fs::path& p, const std::string& what, const std::string& origin) {
    std::error_code ec;
    fs::path out = fs::absolute(p, ec).lexically_normal();
    if (ec) {
        return make_error(Stage::config,
                          what + ": cannot make " + p.string() + " absolute: " + ec.message(),
                          origin);
    }
    if (!out.has_filename() && out.has_relative_path()) out = out.parent_path();
    return out;
}

// True when `inner` is `outer` or lies below it (both absolute and normal).
bool within(const fs::path& inner, const fs::path& outer) {
    return std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end()).first ==
           outer.end();
}

std::string spool_label(std::size_t i) {
    return "[[spool]] #" + std::to_string(i + 1);
}

Status check_spools(const Config& config, const std::string& origin) {
    const auto& spools = config.spools;
    if (spools.empty()) {
        return make_error(Stage::config,
                          "no [[spool]] table: at least one spool (name, root, profile) is needed",
                          origin);
    }
    for (std::size_t i = 0; i < spools.size(); ++i) {
        const SpoolLayout& s = spools[i];
        if (config.profiles.count(s.profile) == 0) {
            std::string known;
            for (const auto& [name, profile] : config.profiles) {
                known += (known.empty() ? "" : ", ") + name;
            }
            return make_error(Stage::config,
                              spool_label(i) + " profile: unknown profile " +
                                  toml_string(s.profile) + " (known: " + known + ")",
                              origin);
        }
        for (std::size_t j = 0; j < i; ++j) {
            const SpoolLayout& earlier = spools[j];
            if (earlier.name == s.name) {
                return make_error(Stage::config,
                                  spool_label(i) + " name: duplicate spool name " +
                                      toml_string(s.name) + " (also " + spool_label(j) + ")",
                                  origin);
            }
            if (within(s.root, earlier.root) || within(earlier.root, s.root)) {
                return make_error(Stage::config,
                                  spool_label(i) + " root: " + toml_string(s.root.string()) +
                                      " overlaps the root of " + spool_label(j) + " " +
                                      toml_string(earlier.root.string()) +
                                      "; spools need separate folders",
                                  origin);
            }
        }
    }
    return ok_status();
}

// A key an S3 client cannot do without, and the variable that may give it instead of the file.
struct Needed {
    const std::string& value;
    const char* key;
    const char* env;  // nullptr: only the file
};

// The first empty one as "[store] bucket: kind = "s3" needs it (in the file or as ...)".
Status first_missing(std::initializer_list<Needed> needed, const std::string& section,
                     const std::string& needs_it, const std::string& origin) {
    for (const Needed& n : needed) {
        if (!n.value.empty()) continue;
        return make_error(
            Stage::config,
            section + " " + n.key + ": " + needs_it + " (in the file" +
                (n.env ? std::string(" or as ") + n.env + " in the environment" : "") + ")",
            origin);
    }
    return ok_status();
}

Status check_s3(const StoreSettings& store, const std::string& origin) {
    if (store.kind != "s3") return ok_status();
    const S3Config& s3 = store.s3;
    return first_missing(
        {Needed{s3.bucket, "bucket", "S3_BUCKET"},
         Needed{s3.region, "region", "S3_REGION or AWS_REGION"},
         Needed{s3.access_key_id, "access_key_id", "S3_ACCESS_KEY_ID or AWS_ACCESS_KEY_ID"},
         Needed{s3.secret_access_key, "secret_access_key",
                "S3_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY"}},
        "[store]", "kind = \"s3\" needs it", origin);
}

// Each allow_hosts entry must be a host name, a ".suffix", an IP address or a CIDR range.
Status check_allow_hosts(const FetchConfig& fetch, const std::string& origin) {
    for (const std::string& entry : fetch.allow_hosts) {
        if (auto parsed = fetch::parse_allow_entry(entry); !parsed) {
            return make_error(Stage::config, "[fetch] allow_hosts: " + parsed.error().reason,
                              origin);
        }
    }
    return ok_status();
}

// [fetch.s3] has no bucket (each s3:// source names one), so the S3 client's own checks run on
// a copy with a stand-in bucket. Without [fetch.s3], s3:// sources use an S3 [store]'s settings.
Status check_fetch_s3(const FetchConfig& fetch, const std::string& origin) {
    if (!fetch.s3_set) return ok_status();
    const S3Config& s3 = fetch.s3;
    if (Status s = first_missing(
            {Needed{s3.region, "region", nullptr},
             Needed{s3.access_key_id, "access_key_id", "FETCH_S3_ACCESS_KEY_ID"},
             Needed{s3.secret_access_key, "secret_access_key", "FETCH_S3_SECRET_ACCESS_KEY"}},
            "[fetch.s3]", "reading s3:// sources needs it", origin);
        !s) {
        return s;
    }
    S3Config checked = s3;
    checked.bucket = "placeholder-bucket";
    if (Status s = s3::validate_s3_config(checked); !s) {
        return make_error(Stage::config, "[fetch.s3]: " + s.error().reason, origin);
    }
    return ok_status();
}

// Run after check_spools: there is at least one spool.
Status check_http(Config& config, const std::string& origin) {
    HttpSettings& http = config.http;
    if (http.spool.empty()) http.spool = config.spools.front().name;
    const auto& spools = config.spools;
    if (std::none_of(spools.begin(), spools.end(),
                     [&http](const SpoolLayout& s) { return s.name == http.spool; })) {
        std::string known;
        for (const SpoolLayout& s : spools) known += (known.empty() ? "" : ", ") + s.name;
        return make_error(
            Stage::config,
            "[http] spool: unknown spool " + toml_string(http.spool) + " (known: " + known + ")",
            origin);
    }
    // Checked after the environment (IMGSPOOL_HTTP_TOKEN); the message never shows the value.
    if (!std::all_of(http.token.begin(), http.token.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f; })) {
        return make_error(Stage::config,
                          "[http] token: only printable ASCII without spaces can be sent as a "
                          "bearer token (the value is not shown)",
                          origin);
    }
    const MetricsSettings& metrics = config.metrics;
    if (http.enabled && metrics.enabled && http.port == metrics.port &&
        same_listener(http.bind, metrics.bind)) {
        return make_error(Stage::config,
                          "[http] port: " + std::to_string(http.port) +
                              " is also [metrics] port on " + toml_string(metrics.bind) +
                              "; give the two servers different ports",
                          origin);
    }
    return ok_status();
}

// [daemon] node left out (or ""): the host name, which must then be a node name too.
Status resolve_node(DaemonSettings& daemon, const std::string& origin) {
    if (!daemon.node.empty()) return ok_status();
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0) {
        return make_error(Stage::config,
                          "[daemon] node: not set, and the host name cannot be read: " +
                              std::string(std::strerror(errno)),
                          origin);
    }
    if (!is_node_name(host.data())) {
        return make_error(Stage::config,
                          "[daemon] node: not set, and the host name " + toml_string(host.data()) +
                              " is not a node name (" + kNodeNameForm +
                              "); set node, or IMGSPOOL_NODE",
                          origin);
    }
    daemon.node = host.data();
    return ok_status();
}

}  // namespace

Status check_config(Config& config, const std::string& origin) {
    struct Named {
        fs::path& path;
        std::string what;
    };
    std::vector<Named> paths{{config.daemon.state_dir, "[daemon] state_dir"},
                             {config.store.path, "[store] path"}};
    for (std::size_t i = 0; i < config.spools.size(); ++i) {
        paths.push_back({config.spools[i].root, spool_label(i) + " root"});
    }
    for (Named& n : paths) {
        Result<fs::path> abs = resolve(n.path, n.what, origin);
        if (!abs) return abs.error();
        n.path = std::move(abs.value());
    }
    if (Status s = resolve_node(config.daemon, origin); !s) return s;
    if (Status s = check_spools(config, origin); !s) return s;
    if (Status s = check_s3(config.store, origin); !s) return s;
    if (Status s = check_allow_hosts(config.fetch, origin); !s) return s;
    if (Status s = check_fetch_s3(config.fetch, origin); !s) return s;
    return check_http(config, origin);
}

}  // namespace imgspool
