// What an S3 error answer says, in words an operator can act on.
#pragma once

#include <string>
#include <string_view>

namespace imgspool::s3 {

// The fields of S3's XML error body (<Error><Code>...</Code><Message>...</Message>...).
struct S3ErrorBody {
    std::string code;        // "SignatureDoesNotMatch"; empty when the answer had no body (HEAD)
    std::string message;     // "The request signature we calculated does not match..."
    std::string request_id;  // for AWS support
};

S3ErrorBody parse_error_body(std::string_view xml);

// True when a 2xx answer still carries an <Error> document (CompleteMultipartUpload does that).
bool is_error_document(std::string_view body);

// The error code S3 means by a status when the answer had no body (HEAD): 403 AccessDenied,
// 404 NoSuchBucket (bucket requests) or NoSuchKey, 301 PermanentRedirect, else "".
std::string code_for_status(long status, bool bucket_request);

// "HTTP 403 SignatureDoesNotMatch: The request signature ... (request id 4442587FB7D0A2F9)".
// Codes an operator can fix get a hint: credentials for AccessDenied/SignatureDoesNotMatch/
// InvalidAccessKeyId, the bucket setting for NoSuchBucket, the region for PermanentRedirect, and
// RequestTimeTooSkewed is reported as a clock problem.
std::string describe_http_error(long status, const S3ErrorBody& error);

}  // namespace imgspool::s3
