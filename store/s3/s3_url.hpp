// Where a bucket and its objects live: path-style on a custom endpoint (MinIO, s3rver:
// http://127.0.0.1:9000/bucket/key), virtual-hosted style on AWS
// (https://bucket.s3.REGION.amazonaws.com/key).
#pragma once

#include <string>
#include <string_view>

#include "store/s3/sigv4.hpp"
#include "store/s3_config.hpp"

namespace imgspool::s3 {

struct Endpoint {
    std::string origin;  // "http://127.0.0.1:9000" or "https://bucket.s3.eu-west-1.amazonaws.com"
    std::string host;    // the Host header: "127.0.0.1:9000"
    std::string path_prefix;  // "/bucket" for path-style, "" for virtual-hosted
};

// The endpoint of a validated configuration (see validate_s3_config).
Endpoint endpoint_for(const S3Config& config);

// The endpoint of another bucket at the same service: config's endpoint (or region) and
// addressing style, config.bucket ignored. Reading s3:// sources uses it.
Endpoint endpoint_for(const S3Config& config, std::string_view bucket);

struct Target {
    std::string url;   // encoded, with the query: what curl fetches
    std::string host;  // Host header value
    std::string path;  // decoded path, what SigV4 signs: "/bucket/images/a b.jpg"
};

// The bucket itself when key is empty, else the object.
Target target_for(const Endpoint& endpoint, std::string_view key, const NameValues& query = {});

// The object's URL without query: "http://127.0.0.1:9000/bucket/images/x/small.jpg".
std::string object_url(const Endpoint& endpoint, std::string_view key);

// "s3://bucket/key", the way a source names an object in reasons and logs.
std::string s3_uri(std::string_view bucket, std::string_view key);

// "http://host:port" → "host:port"; empty when the text is not http(s)://host[:port][/].
std::string endpoint_host(std::string_view endpoint);

}  // namespace imgspool::s3
