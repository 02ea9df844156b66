// Checks an S3Config before any request: every problem named with the setting to change.
#pragma once

#include "common/error.hpp"
#include "store/s3_config.hpp"

namespace imgspool::s3 {

// Stage::config errors such as "S3 bucket is not set (S3_BUCKET or [store] bucket)".
Status validate_s3_config(const S3Config& config);

}  // namespace imgspool::s3
