#include "store/s3/redact.hpp"

#include <gtest/gtest.h>

namespace imgspool::s3 {
namespace {

TEST(Redact, MasksTheSecretKeyAndTheSessionTokenEverywhere) {
    const Credentials c{"AKIAEXAMPLE", "s3cr3t/KEY+x", "tok3n"};
    EXPECT_EQ(redact("key s3cr3t/KEY+x and s3cr3t/KEY+x, token tok3n, id AKIAEXAMPLE", c),
              "key [redacted] and [redacted], token [redacted], id AKIAEXAMPLE");
}

TEST(Redact, EmptySecretsChangeNothing) {
    EXPECT_EQ(redact("nothing to hide", Credentials{"AKIA", "", ""}), "nothing to hide");
}

TEST(Redact, ASecretContainingTheMaskDoesNotLoop) {
    EXPECT_EQ(redact("x[redacted]x", Credentials{"", "[redacted]", ""}), "x[redacted]x");
}

}  // namespace
}  // namespace imgspool::s3
