#include "store/s3/redact.hpp"

namespace imgspool::s3 {

namespace {

void replace_all(std::string& text, const std::string& secret) {
    if (secret.empty()) return;
    static const std::string kMask = "[redacted]";
    for (auto pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos + kMask.size())) {
        text.replace(pos, secret.size(), kMask);
    }
}

}  // namespace

std::string redact(std::string text, const Credentials& credentials) {
    replace_all(text, credentials.secret_access_key);
    replace_all(text, credentials.session_token);
    return text;
}

}  // namespace imgspool::s3
