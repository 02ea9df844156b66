// The steps of load_config, each in its own file: read the TOML sections, apply the
// environment, then resolve paths and check what spans several sections.
#pragma once

#include <optional>
#include <string>
#include <toml.hpp>

#include "common/error.hpp"
#include "daemon/config.hpp"
#include "daemon/config_reader.hpp"

namespace imgspool {

// config_sections.cpp: [daemon], [[spool]], [store], [limits], [metrics], [fetch], [http],
// [database], then [profiles.*].
Status read_sections(const toml::value& root, const std::string& origin, Config& config);

// config_profiles.cpp: built-in profiles plus every [profiles.NAME], each validated.
Status read_profiles(TableReader& top, const std::string& origin, Config& config);

// config_env.cpp: S3_*/AWS_*, CDN_URL, ENABLE_METRICS, METRICS_PORT, METRICS_BIND,
// FETCH_S3_*, IMGSPOOL_HTTP_TOKEN, DATABASE_URL, IMGSPOOL_NODE.
Status apply_environment(Config& config);

// config_check.cpp: absolute paths, spools (unique names, known profiles, separate roots),
// the S3 settings kind = "s3" needs, [fetch.s3], and [http] (its spool, defaulted to the first,
// and a port that is not [metrics] port).
Status check_config(Config& config, const std::string& origin);

// [A-Za-z0-9_-]+, the form of spool and profile names.
bool is_plain_name(const std::string& name);

// [A-Za-z0-9._-]{1,63}, the form of [daemon] node (a host name's characters, one DNS label long).
bool is_node_name(const std::string& name);

// The form of a node name, for "expected ..." in errors.
inline constexpr const char* kNodeNameForm = "1..63 letters, digits, '.', '_' or '-'";

// An IPv4 or IPv6 address literal ("127.0.0.1", "::1"), as a listener is bound to.
bool is_address_literal(const std::string& text);

// An http:// or https:// URL with its trailing slashes removed; nullopt when it is not one.
std::optional<std::string> normalise_url(const std::string& url);

}  // namespace imgspool
