// The signer against AWS's published SigV4 examples: the AWS signing test suite
// (awslabs/aws-c-auth tests/aws-signing-test-suite/v4, header-signed variants) and the worked
// examples of the S3 REST API reference ("Signature Calculations for the Authorization Header").
#include "store/s3/sigv4.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "store/s3/digest.hpp"

namespace imgspool::s3 {
namespace {

constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// --- AWS signing test suite: context.json of every v4 case --------------------------------------
const Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const Scope kSuiteScope{"us-east-1", "service"};
constexpr const char* kSuiteDate = "20150830T123600Z";

std::string suite_authorization(std::string_view signed_headers, std::string_view signature) {
    return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=" +
           std::string(signed_headers) + ", Signature=" + std::string(signature);
}

SigningInput suite_get(std::string path, NameValues query = {}) {
    return SigningInput{"GET",
                        std::move(path),
                        std::move(query),
                        {{"Host", "example.amazonaws.com"}},
                        kEmptySha256};
}

TEST(SigV4Suite, GetVanillaCanonicalRequestAndStringToSign) {
    SigningInput in = suite_get("/");
    const std::string auth = sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate);
    const std::string creq = canonical_request(in);
    EXPECT_EQ(creq,
              "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
              "host;x-amz-date\n" +
                  std::string(kEmptySha256));
    EXPECT_EQ(string_to_sign(kSuiteDate, kSuiteScope, creq),
              "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
              "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    EXPECT_EQ(auth, suite_authorization(
                        "host;x-amz-date",
                        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
}

TEST(SigV4Suite, GetVanillaQueryOrderKeyCase) {
    SigningInput in = suite_get("/", {{"Param2", "value2"}, {"Param1", "value1"}});
    EXPECT_EQ(canonical_query(in.query), "Param1=value1&Param2=value2");
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date",
                            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
}

TEST(SigV4Suite, GetVanillaEmptyQueryKey) {
    SigningInput in = suite_get("/", {{"Param1", "value1"}});
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date",
                            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"));
}

TEST(SigV4Suite, GetUnreservedPathIsNotEncoded) {
    const std::string unreserved =
        "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    SigningInput in = suite_get("/" + unreserved);
    EXPECT_EQ(canonical_uri(in.path), "/" + unreserved);
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date",
                            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"));
}

TEST(SigV4Suite, GetVanillaQueryUnreserved) {
    const std::string unreserved =
        "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    SigningInput in = suite_get("/", {{unreserved, unreserved}});
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date",
                            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"));
}

TEST(SigV4Suite, GetUtf8Path) {
    SigningInput in = suite_get("/\xE1\x88\xB4");  // U+1234
    EXPECT_EQ(canonical_uri(in.path), "/%E1%88%B4");
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date",
                            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"));
}

TEST(SigV4Suite, GetVanillaUtf8Query) {
    SigningInput in = suite_get("/", {{"\xE1\x88\xB4", "bar"}});
    EXPECT_EQ(canonical_query(in.query), "%E1%88%B4=bar");
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date",
                            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"));
}

TEST(SigV4Suite, GetSpaceUnnormalizedEncodesTheSpaceOnce) {
    SigningInput in = suite_get("/example space/");
    EXPECT_EQ(canonical_uri(in.path), "/example%20space/");
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date",
                            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"));
}

TEST(SigV4Suite, GetSlashesUnnormalizedKeepsEmptySegments) {
    SigningInput in = suite_get("//example//");
    EXPECT_EQ(canonical_uri(in.path), "//example//");
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date",
                            "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5"));
}

TEST(SigV4Suite, GetHeaderValueTrim) {
    SigningInput in = suite_get("/");
    in.headers.emplace_back("My-Header1", " value1");
    in.headers.emplace_back("My-Header2", " \"a   b   c\"");
    const std::string auth = sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate);
    EXPECT_EQ(canonical_headers(in.headers).block,
              "host:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
              "x-amz-date:20150830T123600Z\n");
    EXPECT_EQ(auth, suite_authorization(
                        "host;my-header1;my-header2;x-amz-date",
                        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"));
}

TEST(SigV4Suite, GetHeaderValueOrderKeepsRepeatedValuesInOrder) {
    SigningInput in = suite_get("/");
    for (const char* v : {"value4", "value1", "value3", "value2"}) {
        in.headers.emplace_back("My-Header1", v);
    }
    const std::string auth = sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate);
    EXPECT_NE(canonical_headers(in.headers).block.find("my-header1:value4,value1,value3,value2\n"),
              std::string::npos);
    EXPECT_EQ(auth, suite_authorization(
                        "host;my-header1;x-amz-date",
                        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"));
}

TEST(SigV4Suite, GetVanillaWithSessionToken) {
    Credentials creds = kSuiteCredentials;
    creds.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    SigningInput in = suite_get("/");
    EXPECT_EQ(
        sign(in, creds, kSuiteScope, kSuiteDate),
        suite_authorization("host;x-amz-date;x-amz-security-token",
                            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"));
    EXPECT_EQ(in.headers.back().first, "X-Amz-Security-Token");
    EXPECT_EQ(in.headers.back().second, creds.session_token);
}

TEST(SigV4Suite, PostXWwwFormUrlencodedSignsThePayloadHash) {
    const std::string body = "Param1=value1";
    EXPECT_EQ(sha256_hex(body), "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    SigningInput in{"POST",
                    "/",
                    {},
                    {{"Content-Type", "application/x-www-form-urlencoded"},
                     {"Host", "example.amazonaws.com"},
                     {"Content-Length", "13"},
                     {"x-amz-content-sha256", sha256_hex(body)}},
                    sha256_hex(body)};
    EXPECT_EQ(
        sign(in, kSuiteCredentials, kSuiteScope, kSuiteDate),
        suite_authorization("content-length;content-type;host;x-amz-content-sha256;x-amz-date",
                            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"));
}

// --- S3 REST API reference, "Examples: Signature Calculations" ----------------------------------
const Credentials kS3Credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                 ""};
const Scope kS3Scope{"us-east-1", "s3"};
constexpr const char* kS3Date = "20130524T000000Z";
constexpr const char* kS3Host = "examplebucket.s3.amazonaws.com";

std::string s3_authorization(std::string_view signed_headers, std::string_view signature) {
    return "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
           "SignedHeaders=" +
           std::string(signed_headers) + ", Signature=" + std::string(signature);
}

TEST(SigV4S3Examples, GetObjectWithRange) {
    SigningInput in{
        "GET",
        "/test.txt",
        {},
        {{"Host", kS3Host}, {"Range", "bytes=0-9"}, {"x-amz-content-sha256", kEmptySha256}},
        kEmptySha256};
    const std::string auth = sign(in, kS3Credentials, kS3Scope, kS3Date);
    const std::string creq = canonical_request(in);
    EXPECT_EQ(
        creq,
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        "\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(string_to_sign(kS3Date, kS3Scope, creq),
              "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
              "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    EXPECT_EQ(auth,
              s3_authorization("host;range;x-amz-content-sha256;x-amz-date",
                               "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
}

TEST(SigV4S3Examples, PutObjectWithReservedCharacterInKey) {
    const std::string body = "Welcome to Amazon S3.";
    const std::string payload = sha256_hex(body);
    EXPECT_EQ(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    SigningInput in{"PUT",
                    "/test$file.text",
                    {},
                    {{"Host", kS3Host},
                     {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                     {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                     {"x-amz-content-sha256", payload}},
                    payload};
    const std::string auth = sign(in, kS3Credentials, kS3Scope, kS3Date);
    const std::string creq = canonical_request(in);
    EXPECT_EQ(
        creq,
        "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
        "host:examplebucket.s3.amazonaws.com\n"
        "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        "\nx-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    EXPECT_EQ(string_to_sign(kS3Date, kS3Scope, creq),
              "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
              "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
    EXPECT_EQ(auth,
              s3_authorization("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                               "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
}

TEST(SigV4S3Examples, GetBucketLifecycleSubresourceWithEmptyValue) {
    SigningInput in{"GET",
                    "/",
                    {{"lifecycle", ""}},
                    {{"Host", kS3Host}, {"x-amz-content-sha256", kEmptySha256}},
                    kEmptySha256};
    const std::string auth = sign(in, kS3Credentials, kS3Scope, kS3Date);
    const std::string creq = canonical_request(in);
    EXPECT_EQ(creq.substr(0, 17), "GET\n/\nlifecycle=\n");
    EXPECT_EQ(string_to_sign(kS3Date, kS3Scope, creq),
              "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
              "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
    EXPECT_EQ(auth,
              s3_authorization("host;x-amz-content-sha256;x-amz-date",
                               "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
}

TEST(SigV4S3Examples, ListObjectsWithQuery) {
    SigningInput in{"GET",
                    "/",
                    {{"prefix", "J"}, {"max-keys", "2"}},
                    {{"Host", kS3Host}, {"x-amz-content-sha256", kEmptySha256}},
                    kEmptySha256};
    const std::string auth = sign(in, kS3Credentials, kS3Scope, kS3Date);
    const std::string creq = canonical_request(in);
    EXPECT_EQ(creq.substr(0, 26), "GET\n/\nmax-keys=2&prefix=J\n");
    EXPECT_EQ(string_to_sign(kS3Date, kS3Scope, creq),
              "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
              "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
    EXPECT_EQ(auth,
              s3_authorization("host;x-amz-content-sha256;x-amz-date",
                               "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

// --- Encoding rules used for object keys --------------------------------------------------------

TEST(SigV4Encoding, KeysWithSpacesUnicodeAndReservedCharacters) {
    EXPECT_EQ(canonical_uri("/bucket/images/a b/small.jpg"), "/bucket/images/a%20b/small.jpg");
    EXPECT_EQ(canonical_uri("/bucket/caf\xC3\xA9.jpg"), "/bucket/caf%C3%A9.jpg");
    EXPECT_EQ(canonical_uri("/b/k+=&?#%:@!$'()*,;"),
              "/b/k%2B%3D%26%3F%23%25%3A%40%21%24%27%28%29%2A%2C%3B");
    // Already-encoded text is encoded again: the signer takes decoded paths only.
    EXPECT_EQ(canonical_uri("/a%20b"), "/a%2520b");
    EXPECT_EQ(canonical_uri(""), "/");
}

TEST(SigV4Encoding, QueryEncodesSlashAndSortsByEncodedName) {
    EXPECT_EQ(canonical_query({{"uploadId", "a/b c"}, {"partNumber", "2"}}),
              "partNumber=2&uploadId=a%2Fb%20c");
    EXPECT_EQ(canonical_query({{"uploads", ""}}), "uploads=");
    EXPECT_EQ(canonical_query({}), "");
}

TEST(SigV4Encoding, TrimCollapsesInnerSpaceRuns) {
    EXPECT_EQ(trim_header_value("  a   b \t"), "a b");
    EXPECT_EQ(trim_header_value(""), "");
}

TEST(SigV4Clock, AmzDateIsUtcBasicFormat) {
    using namespace std::chrono;
    const sys_seconds t = sys_days{2013y / May / 24} + 0h;
    EXPECT_EQ(amz_date(t), "20130524T000000Z");
    EXPECT_EQ(amz_date(sys_days{2015y / August / 30} + 12h + 36min), "20150830T123600Z");
}

}  // namespace
}  // namespace imgspool::s3
