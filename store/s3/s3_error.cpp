#include "store/s3/s3_error.hpp"

#include "store/s3/xml_text.hpp"

namespace imgspool::s3 {

S3ErrorBody parse_error_body(std::string_view xml) {
    const auto error_start = xml.find("<Error>");
    if (error_start == std::string_view::npos) return {};
    const std::string_view error = xml.substr(error_start);
    return S3ErrorBody{xml_tag_text(error, "Code").value_or(""),
                       xml_tag_text(error, "Message").value_or(""),
                       xml_tag_text(error, "RequestId").value_or("")};
}

bool is_error_document(std::string_view body) {
    return body.find("<Error>") != std::string_view::npos;
}

std::string code_for_status(long status, bool bucket_request) {
    switch (status) {
        case 301:
            return "PermanentRedirect";
        case 403:
            return "AccessDenied";
        case 404:
            return bucket_request ? "NoSuchBucket" : "NoSuchKey";
        default:
            return {};
    }
}

namespace {

std::string hint_for(const std::string& code) {
    if (code == "AccessDenied" || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" ||
        code == "ExpiredToken" || code == "InvalidToken") {
        return "check the credentials (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) "
               "and the bucket policy";
    }
    if (code == "NoSuchBucket") return "create the bucket or fix S3_BUCKET";
    if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed") {
        return "the bucket is in another region: fix S3_REGION";
    }
    if (code == "RequestTimeTooSkewed") {
        return "clock problem: this machine's clock differs from the server's by more than 15 "
               "minutes; synchronise it, e.g. with NTP";
    }
    return {};
}

}  // namespace

std::string describe_http_error(long status, const S3ErrorBody& error) {
    std::string out = "HTTP " + std::to_string(status);
    if (!error.code.empty()) out += " " + error.code;
    if (!error.message.empty()) out += ": " + error.message;
    if (const std::string hint = hint_for(error.code); !hint.empty()) out += " (" + hint + ")";
    if (!error.request_id.empty()) out += " (request id " + error.request_id + ")";
    return out;
}

}  // namespace imgspool::s3
