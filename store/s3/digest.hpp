// Hashes the S3 protocol needs, computed with OpenSSL: SHA-256 (payload hash, SigV4), HMAC-SHA256
// (SigV4 signing key chain) and MD5 (Content-MD5).
#pragma once

#include <string>
#include <string_view>

namespace imgspool::s3 {

// Lower-case hex of raw bytes.
std::string hex(std::string_view bytes);

// Lower-case hex SHA-256 of data; "e3b0c442...b855" for empty data.
std::string sha256_hex(std::string_view data);

// Raw 32-byte HMAC-SHA256 of data under key.
std::string hmac_sha256(std::string_view key, std::string_view data);

// Base64 of the raw MD5 of data, the form of the Content-MD5 header.
std::string md5_base64(std::string_view data);

}  // namespace imgspool::s3
