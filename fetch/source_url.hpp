// Where a manifest's pixels come from: an http(s):// URL, parsed by libcurl's own URL parser (so
// what is checked is what curl fetches), or s3://bucket/key.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool::fetch {

struct SourceUrl {
    enum class Kind { http, https, s3 } kind = Kind::http;
    std::string text;         // normalised by curl, as curl gets it; s3: as given
    std::string host;         // lower-case, no brackets, no trailing dot; "" for s3
    int port = 0;             // the default port when the URL names none; 0 for s3
    std::string bucket, key;  // s3 only; the key is taken literally, as the AWS CLI does
};

inline constexpr std::size_t kMaxUrlBytes = 8 * 1024;

// Stage::validate errors: another scheme, no host, user:password in the URL, over 8 KiB.
Result<SourceUrl> parse_source_url(std::string_view text);

// The URL without user:password@, query and fragment, for reasons and logs (they carry
// secrets and tokens).
std::string url_for_reason(std::string_view text);

}  // namespace imgspool::fetch
