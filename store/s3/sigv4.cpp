#include "store/s3/sigv4.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

#include "store/s3/digest.hpp"

namespace imgspool::s3 {

namespace {

bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

std::string uri_encode(std::string_view text, bool keep_slash) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (unreserved(c) || (keep_slash && c == '/')) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 0x0f];
        }
    }
    return out;
}

std::string canonical_uri(std::string_view path) {
    if (path.empty()) return "/";
    return uri_encode(path, true);
}

std::string canonical_query(const NameValues& query) {
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(query.size());
    for (const auto& [name, value] : query) {
        encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
    }
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto& [name, value] : encoded) {
        if (!out.empty()) out += '&';
        out += name;
        out += '=';
        out += value;
    }
    return out;
}

std::string trim_header_value(std::string_view value) {
    const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
    while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (is_space(c)) {
            if (out.back() != ' ') out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

CanonicalHeaders canonical_headers(const NameValues& headers) {
    std::map<std::string, std::string> merged;  // sorted by lower-case name
    for (const auto& [name, value] : headers) {
        std::string& slot = merged[lower(name)];
        if (!slot.empty()) slot += ',';
        slot += trim_header_value(value);
    }
    CanonicalHeaders out;
    for (const auto& [name, value] : merged) {
        out.block += name + ':' + value + '\n';
        if (!out.signed_headers.empty()) out.signed_headers += ';';
        out.signed_headers += name;
    }
    return out;
}

std::string canonical_request(const SigningInput& input) {
    const CanonicalHeaders headers = canonical_headers(input.headers);
    return input.method + '\n' + canonical_uri(input.path) + '\n' + canonical_query(input.query) +
           '\n' + headers.block + '\n' + headers.signed_headers + '\n' + input.payload_sha256;
}

std::string credential_scope(std::string_view amz_date, const Scope& scope) {
    return std::string(amz_date.substr(0, 8)) + '/' + scope.region + '/' + scope.service +
           "/aws4_request";
}

std::string string_to_sign(std::string_view amz_date, const Scope& scope,
                           std::string_view canonical_request) {
    return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + '\n' + credential_scope(amz_date, scope) +
           '\n' + sha256_hex(canonical_request);
}

std::string signing_key(std::string_view secret_access_key, std::string_view amz_date,
                        const Scope& scope) {
    const std::string date_key =
        hmac_sha256("AWS4" + std::string(secret_access_key), amz_date.substr(0, 8));
    const std::string region_key = hmac_sha256(date_key, scope.region);
    const std::string service_key = hmac_sha256(region_key, scope.service);
    return hmac_sha256(service_key, "aws4_request");
}

std::string amz_date(std::chrono::system_clock::time_point when) {
    const std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[20];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::string sign(SigningInput& input, const Credentials& credentials, const Scope& scope,
                 std::string_view amz_date) {
    input.headers.emplace_back("X-Amz-Date", std::string(amz_date));
    if (!credentials.session_token.empty()) {
        input.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
    }
    const std::string to_sign = string_to_sign(amz_date, scope, canonical_request(input));
    const std::string signature =
        hex(hmac_sha256(signing_key(credentials.secret_access_key, amz_date, scope), to_sign));
    return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + '/' +
           credential_scope(amz_date, scope) +
           ", SignedHeaders=" + canonical_headers(input.headers).signed_headers +
           ", Signature=" + signature;
}

}  // namespace imgspool::s3
