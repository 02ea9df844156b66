#include "store/s3/digest.hpp"

#include <gtest/gtest.h>

namespace imgspool::s3 {
namespace {

TEST(Digest, Sha256OfKnownInputs) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, HmacSha256Rfc4231Case2) {
    EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Digest, Md5Base64IsTheContentMd5Form) {
    EXPECT_EQ(md5_base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
    EXPECT_EQ(md5_base64("Welcome to Amazon S3."), "1EfQ6PKJ8WoS/2AnznfCWA==");
}

TEST(Digest, HexIsLowerCase) {
    EXPECT_EQ(hex(std::string("\x00\xff\x1a", 3)), "00ff1a");
}

}  // namespace
}  // namespace imgspool::s3
