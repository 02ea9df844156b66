// The HTTP drop-in's shared secret: "Authorization: Bearer <token>", compared in constant time.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace imgspool::upload {

// The token of "Bearer <token>" (scheme case-insensitive, RFC 6750 §2.1), or nullopt for a
// missing header, another scheme or an empty token.
std::optional<std::string_view> parse_bearer(std::string_view authorization);

// The configured token, kept only as its SHA-256 digest. Comparing digests makes both sides the
// same length, so neither the token's length nor a common prefix shows in the time taken.
class BearerToken {
  public:
    BearerToken() = default;                       // no token: every request is admitted
    explicit BearerToken(std::string_view token);  // "" also means no token

    bool required() const { return required_; }

    // Admitted when no token is configured, or the header carries the configured token.
    // `authorization` is the header's value, null when the request has none.
    bool admits(const char* authorization) const;

  private:
    bool required_ = false;
    std::optional<std::array<unsigned char, 32>> digest_;  // empty only if hashing failed
};

}  // namespace imgspool::upload
