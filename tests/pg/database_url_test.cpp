// [database] url: accepted forms, refused ones, and no password in any text made from it.
#include "store/pg/database_url.hpp"

#include <gtest/gtest.h>

namespace imgspool::pg {
namespace {

TEST(DatabaseUrl, AcceptsBothUriSchemesAndKeyValueConninfo) {
    EXPECT_TRUE(check_database_url("postgresql://imgspool:pw@db.example.com:5432/imgspool"));
    EXPECT_TRUE(check_database_url("postgres://db/imgspool?sslmode=require"));
    EXPECT_TRUE(check_database_url("host=db port=5432 dbname=imgspool user=imgspool"));
    EXPECT_TRUE(check_database_url("postgresql:///imgspool?host=/var/run/postgresql"));
}

TEST(DatabaseUrl, RefusesOtherSchemesAndEmptyNamingTheKey) {
    for (const char* url :
         {"sqlite:/var/lib/imgspool/imgspool.db", "http://db/imgspool", "mysql://u:secret@db/x"}) {
        auto s = check_database_url(url, "DATABASE_URL");
        ASSERT_FALSE(s) << url;
        EXPECT_EQ(s.error().stage, Stage::config);
        EXPECT_NE(s.error().reason.find("DATABASE_URL"), std::string::npos);
        EXPECT_NE(s.error().reason.find("postgresql://"), std::string::npos);
        EXPECT_EQ(s.error().reason.find("secret"), std::string::npos);
    }
    auto empty = check_database_url("");
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().reason.find("[database] url"), std::string::npos);
}

TEST(DatabaseUrl, ParseErrorsKeepKeywordsButNeverValues) {
    // libpq quotes the broken piece itself: here the password.
    auto bad_escape = check_database_url("postgresql://imgspool:s3cr%zzet@db/imgspool");
    ASSERT_FALSE(bad_escape);
    EXPECT_EQ(bad_escape.error().reason.find("s3cr"), std::string::npos)
        << bad_escape.error().reason;
    EXPECT_NE(bad_escape.error().reason.find("[database] url is not a valid"), std::string::npos);

    auto unknown = check_database_url("host=db passwd=hunter2");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().reason.find("hunter2"), std::string::npos);
    EXPECT_EQ(unknown.error().reason.find("passwd"), std::string::npos) << "not a libpq keyword";

    auto unterminated = check_database_url("host=db password='hunter2");
    ASSERT_FALSE(unterminated);
    EXPECT_EQ(unterminated.error().reason.find("hunter2"), std::string::npos);
}

TEST(DatabaseUrl, MasksThePasswordInAUri) {
    EXPECT_EQ(masked_database_url(
                  "postgresql://imgspool:s3cret@db.example.com:5433/imgspool?sslmode=require"),
              "postgresql://imgspool:****@db.example.com:5433/imgspool?sslmode=require");
    EXPECT_EQ(masked_database_url("postgres://u:p%40ss@[::1]:5432/jobs"),
              "postgresql://u:****@[::1]:5432/jobs");
    EXPECT_EQ(masked_database_url("postgresql://db/jobs"), "postgresql://db/jobs");
}

TEST(DatabaseUrl, MasksPasswordsGivenAsQueryParameters) {
    const std::string masked = masked_database_url(
        "postgresql://imgspool@db/"
        "imgspool?password=s3cret&sslpassword=keypass&sslmode=verify-full");
    EXPECT_EQ(masked.find("s3cret"), std::string::npos) << masked;
    EXPECT_EQ(masked.find("keypass"), std::string::npos) << masked;
    EXPECT_NE(masked.find("imgspool:****@db"), std::string::npos) << masked;
    EXPECT_NE(masked.find("sslpassword=****"), std::string::npos) << masked;
    EXPECT_TRUE(check_database_url(masked));
}

TEST(DatabaseUrl, MasksKeyValueConninfoAndKeepsItParsable) {
    const std::string url =
        "host=db port=5433 user=imgspool password='se cr\\'et' dbname='my jobs'";
    const std::string masked = masked_database_url(url);
    EXPECT_EQ(masked.find("se cr"), std::string::npos) << masked;
    EXPECT_NE(masked.find("password=****"), std::string::npos) << masked;
    EXPECT_NE(masked.find("dbname='my jobs'"), std::string::npos) << masked;
    EXPECT_TRUE(check_database_url(masked));
    EXPECT_EQ(describe_database(masked), describe_database(url));
}

TEST(DatabaseUrl, KeepsSocketPathsAndHostListsAsParameters) {
    EXPECT_EQ(masked_database_url("postgresql:///jobs?host=/var/run/postgresql&password=x"),
              "postgresql://:****@/jobs?host=%2Fvar%2Frun%2Fpostgresql");
    const std::string list = masked_database_url("postgresql://u:pw@a:5432,b:5433/jobs");
    EXPECT_EQ(describe_database(list), "host=a,b port=5432,5433 dbname=jobs user=u");
    EXPECT_EQ(list.find(":pw"), std::string::npos);
}

TEST(DatabaseUrl, UnparsableTextIsNeverEchoed) {
    EXPECT_EQ(masked_database_url("host=db password='hunter2"), "(unparsable connection string)");
    EXPECT_EQ(masked_database_url("sqlite:/tmp/x"), "(unparsable connection string)");
    EXPECT_EQ(describe_database("host=db password='hunter2"), "(unparsable connection string)");
}

TEST(DatabaseUrl, DescribeNamesWhereAndWhoButNoPassword) {
    EXPECT_EQ(describe_database("postgresql://imgspool:s3cret@db:5433/jobs?sslmode=require"),
              "host=db port=5433 dbname=jobs user=imgspool sslmode=require");
    EXPECT_EQ(describe_database("user=imgspool password=s3cret dbname=jobs"),
              "dbname=jobs user=imgspool");
    EXPECT_EQ(describe_database("postgresql://"), "(libpq defaults)");
}

}  // namespace
}  // namespace imgspool::pg
