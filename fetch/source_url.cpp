#include "fetch/source_url.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace imgspool::fetch {

namespace {

struct CurlUrlDeleter {
    void operator()(CURLU* h) const { curl_url_cleanup(h); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

struct CurlStringDeleter {
    void operator()(char* s) const { curl_free(s); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

// One part of a parsed URL; nullopt-like empty string plus the curl code.
CURLUcode get_part(CURLU* url, CURLUPart part, unsigned flags, std::string& out) {
    char* raw = nullptr;
    const CURLUcode rc = curl_url_get(url, part, &raw, flags);
    const CurlString owned(raw);
    out = rc == CURLUE_OK && owned ? std::string(owned.get()) : std::string();
    return rc;
}

Error invalid(std::string_view text, const std::string& why) {
    return make_error(Stage::validate, "source " + url_for_reason(text) + ": " + why);
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) == b;
           });
}

// S3 bucket naming rules (3..63 bytes of a-z 0-9 . -, letters or digits at both ends): a bucket
// becomes part of a host name on virtual-hosted endpoints, so nothing else may pass.
bool valid_bucket_name(std::string_view name) {
    if (name.size() < 3 || name.size() > 63) return false;
    const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(name.front()) || !alnum(name.back())) return false;
    return std::all_of(name.begin(), name.end(),
                       [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

Result<SourceUrl> parse_s3(std::string_view text) {
    const std::string_view rest = text.substr(5);
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash + 1 == rest.size()) {
        return invalid(text, "an s3:// source needs a key (s3://bucket/key)");
    }
    SourceUrl url;
    url.kind = SourceUrl::Kind::s3;
    url.text = std::string(text);
    url.bucket = std::string(rest.substr(0, slash));
    url.key = std::string(rest.substr(slash + 1));
    if (!valid_bucket_name(url.bucket)) {
        return invalid(text, "\"" + url.bucket + "\" is not an S3 bucket name");
    }
    return url;
}

}  // namespace

std::string url_for_reason(std::string_view text) {
    text = text.substr(0, std::min(text.find('?'), text.find('#')));
    std::string out(text);
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) return out;
    const std::size_t host_start = scheme_end + 3;
    const std::string_view authority =
        text.substr(host_start, text.find('/', host_start) - host_start);
    const auto at = authority.rfind('@');
    if (at != std::string_view::npos) out.erase(host_start, at + 1);  // user:password@
    return out;
}

Result<SourceUrl> parse_source_url(std::string_view text) {
    if (text.size() > kMaxUrlBytes) {
        return make_error(Stage::validate, "source URL is longer than 8 KiB");
    }
    if (starts_with_nocase(text, "s3://")) return parse_s3(text);

    const CurlUrl handle(curl_url());
    if (!handle) return make_error(Stage::internal, "curl_url: out of memory");
    const std::string input(text);
    const CURLUcode set = curl_url_set(handle.get(), CURLUPART_URL, input.c_str(), 0);
    if (set != CURLUE_OK) return invalid(text, curl_url_strerror(set));

    std::string scheme;
    (void)get_part(handle.get(), CURLUPART_SCHEME, 0, scheme);
    SourceUrl url;
    if (scheme == "http") {
        url.kind = SourceUrl::Kind::http;
    } else if (scheme == "https") {
        url.kind = SourceUrl::Kind::https;
    } else {
        return invalid(text, "only http://, https:// and s3:// sources are fetched");
    }
    std::string user;
    std::string password;
    const bool has_user = get_part(handle.get(), CURLUPART_USER, 0, user) == CURLUE_OK;
    const bool has_password = get_part(handle.get(), CURLUPART_PASSWORD, 0, password) == CURLUE_OK;
    if (has_user || has_password) return invalid(text, "credentials in URLs are not sent");

    if (get_part(handle.get(), CURLUPART_HOST, 0, url.host) != CURLUE_OK || url.host.empty()) {
        return invalid(text, "no host");
    }
    if (url.host.front() == '[' && url.host.back() == ']') {
        url.host = url.host.substr(1, url.host.size() - 2);
    }
    for (char& c : url.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (url.host.size() > 1 && url.host.back() == '.') url.host.pop_back();

    std::string port;
    if (get_part(handle.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT, port) != CURLUE_OK) {
        return invalid(text, "no port");
    }
    url.port = std::stoi(port);
    if (get_part(handle.get(), CURLUPART_URL, 0, url.text) != CURLUE_OK) {
        return invalid(text, "cannot be written back");
    }
    return url;
}

}  // namespace imgspool::fetch
