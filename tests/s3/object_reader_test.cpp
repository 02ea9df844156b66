// ObjectReader without a server: what fails before any connection (and so never starts the
// engine), and a stopped endpoint as a transient fetch failure.
#include "store/s3/object_reader.hpp"

#include <gtest/gtest.h>

#include "tests/s3/loopback_sockets.hpp"

namespace imgspool::s3 {
namespace {

using s3_test::LoopbackPort;

S3Config config_for(const std::string& endpoint) {
    S3Config c;  // no bucket: a reader names it per get
    c.endpoint = endpoint;
    c.access_key_id = "AKIAIMGSPOOLTEST0001";
    c.secret_access_key = "unitTestSecret/Key+0123456789abcdefghijKLMN";
    c.connect_timeout_ms = 1000;
    c.retry_base_delay_ms = 10;
    c.retry_max_delay_ms = 50;
    return c;
}

TEST(ObjectReader, AnInvalidBucketNameFailsForGoodWithoutAConnection) {
    ObjectReader reader(config_for("http://127.0.0.1:9"));
    const auto got = reader.get("Not_A_Bucket", "a.jpg", 1024);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().stage, Stage::fetch);
    EXPECT_FALSE(got.error().transient);
    EXPECT_EQ(got.error().reason.rfind("s3://Not_A_Bucket/a.jpg: ", 0), 0u) << got.error().reason;
    EXPECT_FALSE(reader.engine_started());
}

TEST(ObjectReader, AnEmptyKeyFailsForGood) {
    ObjectReader reader(config_for("http://127.0.0.1:9"));
    const auto got = reader.get("imgspool-src", "", 1024);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().stage, Stage::fetch);
    EXPECT_FALSE(got.error().transient);
    EXPECT_EQ(got.error().reason, "s3://imgspool-src/: the object key is empty");
    EXPECT_FALSE(reader.engine_started());
}

TEST(ObjectReader, AnInvalidConfigFailsForGoodWithTheSettingToFix) {
    S3Config config = config_for("http://127.0.0.1:9");
    config.secret_access_key = "";
    ObjectReader reader(config);
    const auto got = reader.get("imgspool-src", "a.jpg", 1024);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().stage, Stage::fetch);
    EXPECT_FALSE(got.error().transient);
    EXPECT_NE(got.error().reason.find("secret access key is not set"), std::string::npos)
        << got.error().reason;
    EXPECT_FALSE(reader.engine_started());
}

TEST(ObjectReader, AStoppedEndpointIsATransientFailureAfterTheRetries) {
    const LoopbackPort stopped(LoopbackPort::Mode::refuse);
    S3Config config = config_for(stopped.url());
    config.max_attempts = 2;
    ObjectReader reader(config);
    EXPECT_FALSE(reader.engine_started());
    const auto got = reader.get("imgspool-src", "in/a.jpg", 1024);
    ASSERT_FALSE(got);
    EXPECT_TRUE(reader.engine_started());
    EXPECT_EQ(got.error().stage, Stage::fetch);
    EXPECT_TRUE(got.error().transient) << got.error().reason;
    EXPECT_NE(got.error().reason.find("GET s3://imgspool-src/in/a.jpg: cannot reach the S3 "
                                      "endpoint " +
                                      stopped.url()),
              std::string::npos)
        << got.error().reason;
    EXPECT_NE(got.error().reason.find("(gave up after 2 attempts)"), std::string::npos)
        << got.error().reason;
    EXPECT_EQ(reader.retries(), 1u);
}

}  // namespace
}  // namespace imgspool::s3
