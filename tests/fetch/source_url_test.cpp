#include "fetch/source_url.hpp"

#include <gtest/gtest.h>

namespace imgspool::fetch {
namespace {

TEST(SourceUrl, HttpAndHttpsWithDefaultAndExplicitPorts) {
    auto u = parse_source_url("https://Images.Example.COM./a/b.jpg?x=1");
    ASSERT_TRUE(u.ok()) << u.error().reason;
    EXPECT_EQ(u->kind, SourceUrl::Kind::https);
    EXPECT_EQ(u->host, "images.example.com");
    EXPECT_EQ(u->port, 443);
    EXPECT_NE(u->text.find("/a/b.jpg?x=1"), std::string::npos) << u->text;

    u = parse_source_url("HTTP://127.0.0.1:8080/img/photo.jpg");
    ASSERT_TRUE(u.ok()) << u.error().reason;
    EXPECT_EQ(u->kind, SourceUrl::Kind::http);
    EXPECT_EQ(u->host, "127.0.0.1");
    EXPECT_EQ(u->port, 8080);
    EXPECT_EQ(u->text, "http://127.0.0.1:8080/img/photo.jpg");

    u = parse_source_url("http://example.com");
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->port, 80);
    EXPECT_TRUE(u->bucket.empty());
}

TEST(SourceUrl, Ipv6LiteralsLoseTheirBrackets) {
    auto u = parse_source_url("http://[::1]:81/x");
    ASSERT_TRUE(u.ok()) << u.error().reason;
    EXPECT_EQ(u->host, "::1");
    EXPECT_EQ(u->port, 81);
    u = parse_source_url("http://[::ffff:127.0.0.1]/x");
    ASSERT_TRUE(u.ok()) << u.error().reason;
    EXPECT_EQ(u->host, "::ffff:127.0.0.1");
}

TEST(SourceUrl, S3IsSplitByHand) {
    auto u = parse_source_url("s3://my-bucket/renders/2026/a b+c.png");
    ASSERT_TRUE(u.ok()) << u.error().reason;
    EXPECT_EQ(u->kind, SourceUrl::Kind::s3);
    EXPECT_EQ(u->bucket, "my-bucket");
    EXPECT_EQ(u->key, "renders/2026/a b+c.png");
    EXPECT_TRUE(u->host.empty());
    EXPECT_EQ(u->port, 0);

    for (const char* bad : {"s3://bucket", "s3://bucket/", "s3:///key", "s3://Bad_Bucket/k",
                            "s3://ab/k", "s3://-bucket/k", "s3://evil.com#/k"}) {
        auto e = parse_source_url(bad);
        ASSERT_FALSE(e.ok()) << bad;
        EXPECT_EQ(e.error().stage, Stage::validate) << bad;
    }
}

TEST(SourceUrl, RefusesOtherSchemesCredentialsAndJunk) {
    const std::pair<const char*, const char*> cases[] = {
        {"ftp://example.com/x.jpg", "only http://, https:// and s3:// sources are fetched"},
        {"file:///etc/passwd", "only http://, https:// and s3:// sources are fetched"},
        {"gopher://127.0.0.1:6379/_FLUSHALL", "only http://, https:// and s3:// sources"},
        {"http://user:secret@example.com/x.jpg", "credentials in URLs are not sent"},
        {"http://user@example.com/x.jpg", "credentials in URLs are not sent"},
        {"example.com/x.jpg", ""},
        {"http://", ""},
        {"http://exa mple.com/", ""},
        {"", ""},
    };
    for (const auto& [text, why] : cases) {
        auto u = parse_source_url(text);
        ASSERT_FALSE(u.ok()) << text;
        EXPECT_EQ(u.error().stage, Stage::validate);
        EXPECT_NE(u.error().reason.find(why), std::string::npos) << u.error().reason;
    }
    // The password never reaches a reason.
    auto u = parse_source_url("http://user:secret@example.com/x.jpg?token=t0k");
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.error().reason.find("secret"), std::string::npos) << u.error().reason;
    EXPECT_EQ(u.error().reason.find("t0k"), std::string::npos) << u.error().reason;
}

TEST(SourceUrl, OverlongInputIsRefused) {
    const std::string at_limit = "http://example.com/" + std::string(kMaxUrlBytes - 19, 'a');
    ASSERT_EQ(at_limit.size(), kMaxUrlBytes);
    EXPECT_TRUE(parse_source_url(at_limit).ok());
    auto u = parse_source_url(at_limit + "a");
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.error().reason, "source URL is longer than 8 KiB");
}

TEST(SourceUrl, ReasonsDropQueryFragmentAndUserinfo) {
    EXPECT_EQ(url_for_reason("https://h.example/a.jpg?sig=abc#f"), "https://h.example/a.jpg");
    EXPECT_EQ(url_for_reason("http://u:p@h.example:81/x"), "http://h.example:81/x");
    EXPECT_EQ(url_for_reason("http://h.example/a@b"), "http://h.example/a@b");
    EXPECT_EQ(url_for_reason("s3://bucket/key"), "s3://bucket/key");
}

}  // namespace
}  // namespace imgspool::fetch
