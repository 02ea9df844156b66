// [database] settings: ranges and the URL check, without echoing the URL.
#include "store/pg/database_settings.hpp"

#include <gtest/gtest.h>

namespace imgspool::pg {
namespace {

TEST(DatabaseSettings, DefaultsAreValidAndEmptyUrlMeansSqlite) {
    EXPECT_TRUE(validate(DatabaseSettings{}));
}

TEST(DatabaseSettings, PoolSizeIsZeroOrTwoToTwoHundredFiftySix) {
    for (int good : {0, 2, 256}) EXPECT_TRUE(validate(DatabaseSettings{"", good})) << good;
    for (int bad : {-1, 1, 257}) {
        auto s = validate(DatabaseSettings{"", bad});
        ASSERT_FALSE(s) << bad;
        EXPECT_EQ(s.error().stage, Stage::config);
        EXPECT_NE(s.error().reason.find("[database] pool_size"), std::string::npos);
    }
}

TEST(DatabaseSettings, TimeoutsHaveBounds) {
    EXPECT_FALSE(validate(DatabaseSettings{"", 0, 0, 30}));
    EXPECT_FALSE(validate(DatabaseSettings{"", 0, 61, 30}));
    EXPECT_TRUE(validate(DatabaseSettings{"", 0, 60, 600}));
    auto s = validate(DatabaseSettings{"", 0, 5, 601});
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().reason.find("statement_timeout_s must be 1..600, not 601"),
              std::string::npos);
}

TEST(DatabaseSettings, BadUrlIsAConfigErrorWithoutItsValue) {
    auto s = validate(DatabaseSettings{"postgresql://u:hunter%zz2@db/x"});
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().stage, Stage::config);
    EXPECT_NE(s.error().reason.find("[database] url"), std::string::npos);
    EXPECT_EQ(s.error().reason.find("hunter"), std::string::npos);
    EXPECT_TRUE(validate(DatabaseSettings{"postgresql://u:hunter2@db/x"}));
}

}  // namespace
}  // namespace imgspool::pg
