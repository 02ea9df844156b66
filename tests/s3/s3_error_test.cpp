#include "store/s3/s3_error.hpp"

#include <gtest/gtest.h>

namespace imgspool::s3 {
namespace {

TEST(S3Error, ParsesCodeMessageAndRequestId) {
    const auto e = parse_error_body(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>"
        "<Message>The specified bucket does not exist</Message><BucketName>b</BucketName>"
        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>abc</HostId></Error>");
    EXPECT_EQ(e.code, "NoSuchBucket");
    EXPECT_EQ(e.message, "The specified bucket does not exist");
    EXPECT_EQ(e.request_id, "4442587FB7D0A2F9");
}

TEST(S3Error, DecodesEntitiesInTheMessage) {
    const auto e = parse_error_body(
        "<Error><Code>InvalidArgument</Code><Message>a &lt;b&gt; &amp; &quot;c&quot;</Message>"
        "</Error>");
    EXPECT_EQ(e.message, "a <b> & \"c\"");
}

TEST(S3Error, NoErrorDocumentGivesEmptyFields) {
    const auto e = parse_error_body("<html>bad gateway</html>");
    EXPECT_TRUE(e.code.empty());
    EXPECT_TRUE(e.message.empty());
    EXPECT_FALSE(is_error_document("<CompleteMultipartUploadResult>"));
    EXPECT_TRUE(is_error_document("<?xml?>\n<Error><Code>InternalError</Code></Error>"));
}

TEST(S3Error, DescribesStatusCodeAndMessage) {
    EXPECT_EQ(describe_http_error(503, {"SlowDown", "Please reduce your request rate.", ""}),
              "HTTP 503 SlowDown: Please reduce your request rate.");
    EXPECT_EQ(describe_http_error(502, {}), "HTTP 502");
}

TEST(S3Error, CredentialProblemsPointAtTheCredentials) {
    const std::string text = describe_http_error(
        403, {"SignatureDoesNotMatch", "The request signature we calculated does not match", "R1"});
    EXPECT_EQ(text,
              "HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match "
              "(check the credentials (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) "
              "and the bucket policy) (request id R1)");
}

TEST(S3Error, RequestTimeTooSkewedIsAClockProblem) {
    const std::string text =
        describe_http_error(403, {"RequestTimeTooSkewed", "The difference ... is too large.", ""});
    EXPECT_NE(text.find("clock problem"), std::string::npos) << text;
    EXPECT_NE(text.find("NTP"), std::string::npos) << text;
}

TEST(S3Error, BodilessAnswersGetTheCodeTheStatusMeans) {
    EXPECT_EQ(code_for_status(404, true), "NoSuchBucket");
    EXPECT_EQ(code_for_status(404, false), "NoSuchKey");
    EXPECT_EQ(code_for_status(403, true), "AccessDenied");
    EXPECT_EQ(code_for_status(301, true), "PermanentRedirect");
    EXPECT_EQ(code_for_status(500, true), "");
    EXPECT_NE(describe_http_error(404, {"NoSuchBucket", "", ""}).find("S3_BUCKET"),
              std::string::npos);
    EXPECT_NE(describe_http_error(301, {"PermanentRedirect", "", ""}).find("S3_REGION"),
              std::string::npos);
}

}  // namespace
}  // namespace imgspool::s3
