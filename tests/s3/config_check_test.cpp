#include "store/s3/config_check.hpp"

#include <gtest/gtest.h>

namespace imgspool::s3 {
namespace {

S3Config good() {
    S3Config c;
    c.bucket = "imgspool-images";
    c.region = "eu-central-1";
    c.access_key_id = "AKIAIOSFODNN7EXAMPLE";
    c.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    return c;
}

std::string reason(const S3Config& c) {
    const Status s = validate_s3_config(c);
    return s ? "" : s.error().reason;
}

TEST(ConfigCheck, DefaultsWithBucketAndKeysAreValid) {
    EXPECT_TRUE(validate_s3_config(good()));
    S3Config minio = good();
    minio.endpoint = "http://127.0.0.1:9000";
    EXPECT_TRUE(validate_s3_config(minio));
}

TEST(ConfigCheck, TheConnectionPoolHasABoundedSize) {
    S3Config c = good();
    EXPECT_EQ(c.max_connections, 16);
    c.max_connections = 0;
    EXPECT_NE(reason(c).find("S3 max_connections must be between 1 and 256, not 0"),
              std::string::npos);
    c.max_connections = 257;
    EXPECT_NE(reason(c).find("not 257"), std::string::npos);
    c.max_connections = 1;
    EXPECT_TRUE(validate_s3_config(c));
}

TEST(ConfigCheck, EachProblemNamesTheSettingToFix) {
    S3Config c = good();
    c.bucket.clear();
    EXPECT_NE(reason(c).find("S3_BUCKET"), std::string::npos);
    c = good();
    c.bucket = "Bad_Bucket";
    EXPECT_NE(reason(c).find("invalid"), std::string::npos);
    c = good();
    c.region = "EU Central";
    EXPECT_NE(reason(c).find("S3_REGION"), std::string::npos);
    c = good();
    c.endpoint = "minio:9000";
    EXPECT_NE(reason(c).find("S3_ENDPOINT"), std::string::npos);
    c = good();
    c.access_key_id.clear();
    EXPECT_NE(reason(c).find("S3_ACCESS_KEY_ID"), std::string::npos);
    c = good();
    c.secret_access_key.clear();
    EXPECT_NE(reason(c).find("S3_SECRET_ACCESS_KEY"), std::string::npos);
    c = good();
    c.multipart_part_size = 1024;
    EXPECT_NE(reason(c).find("5 MiB"), std::string::npos);
    c = good();
    c.max_attempts = 0;
    EXPECT_NE(reason(c).find("max_attempts"), std::string::npos);
    c = good();
    c.parallel_uploads = 0;
    EXPECT_NE(reason(c).find("parallel_uploads"), std::string::npos);
    c = good();
    c.retry_max_delay_ms = 1;
    EXPECT_NE(reason(c).find("retry"), std::string::npos);
}

TEST(ConfigCheck, AThresholdBelowThePartSizeIsFine) {
    S3Config c = good();
    c.multipart_threshold = 5ull * 1024 * 1024;  // objects of 5..8 MiB go up as a single part
    EXPECT_TRUE(validate_s3_config(c));
}

TEST(ConfigCheck, ErrorsAreConfigStageAndHoldNoSecret) {
    S3Config c = good();
    c.parallel_uploads = 0;
    const Status s = validate_s3_config(c);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().stage, Stage::config);
    EXPECT_EQ(s.error().reason.find(c.secret_access_key), std::string::npos);
}

TEST(ConfigCheck, TheServiceChecksIgnoreTheBucketButNotTheRest) {
    S3Config c = good();
    c.bucket = "";
    EXPECT_FALSE(validate_s3_config(c));
    EXPECT_TRUE(validate_s3_service(c));
    c.access_key_id = "";
    const Status s = validate_s3_service(c);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().reason.find("access key id is not set"), std::string::npos)
        << s.error().reason;
}

TEST(ConfigCheck, BucketNamesFollowS3Rules) {
    EXPECT_TRUE(valid_bucket_name("imgspool-src"));
    EXPECT_TRUE(valid_bucket_name("a.b-c1"));
    EXPECT_FALSE(valid_bucket_name("ab"));
    EXPECT_FALSE(valid_bucket_name(std::string(64, 'a')));
    EXPECT_FALSE(valid_bucket_name("Upper-case"));
    EXPECT_FALSE(valid_bucket_name("-leading"));
    EXPECT_FALSE(valid_bucket_name("trailing."));
    EXPECT_FALSE(valid_bucket_name("has/slash"));
    EXPECT_FALSE(valid_bucket_name(""));
}

}  // namespace
}  // namespace imgspool::s3
