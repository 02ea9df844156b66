// Checks that span sections (run after the environment is applied) and path resolution.
#include <algorithm>
#include <system_error>

#include "daemon/config_parts.hpp"

namespace imgspool {

namespace fs = std::filesystem;

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

Status check_s3(const StoreSettings& store, const std::string& origin) {
    if (store.kind != "s3") return ok_status();
    struct Needed {
        const std::string& value;
        const char* key;
        const char* env;
    };
    const S3Config& s3 = store.s3;
    for (const Needed& n :
         {Needed{s3.bucket, "bucket", "S3_BUCKET"},
          Needed{s3.region, "region", "S3_REGION or AWS_REGION"},
          Needed{s3.access_key_id, "access_key_id", "S3_ACCESS_KEY_ID or AWS_ACCESS_KEY_ID"},
          Needed{s3.secret_access_key, "secret_access_key",
                 "S3_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY"}}) {
        if (n.value.empty()) {
            return make_error(Stage::config,
                              std::string("[store] ") + n.key + ": kind = \"s3\" needs it (in " +
                                  "the file or as " + n.env + " in the environment)",
                              origin);
        }
    }
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
    if (Status s = check_spools(config, origin); !s) return s;
    return check_s3(config.store, origin);
}

}  // namespace imgspool
