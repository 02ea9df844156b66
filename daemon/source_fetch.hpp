// Where a manifest's source comes from: http(s):// through the checked fetcher (fetch/), s3://
// through the signed client with [fetch.s3], or the store's S3 settings when it has none.
#pragma once

#include "daemon/config.hpp"
#include "pipeline/pipeline_settings.hpp"

namespace imgspool {

// The config was checked (check_config refuses a bad allow_hosts entry), so this cannot fail.
// The S3 client is made on the first s3:// fetch, not here.
SourceFetch make_source_fetch(const Config& config);

}  // namespace imgspool
