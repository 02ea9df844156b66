#include "store/s3/s3_url.hpp"

#include <gtest/gtest.h>

namespace imgspool::s3 {
namespace {

S3Config aws(std::string bucket = "my-images", std::string region = "eu-west-1") {
    S3Config c;
    c.bucket = std::move(bucket);
    c.region = std::move(region);
    return c;
}

TEST(S3Url, AwsUsesVirtualHostedStyle) {
    const Endpoint e = endpoint_for(aws());
    EXPECT_EQ(e.origin, "https://my-images.s3.eu-west-1.amazonaws.com");
    EXPECT_EQ(e.host, "my-images.s3.eu-west-1.amazonaws.com");
    const Target t = target_for(e, "images/u1/small.jpg");
    EXPECT_EQ(t.url, "https://my-images.s3.eu-west-1.amazonaws.com/images/u1/small.jpg");
    EXPECT_EQ(t.path, "/images/u1/small.jpg");
    EXPECT_EQ(target_for(e, "").path, "/");
}

TEST(S3Url, CustomEndpointUsesPathStyle) {
    S3Config c = aws();
    c.endpoint = "http://127.0.0.1:9000/";
    const Endpoint e = endpoint_for(c);
    EXPECT_EQ(e.host, "127.0.0.1:9000");
    const Target t = target_for(e, "images/u1/small.jpg");
    EXPECT_EQ(t.url, "http://127.0.0.1:9000/my-images/images/u1/small.jpg");
    EXPECT_EQ(t.host, "127.0.0.1:9000");
    EXPECT_EQ(t.path, "/my-images/images/u1/small.jpg");
    EXPECT_EQ(target_for(e, "").url, "http://127.0.0.1:9000/my-images");
}

TEST(S3Url, KeysAreEncodedOnceInTheUrlAndKeptDecodedForSigning) {
    S3Config c = aws();
    c.endpoint = "https://minio.example.com";
    const Target t = target_for(endpoint_for(c), "a b/caf\xC3\xA9+1.jpg");
    EXPECT_EQ(t.url, "https://minio.example.com/my-images/a%20b/caf%C3%A9%2B1.jpg");
    EXPECT_EQ(t.path, "/my-images/a b/caf\xC3\xA9+1.jpg");
}

TEST(S3Url, QueryIsCanonicalInTheUrl) {
    const Target t =
        target_for(endpoint_for(aws()), "k.jpg", {{"uploadId", "x/y"}, {"partNumber", "2"}});
    EXPECT_EQ(t.url,
              "https://my-images.s3.eu-west-1.amazonaws.com/k.jpg?partNumber=2&uploadId=x%2Fy");
    EXPECT_EQ(target_for(endpoint_for(aws()), "k.jpg", {{"uploads", ""}}).url,
              "https://my-images.s3.eu-west-1.amazonaws.com/k.jpg?uploads=");
}

TEST(S3Url, EndpointHostAcceptsOnlySchemeHostPort) {
    EXPECT_EQ(endpoint_host("http://localhost:9000"), "localhost:9000");
    EXPECT_EQ(endpoint_host("https://s3.example.com/"), "s3.example.com");
    EXPECT_EQ(endpoint_host("s3.example.com"), "");
    EXPECT_EQ(endpoint_host("ftp://s3.example.com"), "");
    EXPECT_EQ(endpoint_host("http://user:pw@host"), "");
    EXPECT_EQ(endpoint_host("http://host/prefix"), "");
    EXPECT_EQ(endpoint_host("http://"), "");
}

TEST(S3Url, ObjectUrlHasNoQuery) {
    EXPECT_EQ(object_url(endpoint_for(aws()), "images/x/small.jpg"),
              "https://my-images.s3.eu-west-1.amazonaws.com/images/x/small.jpg");
}

TEST(S3Url, AnotherBucketKeepsTheServiceAndAddressingStyle) {
    S3Config c = aws();
    c.endpoint = "http://127.0.0.1:9000/";
    const Target path_style = target_for(endpoint_for(c, "src-bucket"), "in/a b.jpg");
    EXPECT_EQ(path_style.url, "http://127.0.0.1:9000/src-bucket/in/a%20b.jpg");
    EXPECT_EQ(path_style.host, "127.0.0.1:9000");
    EXPECT_EQ(path_style.path, "/src-bucket/in/a b.jpg");

    const Target hosted = target_for(endpoint_for(aws(), "src-bucket"), "in/a.jpg");
    EXPECT_EQ(hosted.url, "https://src-bucket.s3.eu-west-1.amazonaws.com/in/a.jpg");
    EXPECT_EQ(hosted.host, "src-bucket.s3.eu-west-1.amazonaws.com");
    EXPECT_EQ(hosted.path, "/in/a.jpg");
}

TEST(S3Url, TheConfigBucketIsTheDefaultBucket) {
    S3Config c = aws();
    c.endpoint = "http://127.0.0.1:9000";
    const Endpoint own = endpoint_for(c);
    const Endpoint named = endpoint_for(c, c.bucket);
    EXPECT_EQ(own.origin, named.origin);
    EXPECT_EQ(own.host, named.host);
    EXPECT_EQ(own.path_prefix, named.path_prefix);
    EXPECT_EQ(endpoint_for(aws()).host, endpoint_for(aws(), "my-images").host);
}

TEST(S3Url, S3UriNamesBucketAndKey) {
    EXPECT_EQ(s3_uri("src-bucket", "in/a b.jpg"), "s3://src-bucket/in/a b.jpg");
    EXPECT_EQ(s3_uri("b", ""), "s3://b/");
}

}  // namespace
}  // namespace imgspool::s3
