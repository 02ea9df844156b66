// One large object in parts: create the upload, send the parts in parallel, complete it; when any
// step fails for good the upload is aborted so no parts are left behind (and billed).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "store/s3/s3_client.hpp"

namespace imgspool::s3 {

// object_headers (Content-Type, Cache-Control) are set when the upload is created.
Status upload_multipart(S3Client& client, const std::string& key, std::string_view bytes,
                        const NameValues& object_headers, std::uint64_t part_size);

// <CompleteMultipartUpload> body listing the parts' numbers (1-based) and ETags in order.
std::string complete_multipart_body(const std::vector<std::string>& etags);

}  // namespace imgspool::s3
