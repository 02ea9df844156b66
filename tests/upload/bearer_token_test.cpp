#include "upload/bearer_token.hpp"

#include <gtest/gtest.h>

#include <string>

namespace imgspool::upload {
namespace {

TEST(ParseBearer, TakesTheTokenOfTheBearerScheme) {
    EXPECT_EQ(parse_bearer("Bearer abc.DEF-123_~+/="), "abc.DEF-123_~+/=");
    EXPECT_EQ(parse_bearer("bearer abc"), "abc");  // the scheme is case-insensitive
    EXPECT_EQ(parse_bearer("BEARER \t abc  "), "abc");
}

TEST(ParseBearer, RefusesOtherSchemesAndEmptyTokens) {
    EXPECT_EQ(parse_bearer(""), std::nullopt);
    EXPECT_EQ(parse_bearer("Bearer"), std::nullopt);
    EXPECT_EQ(parse_bearer("Bearer    "), std::nullopt);
    EXPECT_EQ(parse_bearer("Bearerabc"), std::nullopt);
    EXPECT_EQ(parse_bearer("Basic dXNlcjpwYXNz"), std::nullopt);
    EXPECT_EQ(parse_bearer("Token abc"), std::nullopt);
    EXPECT_EQ(parse_bearer(" Bearer abc"), std::nullopt);
}

TEST(BearerToken, NoTokenAdmitsEveryRequest) {
    const BearerToken open;
    EXPECT_FALSE(open.required());
    EXPECT_TRUE(open.admits(nullptr));
    EXPECT_TRUE(open.admits("Bearer anything"));
    const BearerToken empty("");
    EXPECT_FALSE(empty.required());
    EXPECT_TRUE(empty.admits(nullptr));
}

TEST(BearerToken, AdmitsOnlyTheConfiguredToken) {
    const BearerToken token("s3cret-token");
    EXPECT_TRUE(token.required());
    EXPECT_TRUE(token.admits("Bearer s3cret-token"));
    EXPECT_TRUE(token.admits("bearer s3cret-token"));
    EXPECT_FALSE(token.admits(nullptr));
    EXPECT_FALSE(token.admits(""));
    EXPECT_FALSE(token.admits("Bearer s3cret-toke"));    // a prefix
    EXPECT_FALSE(token.admits("Bearer s3cret-token2"));  // longer
    EXPECT_FALSE(token.admits("Bearer S3CRET-TOKEN"));   // tokens are case-sensitive
    EXPECT_FALSE(token.admits("Basic s3cret-token"));
    EXPECT_FALSE(token.admits("s3cret-token"));
}

TEST(BearerToken, TokensOfAnyLengthAndBytesWork) {
    const std::string long_token(4096, 'x');
    const BearerToken token(long_token);
    EXPECT_TRUE(token.admits(("Bearer " + long_token).c_str()));
    EXPECT_FALSE(token.admits(("Bearer " + long_token.substr(1)).c_str()));
    const BearerToken utf8("gr\xC3\xBC\xC3\x9F");
    EXPECT_TRUE(utf8.admits("Bearer gr\xC3\xBC\xC3\x9F"));
    EXPECT_FALSE(utf8.admits("Bearer gru\xC3\x9F"));
}

}  // namespace
}  // namespace imgspool::upload
