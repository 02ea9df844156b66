// AWS Signature Version 4 as pure functions: canonical request, string to sign, signing key and
// the Authorization header. No clock and no network: the caller passes the timestamp, so every
// step can be checked against AWS's published examples.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imgspool::s3 {

using NameValues = std::vector<std::pair<std::string, std::string>>;

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;  // secret
    std::string session_token;      // secret; empty for long-term keys
};

struct SigningInput {
    std::string method;          // "PUT"
    std::string path;            // decoded, e.g. "/bucket/images/a b.jpg"; encoded once when signed
    NameValues query;            // decoded names and values; encoded when signed
    NameValues headers;          // must contain host; repeated names are joined with ','
    std::string payload_sha256;  // hex SHA-256 of the body
};

struct Scope {
    std::string region;   // "us-east-1"
    std::string service;  // "s3"
};

// RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case
// hex); '/' is kept when keep_slash is set (paths) and encoded otherwise (query names and values).
std::string uri_encode(std::string_view text, bool keep_slash);

// The path encoded once per segment, as S3 signs it ("/" for an empty path).
std::string canonical_uri(std::string_view path);

// Encoded name=value pairs sorted by name then value, joined with '&'.
std::string canonical_query(const NameValues& query);

// A header value with leading/trailing white space removed and inner runs of spaces collapsed.
std::string trim_header_value(std::string_view value);

struct CanonicalHeaders {
    std::string block;           // "host:example.com\nx-amz-date:...\n"
    std::string signed_headers;  // "host;x-amz-date"
};
CanonicalHeaders canonical_headers(const NameValues& headers);

std::string canonical_request(const SigningInput& input);

// "20130524/us-east-1/s3/aws4_request"
std::string credential_scope(std::string_view amz_date, const Scope& scope);

// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical request>"
std::string string_to_sign(std::string_view amz_date, const Scope& scope,
                           std::string_view canonical_request);

// The raw derived key: HMAC chain over date, region, service and "aws4_request".
std::string signing_key(std::string_view secret_access_key, std::string_view amz_date,
                        const Scope& scope);

// "20130524T000000Z" for a UTC time point.
std::string amz_date(std::chrono::system_clock::time_point when);

// Adds X-Amz-Date (and X-Amz-Security-Token when the credentials carry one) to input.headers and
// returns the Authorization header value for the request.
std::string sign(SigningInput& input, const Credentials& credentials, const Scope& scope,
                 std::string_view amz_date);

}  // namespace imgspool::s3
