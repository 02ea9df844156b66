// Bearer token parsing and the constant-time compare (OpenSSL's SHA-256 and CRYPTO_memcmp).
#include "upload/bearer_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>

namespace imgspool::upload {
namespace {

using Digest = std::array<unsigned char, 32>;

// Fails only when OpenSSL cannot allocate; the request is then refused.
std::optional<Digest> sha256(std::string_view data) {
    Digest out{};
    unsigned int size = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr) != 1 ||
        size != out.size()) {
        return std::nullopt;
    }
    return out;
}

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

}  // namespace

std::optional<std::string_view> parse_bearer(std::string_view authorization) {
    constexpr std::string_view scheme = "bearer";
    if (authorization.size() <= scheme.size()) return std::nullopt;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) {
            return std::nullopt;
        }
    }
    std::string_view rest = authorization.substr(scheme.size());
    if (!is_space(rest.front())) return std::nullopt;  // "Bearerxyz" is another scheme
    while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    while (!rest.empty() && is_space(rest.back())) rest.remove_suffix(1);
    if (rest.empty()) return std::nullopt;
    return rest;
}

BearerToken::BearerToken(std::string_view token) : required_(!token.empty()) {
    if (required_) digest_ = sha256(token);
}

bool BearerToken::admits(const char* authorization) const {
    if (!required_) return true;
    if (!authorization) return false;
    const std::optional<std::string_view> offered = parse_bearer(authorization);
    if (!offered) return false;
    const std::optional<Digest> digest = sha256(*offered);
    if (!digest || !digest_) return false;
    return CRYPTO_memcmp(digest->data(), digest_->data(), digest->size()) == 0;
}

}  // namespace imgspool::upload
