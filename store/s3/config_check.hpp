// Checks an S3Config before any request: every problem named with the setting to change.
#pragma once

#include <string_view>

#include "common/error.hpp"
#include "store/s3_config.hpp"

namespace imgspool::s3 {

// Stage::config errors such as "S3 bucket is not set (S3_BUCKET or [store] bucket)".
Status validate_s3_config(const S3Config& config);

// The same checks without the bucket: for a client that names the bucket per request (s3://
// sources), where config.bucket is ignored.
Status validate_s3_service(const S3Config& config);

// S3's rules for a bucket name: 3-63 lower-case letters, digits, '-' and '.', starting and
// ending with a letter or digit.
bool valid_bucket_name(std::string_view name);

}  // namespace imgspool::s3
