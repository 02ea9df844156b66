// What the store says without talking to a server: URLs, description, configuration errors.
#include "store/s3/s3_store.hpp"

#include <gtest/gtest.h>

namespace imgspool {
namespace {

S3Config config() {
    S3Config c;
    c.bucket = "imgspool-images";
    c.region = "eu-central-1";
    c.access_key_id = "AKIAIOSFODNN7EXAMPLE";
    c.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    c.session_token = "SessionTokenValue";
    return c;
}

TEST(S3Store, UrlIsTheCdnBaseWhenSet) {
    S3Store store(config(), "https://cdn.example.com/");
    EXPECT_EQ(store.url_for("images/u1/small.jpg"), "https://cdn.example.com/images/u1/small.jpg");
    EXPECT_EQ(store.url_for("images/u1/a b.jpg"), "https://cdn.example.com/images/u1/a%20b.jpg");
}

TEST(S3Store, UrlIsTheVirtualHostedObjectUrlOnAws) {
    S3Store store(config(), "");
    EXPECT_EQ(store.url_for("images/u1/small.jpg"),
              "https://imgspool-images.s3.eu-central-1.amazonaws.com/images/u1/small.jpg");
}

TEST(S3Store, UrlIsThePathStyleObjectUrlOnACustomEndpoint) {
    S3Config c = config();
    c.endpoint = "http://127.0.0.1:9000";
    S3Store store(c, "");
    EXPECT_EQ(store.url_for("images/u1/small.jpg"),
              "http://127.0.0.1:9000/imgspool-images/images/u1/small.jpg");
}

TEST(S3Store, DescribeNamesBucketAndPlaceButNoSecret) {
    S3Store aws(config(), "");
    EXPECT_EQ(aws.describe(), "s3:imgspool-images@eu-central-1");
    S3Config c = config();
    c.endpoint = "http://127.0.0.1:9000";
    const std::string text = S3Store(c, "").describe();
    EXPECT_EQ(text, "s3:imgspool-images@http://127.0.0.1:9000");
    EXPECT_EQ(text.find(c.secret_access_key), std::string::npos);
    EXPECT_EQ(text.find(c.session_token), std::string::npos);
}

TEST(S3Store, InvalidConfigFailsPutAndCheckWithTheReasonBeforeAnyRequest) {
    S3Config c = config();
    c.bucket.clear();
    S3Store store(c, "");
    const Status put = store.put_all({{"k.jpg", "image/jpeg", "x"}});
    ASSERT_FALSE(put);
    EXPECT_EQ(put.error().stage, Stage::store);
    EXPECT_NE(put.error().reason.find("S3_BUCKET"), std::string::npos);
    const Status checked = store.check();
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().reason.find("S3_BUCKET"), std::string::npos);
    EXPECT_EQ(store.retries(), 0u);
}

TEST(S3Store, NothingToStoreIsSuccess) {
    S3Store store(config(), "");
    EXPECT_TRUE(store.put_all({}));
}

}  // namespace
}  // namespace imgspool
