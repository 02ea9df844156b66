#include "store/s3/digest.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace imgspool::s3 {

namespace {

std::string digest(const EVP_MD* md, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
        throw std::runtime_error("OpenSSL digest failed");
    }
    return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 0x0f];
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    return hex(digest(EVP_sha256(), data));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
             &len) == nullptr) {
        throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
    }
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string md5_base64(std::string_view data) {
    const std::string raw = digest(EVP_md5(), data);
    std::string out(4 * ((raw.size() + 2) / 3), '\0');
    const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                    reinterpret_cast<const unsigned char*>(raw.data()),
                                    static_cast<int>(raw.size()));
    out.resize(static_cast<std::size_t>(len));
    return out;
}

}  // namespace imgspool::s3
