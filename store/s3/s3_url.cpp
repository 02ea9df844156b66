#include "store/s3/s3_url.hpp"

namespace imgspool::s3 {

std::string endpoint_host(std::string_view endpoint) {
    std::string_view rest;
    if (endpoint.starts_with("http://")) {
        rest = endpoint.substr(7);
    } else if (endpoint.starts_with("https://")) {
        rest = endpoint.substr(8);
    } else {
        return {};
    }
    if (rest.ends_with('/')) rest.remove_suffix(1);
    if (rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) return {};
    return std::string(rest);
}

Endpoint endpoint_for(const S3Config& config) {
    return endpoint_for(config, config.bucket);
}

Endpoint endpoint_for(const S3Config& config, std::string_view bucket) {
    if (!config.endpoint.empty()) {
        std::string origin = config.endpoint;
        if (origin.ends_with('/')) origin.pop_back();
        std::string prefix = "/";
        prefix.append(bucket);
        return Endpoint{origin, endpoint_host(config.endpoint), std::move(prefix)};
    }
    std::string host(bucket);
    host.append(".s3.").append(config.region).append(".amazonaws.com");
    return Endpoint{"https://" + host, host, ""};
}

std::string s3_uri(std::string_view bucket, std::string_view key) {
    std::string uri = "s3://";
    uri.append(bucket).append("/").append(key);
    return uri;
}

Target target_for(const Endpoint& endpoint, std::string_view key, const NameValues& query) {
    std::string path = endpoint.path_prefix + "/" + std::string(key);
    if (key.empty() && !endpoint.path_prefix.empty()) path = endpoint.path_prefix;
    // Appended piece by piece: GCC 12 at -O3 misreads `a + b` here as overlapping (-Wrestrict).
    std::string url = endpoint.origin;
    url.append(canonical_uri(path));
    if (!query.empty()) {
        url.push_back('?');
        url.append(canonical_query(query));
    }
    return Target{std::move(url), endpoint.host, std::move(path)};
}

std::string object_url(const Endpoint& endpoint, std::string_view key) {
    return target_for(endpoint, key).url;
}

}  // namespace imgspool::s3
