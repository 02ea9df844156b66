// Environment overrides, applied after the file: the variables operators already set.
// An empty variable counts as unset. S3_* wins over its AWS_* fallback.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "daemon/config_parts.hpp"
#include "store/pg/database_url.hpp"

namespace imgspool {

namespace {

struct Found {
    std::string name;  // the variable it came from
    std::string value;
};

std::optional<Found> lookup(std::initializer_list<const char*> names) {
    for (const char* name : names) {
        const char* value = std::getenv(name);
        if (value != nullptr && *value != '\0') return Found{name, value};
    }
    return std::nullopt;
}

Error env_error(const Found& f, const std::string& expected) {
    return make_error(Stage::config, "environment variable " + f.name + ": expected " + expected +
                                         ", got " + toml_string(f.value));
}

Status apply_url(std::initializer_list<const char*> names, std::string& out) {
    std::optional<Found> f = lookup(names);
    if (!f) return ok_status();
    std::optional<std::string> url = normalise_url(f->value);
    if (!url) return env_error(*f, "an http:// or https:// URL");
    out = *url;
    return ok_status();
}

// True when one of the variables was set.
bool apply_string(std::initializer_list<const char*> names, std::string& out) {
    std::optional<Found> f = lookup(names);
    if (f) out = f->value;
    return f.has_value();
}

Status apply_metrics(MetricsSettings& m) {
    if (std::optional<Found> f = lookup({"ENABLE_METRICS"})) {
        std::string v = f->value;
        std::transform(v.begin(), v.end(), v.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (v == "true" || v == "1") {
            m.enabled = true;
        } else if (v == "false" || v == "0") {
            m.enabled = false;
        } else {
            return env_error(*f, "true, false, 1 or 0");
        }
    }
    if (std::optional<Found> f = lookup({"METRICS_PORT"})) {
        const std::string& v = f->value;
        bool digits = v.size() <= 5 && std::all_of(v.begin(), v.end(), [](unsigned char c) {
                          return std::isdigit(c) != 0;
                      });
        int port = digits ? std::stoi(v) : 0;
        if (port < 1 || port > 65535) return env_error(*f, "a port 1..65535");
        m.port = port;
    }
    apply_string({"METRICS_BIND"}, m.bind);
    return ok_status();
}

// Any FETCH_S3_* variable makes [fetch.s3] count as given, as the table does. No fallback to
// the store's variables: without [fetch.s3], s3:// sources use the store's settings anyway.
Status apply_fetch_s3(FetchConfig& fetch) {
    S3Config& s3 = fetch.s3;
    bool set = apply_string({"FETCH_S3_ACCESS_KEY_ID"}, s3.access_key_id);
    set = apply_string({"FETCH_S3_SECRET_ACCESS_KEY"}, s3.secret_access_key) || set;
    set = apply_string({"FETCH_S3_SESSION_TOKEN"}, s3.session_token) || set;
    if (lookup({"FETCH_S3_ENDPOINT"})) {
        if (Status s = apply_url({"FETCH_S3_ENDPOINT"}, s3.endpoint); !s) return s;
        set = true;
    }
    if (set) fetch.s3_set = true;
    return ok_status();
}

}  // namespace

Status apply_environment(Config& config) {
    S3Config& s3 = config.store.s3;
    apply_string({"S3_BUCKET"}, s3.bucket);
    apply_string({"S3_REGION", "AWS_REGION"}, s3.region);
    if (Status s = apply_url({"S3_ENDPOINT"}, s3.endpoint); !s) return s;
    apply_string({"S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"}, s3.access_key_id);
    apply_string({"S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"}, s3.secret_access_key);
    apply_string({"AWS_SESSION_TOKEN"}, s3.session_token);
    if (Status s = apply_url({"CDN_URL"}, config.store.public_base_url); !s) return s;
    if (Status s = apply_metrics(config.metrics); !s) return s;
    if (Status s = apply_fetch_s3(config.fetch); !s) return s;
    apply_string({"IMGSPOOL_HTTP_TOKEN"}, config.http.token);
    if (std::optional<Found> f = lookup({"DATABASE_URL"})) {
        // Never echoed: it may hold a password.
        if (Status s = pg::check_database_url(f->value, f->name); !s) return s;
        config.database.url = f->value;
    }
    if (std::optional<Found> f = lookup({"IMGSPOOL_NODE"})) {
        if (!is_node_name(f->value)) return env_error(*f, kNodeNameForm);
        config.daemon.node = f->value;
    }
    return ok_status();
}

}  // namespace imgspool
