// Settings of the S3 store ([store] kind = "s3", overridable from the environment).
#pragma once

#include <cstdint>
#include <string>

namespace imgspool {

struct S3Config {
    std::string bucket;
    std::string region = "us-east-1";
    std::string endpoint;  // empty: AWS (virtual-hosted style); set: path-style (MinIO, s3rver)
    std::string access_key_id;
    std::string secret_access_key;  // secret: never logged, printed or stored
    std::string session_token;      // secret
    std::uint64_t multipart_threshold = 16ull * 1024 * 1024;
    std::uint64_t multipart_part_size = 8ull * 1024 * 1024;
    int max_attempts = 5;  // per request, including the first
    int connect_timeout_ms = 5000;
    int request_timeout_ms = 60000;  // whole request, per attempt
    int parallel_uploads = 8;        // objects of one job in flight at once
    // Connections the store keeps open and reuses, across requests and jobs: also the most
    // requests in flight at once, all jobs together.
    int max_connections = 16;
    int retry_base_delay_ms = 100;  // backoff before retry n: random in [0, base * 2^(n-1)]
    int retry_max_delay_ms = 5000;  // cap of that backoff
};

}  // namespace imgspool
