// One connection against the fixture's server: session defaults, prepared statements,
// transactions, error classes, refused databases and passwords that never show.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "store/pg/pg_errors.hpp"
#include "store/pg/pg_handles.hpp"
#include "tests/pg/pg_test_server.hpp"

namespace imgspool::pg {
namespace {

Connection connect(const std::string& url) {
    auto conn = Connection::open(DatabaseSettings{url}, "imgspool/test");
    if (!conn) throw std::runtime_error(conn.error().message());
    return std::move(conn.value());
}

std::string single_value(Connection& conn, const std::string& sql) {
    auto r = conn.exec_sql(sql);
    if (!r) throw std::runtime_error(r.error().message());
    return value(*r, 0, 0);
}

TEST(PgConnection, PreparesOnFirstUseAndReusesTheStatement) {
    Connection conn = connect(pg_test::fresh_database("prepare"));
    static constexpr PgStatement add{"test_add", "SELECT $1::int8 + $2::int8, $3::text IS NULL", 3};
    for (int i = 0; i < 2; ++i) {
        auto r = conn.exec(add, Params().integer(40).integer(2).optional_text(""));
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(int64(*r, 0, 0), 42);
        EXPECT_TRUE(boolean(*r, 0, 1));
    }
    EXPECT_EQ(single_value(conn, "SELECT count(*) FROM pg_prepared_statements"), "1");
    auto text = conn.exec_sql("SELECT $1::text, $2::text IS NULL", Params().text("é ü").null());
    ASSERT_TRUE(text);
    EXPECT_EQ(value(*text, 0, 0), "é ü");
    EXPECT_EQ(value(*text, 0, 1), "t");
}

TEST(PgConnection, SessionHasTheDefaultsOfTheDesign) {
    Connection conn = connect(pg_test::fresh_database("defaults"));
    EXPECT_EQ(single_value(conn, "SHOW TimeZone"), "UTC");
    EXPECT_EQ(single_value(conn, "SHOW statement_timeout"), "30s");
    EXPECT_EQ(single_value(conn, "SHOW idle_in_transaction_session_timeout"), "1min");
    EXPECT_EQ(single_value(conn, "SHOW application_name"), "imgspool/test");
    EXPECT_EQ(single_value(conn, "SELECT current_user"), "imgspool");
    EXPECT_GE(conn.server_version(), 120000);
}

TEST(PgConnection, TheUrlOverridesTheDefaults) {
    Connection conn = connect(pg_test::fresh_database("override") +
                              "?application_name=mine&options=-c%20statement_timeout%3D7s");
    EXPECT_EQ(single_value(conn, "SHOW application_name"), "mine");
    EXPECT_EQ(single_value(conn, "SHOW statement_timeout"), "7s");
}

TEST(PgConnection, TransactionRollsBackUnlessCommitted) {
    Connection conn = connect(pg_test::fresh_database("tx"));
    ASSERT_TRUE(conn.exec_sql("CREATE TABLE t (x int)"));
    {
        Transaction tx(conn);
        ASSERT_TRUE(tx.begin());
        ASSERT_TRUE(conn.exec_sql("INSERT INTO t VALUES (1)"));
        EXPECT_TRUE(conn.in_transaction());
    }
    EXPECT_FALSE(conn.in_transaction());
    EXPECT_EQ(single_value(conn, "SELECT count(*) FROM t"), "0");
    {
        Transaction tx(conn, Isolation::serializable);
        ASSERT_TRUE(tx.begin());
        EXPECT_EQ(single_value(conn, "SHOW transaction_isolation"), "serializable");
        auto inserted = conn.exec_sql("INSERT INTO t VALUES (2), (3)");
        ASSERT_TRUE(inserted);
        EXPECT_EQ(affected_rows(*inserted), 2);
        ASSERT_TRUE(tx.commit());
    }
    EXPECT_EQ(single_value(conn, "SELECT count(*) FROM t"), "2");
}

TEST(PgConnection, ConstraintViolationIsPermanentWithItsSqlstate) {
    Connection conn = connect(pg_test::fresh_database("unique"));
    ASSERT_TRUE(conn.exec_sql("CREATE TABLE u (x int PRIMARY KEY)"));
    static constexpr PgStatement insert{"test_insert", "INSERT INTO u VALUES ($1::int)", 1};
    ASSERT_TRUE(conn.exec(insert, Params().integer(1)));
    auto again = conn.exec(insert, Params().integer(1));
    ASSERT_FALSE(again);
    EXPECT_FALSE(again.error().transient);
    EXPECT_EQ(again.error().stage, Stage::commit);
    EXPECT_EQ(again.error().reason,
              "test_insert: duplicate key value violates unique constraint \"u_pkey\" (SQLSTATE "
              "23505)");
    EXPECT_FALSE(conn.broken());
}

TEST(PgConnection, StatementTimeoutIsTransientAndKeepsTheSession) {
    DatabaseSettings settings = DatabaseSettings{pg_test::fresh_database("timeout")};
    settings.statement_timeout_s = 1;
    auto conn = Connection::open(settings, "imgspool/test");
    ASSERT_TRUE(conn) << conn.error().message();
    auto slow = conn->exec_sql("SELECT pg_sleep(3)");
    ASSERT_FALSE(slow);
    EXPECT_TRUE(slow.error().transient);
    EXPECT_EQ(sqlstate_of(slow.error()), "57014");
    EXPECT_FALSE(conn->broken());
    EXPECT_TRUE(conn->exec_sql("SELECT 1"));
}

TEST(PgConnection, WrongPasswordFailsAndTheErrorDoesNotShowIt) {
    const auto facts = pg_test::server_facts();
    std::string url = pg_test::fresh_database("password");
    url.replace(url.find(facts.password), facts.password.size(), "Wrong-Secret-4711");
    auto conn = Connection::open(DatabaseSettings{url}, "imgspool/test");
    ASSERT_FALSE(conn);
    EXPECT_NE(conn.error().reason.find("password authentication failed"), std::string::npos)
        << conn.error().reason;
    EXPECT_EQ(conn.error().reason.find("Wrong-Secret-4711"), std::string::npos);
}

TEST(PgConnection, RefusesADatabaseNotEncodedInUtf8) {
    Connection admin = connect(pg_test::admin_conninfo());
    const std::string name = "latin1_" + std::to_string(std::random_device{}() % 100000000u);
    ASSERT_TRUE(admin.exec_sql("CREATE DATABASE " + name +
                               " OWNER imgspool TEMPLATE template0 ENCODING 'LATIN1' "
                               "LC_COLLATE 'C' LC_CTYPE 'C'"));
    const auto f = pg_test::server_facts();
    auto conn =
        Connection::open(DatabaseSettings{"postgresql://imgspool:" + f.password +
                                          "@127.0.0.1:" + std::to_string(f.port) + "/" + name},
                         "imgspool/test");
    ASSERT_FALSE(conn);
    EXPECT_FALSE(conn.error().transient);
    EXPECT_NE(conn.error().reason.find("encoded in LATIN1, not UTF8"), std::string::npos)
        << conn.error().reason;
}

TEST(PgConnection, TerminatedSessionIsBrokenUntilResetThenPreparesAgain) {
    Connection conn = connect(pg_test::fresh_database("terminate"));
    static constexpr PgStatement one{"test_one", "SELECT 1", 0};
    ASSERT_TRUE(conn.exec(one));
    const int first_pid = conn.backend_pid();

    Connection admin = connect(pg_test::admin_conninfo());
    ASSERT_TRUE(
        admin.exec_sql("SELECT pg_terminate_backend($1::int)", Params().integer(first_pid)));

    auto lost = conn.exec(one);
    ASSERT_FALSE(lost);
    EXPECT_TRUE(lost.error().transient);
    EXPECT_TRUE(needs_reconnect(lost.error())) << lost.error().reason;
    EXPECT_TRUE(conn.broken());

    ASSERT_TRUE(conn.reset());
    EXPECT_FALSE(conn.broken());
    EXPECT_NE(conn.backend_pid(), first_pid);
    auto again = conn.exec(one);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(single_value(conn, "SELECT count(*) FROM pg_prepared_statements"), "1");
}

}  // namespace
}  // namespace imgspool::pg
