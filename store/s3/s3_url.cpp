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
    if (!config.endpoint.empty()) {
        std::string origin = config.endpoint;
        if (origin.ends_with('/')) origin.pop_back();
        return Endpoint{origin, endpoint_host(config.endpoint), "/" + config.bucket};
    }
    const std::string host = config.bucket + ".s3." + config.region + ".amazonaws.com";
    return Endpoint{"https://" + host, host, ""};
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
