// SQLSTATE → what the daemon does (design §2.4), and the SQLSTATE carried in error texts.
#include "store/pg/pg_errors.hpp"

#include <gtest/gtest.h>

namespace imgspool::pg {
namespace {

TEST(PgErrors, ConnectionLossAndRestartsReconnect) {
    for (const char* s : {"08000", "08003", "08006", "08001", "08004", "08P01", "57P01", "57P02",
                          "57P03", "25P03"}) {
        EXPECT_EQ(classify_sqlstate(s, false), Handling::reconnect) << s;
    }
    // libpq's own errors have no SQLSTATE: a bad connection decides.
    EXPECT_EQ(classify_sqlstate("", true), Handling::reconnect);
    EXPECT_EQ(classify_sqlstate("", false), Handling::permanent);
}

TEST(PgErrors, LostRacesRetryInPlace) {
    EXPECT_EQ(classify_sqlstate("40001", false), Handling::retry_in_place);
    EXPECT_EQ(classify_sqlstate("40P01", false), Handling::retry_in_place);
}

TEST(PgErrors, ResourcesTimeoutsAndAuthPass) {
    for (const char* s : {"53000", "53100", "53200", "53300", "55P03", "57014", "58000", "58030",
                          "40003", "28000", "28P01", "3D000", "42501"}) {
        EXPECT_EQ(classify_sqlstate(s, false), Handling::transient) << s;
    }
}

TEST(PgErrors, ConstraintDataAndSqlErrorsArePermanent) {
    for (const char* s : {"23505", "23514", "23502", "22021", "22P02", "42P01", "42703", "42601"}) {
        EXPECT_EQ(classify_sqlstate(s, false), Handling::permanent) << s;
    }
}

TEST(PgErrors, SqlstateIsReadBackFromTheErrorText) {
    const Error race = make_transient(Stage::commit, "claim: could not serialize (SQLSTATE 40001)");
    EXPECT_EQ(sqlstate_of(race), "40001");
    EXPECT_TRUE(is_retry_in_place(race));
    EXPECT_FALSE(needs_reconnect(race));

    const Error deadlock = make_transient(Stage::commit, "x: deadlock detected (SQLSTATE 40P01)");
    EXPECT_TRUE(is_retry_in_place(deadlock));

    const Error gone = make_transient(Stage::commit, "x: terminating connection (SQLSTATE 57P01)");
    EXPECT_TRUE(needs_reconnect(gone));
    EXPECT_FALSE(is_retry_in_place(gone));

    const Error plain = make_error(Stage::commit, "x: duplicate key (SQLSTATE 23505)");
    EXPECT_FALSE(is_retry_in_place(plain));
    EXPECT_FALSE(needs_reconnect(plain));
    EXPECT_EQ(sqlstate_of(make_error(Stage::commit, "no state here")), "");
}

TEST(PgErrors, AnErrorWithoutResultOrConnectionIsPermanentAndSaysSo) {
    const Error e = pg_error("find", nullptr, nullptr);
    EXPECT_FALSE(e.transient);
    EXPECT_EQ(e.stage, Stage::commit);
    EXPECT_EQ(e.reason, "find: no message from libpq");
}

}  // namespace
}  // namespace imgspool::pg
