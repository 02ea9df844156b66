// The connection pool against the fixture's server: open errors, lost races retried in place,
// broken sessions reset, transactions never leaked, and many threads at once.
#include "store/pg/pg_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/pg/pg_test_server.hpp"

namespace imgspool::pg {
namespace {

std::unique_ptr<ConnectionPool> open_pool(const std::string& url, int size) {
    auto pool = ConnectionPool::open(DatabaseSettings{url}, size, "imgspool/test");
    if (!pool) throw std::runtime_error(pool.error().message());
    return std::move(pool.value());
}

Status exec(Connection& conn, const std::string& sql) {
    auto r = conn.exec_sql(sql);
    if (!r) return r.error();
    return ok_status();
}

Result<std::int64_t> count_rows(ConnectionPool& pool, const char* table) {
    return pool.run([&](Connection& conn) -> Result<std::int64_t> {
        auto r = conn.exec_sql(std::string("SELECT count(*) FROM ") + table);
        if (!r) return r.error();
        return int64(*r, 0, 0);
    });
}

TEST(PgPool, WrongPasswordFailsOpenWithAConfigErrorThatHidesIt) {
    const auto facts = pg_test::server_facts();
    std::string url = pg_test::fresh_database("pool_password");
    url.replace(url.find(facts.password), facts.password.size(), "Wrong-Secret-4711");
    auto pool = ConnectionPool::open(DatabaseSettings{url}, 4, "imgspool/test");
    ASSERT_FALSE(pool);
    EXPECT_EQ(pool.error().stage, Stage::config);
    EXPECT_FALSE(pool.error().transient);
    const std::string& reason = pool.error().reason;
    EXPECT_NE(
        reason.find("cannot use the database host=127.0.0.1 port=" + std::to_string(facts.port)),
        std::string::npos)
        << reason;
    EXPECT_NE(reason.find("user=imgspool"), std::string::npos) << reason;
    EXPECT_NE(reason.find("password authentication failed"), std::string::npos) << reason;
    EXPECT_EQ(reason.find("Wrong-Secret-4711"), std::string::npos);
}

TEST(PgPool, MissingDatabaseFailsOpen) {
    const auto f = pg_test::server_facts();
    auto pool = ConnectionPool::open(
        DatabaseSettings{"postgresql://imgspool:" + f.password +
                         "@127.0.0.1:" + std::to_string(f.port) + "/no_such_database"},
        2, "imgspool/test");
    ASSERT_FALSE(pool);
    EXPECT_EQ(pool.error().stage, Stage::config);
    EXPECT_NE(pool.error().reason.find("\"no_such_database\" does not exist"), std::string::npos)
        << pool.error().reason;
}

TEST(PgPool, RaisedSerializationFailureIsRetriedInPlace) {
    auto pool = open_pool(pg_test::fresh_database("retry"), 2);
    int calls = 0;
    auto r = pool->run([&](Connection& conn) -> Result<int> {
        ++calls;
        if (calls <= 2) {
            auto raised = exec(conn,
                               "DO $$BEGIN RAISE EXCEPTION 'lost a race' "
                               "USING ERRCODE = 'serialization_failure'; END$$");
            if (!raised) return raised.error();
        }
        return calls;
    });
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, 3);
}

TEST(PgPool, DeadlocksRetryThreeTimesThenTheErrorIsTransient) {
    auto pool = open_pool(pg_test::fresh_database("deadlock"), 2);
    int calls = 0;
    auto r = pool->run([&](Connection& conn) -> Status {
        ++calls;
        return exec(
            conn, "DO $$BEGIN RAISE EXCEPTION 'stuck' USING ERRCODE = 'deadlock_detected'; END$$");
    });
    ASSERT_FALSE(r);
    EXPECT_EQ(calls, 1 + ConnectionPool::kRetriesInPlace);
    EXPECT_TRUE(r.error().transient);
    EXPECT_EQ(sqlstate_of(r.error()), "40P01");
}

TEST(PgPool, RealSerializationConflictIsRetriedInPlace) {
    const std::string url = pg_test::fresh_database("serializable");
    auto pool = open_pool(url, 1);
    auto other = Connection::open(DatabaseSettings{url}, "imgspool/test-other");
    ASSERT_TRUE(other) << other.error().message();
    ASSERT_TRUE(exec(*other, "CREATE TABLE duty (doctor int, on_call bool)"));
    ASSERT_TRUE(exec(*other, "INSERT INTO duty VALUES (1, true), (2, true)"));

    // Write skew: each transaction takes a doctor off call after seeing the other on call.
    // SERIALIZABLE lets only one of them commit; the pool's function loses the first time.
    int calls = 0;
    auto r = pool->run([&](Connection& conn) -> Status {
        ++calls;
        Transaction tx(conn, Isolation::serializable);
        if (auto s = tx.begin(); !s) return s;
        if (auto s = exec(conn, "SELECT count(*) FROM duty WHERE on_call"); !s) return s;
        if (calls == 1) {
            Transaction rival(*other, Isolation::serializable);
            if (auto s = rival.begin(); !s) return s;
            if (auto s = exec(*other, "SELECT count(*) FROM duty WHERE on_call"); !s) return s;
            if (auto s = exec(*other, "UPDATE duty SET on_call = false WHERE doctor = 2"); !s) {
                return s;
            }
            if (auto s = rival.commit(); !s) return s;
        }
        if (auto s = exec(conn, "UPDATE duty SET on_call = false WHERE doctor = 1"); !s) return s;
        return tx.commit();
    });
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(calls, 2);
    auto off = pool->run([](Connection& conn) -> Result<std::int64_t> {
        auto q = conn.exec_sql("SELECT count(*) FROM duty WHERE NOT on_call");
        if (!q) return q.error();
        return int64(*q, 0, 0);
    });
    ASSERT_TRUE(off);
    EXPECT_EQ(*off, 2);
}

TEST(PgPool, TerminatedConnectionFailsOnceThenIsResetAndCounted) {
    auto pool = open_pool(pg_test::fresh_database("reset"), 1);
    const auto pid_of = [](Connection& conn) -> Result<int> { return conn.backend_pid(); };
    auto first = pool->run(pid_of);
    ASSERT_TRUE(first);

    auto admin =
        Connection::open(DatabaseSettings{pg_test::admin_conninfo()}, "imgspool/test-admin");
    ASSERT_TRUE(admin);
    ASSERT_TRUE(admin->exec_sql("SELECT pg_terminate_backend($1::int)", Params().integer(*first)));

    auto lost = pool->run([](Connection& conn) { return exec(conn, "SELECT 1"); });
    ASSERT_FALSE(lost);
    EXPECT_TRUE(lost.error().transient);
    EXPECT_EQ(pool->reconnects(), 0u);

    auto second = pool->run(pid_of);
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_NE(*second, *first);
    EXPECT_EQ(pool->reconnects(), 1u);
}

// A connection that cannot be made while another still works: the failed reconnect starts the
// backoff, the working connection's answer ends it (no fail-fast against a live server), and the
// broken one is made again once the database accepts connections.
TEST(PgPool, FailedReconnectBacksOffUntilAWholeConnectionAnswers) {
    const std::string url = pg_test::fresh_database("limit");
    const std::string name = url.substr(url.rfind('/') + 1);
    auto pool = open_pool(url, 2);
    int recovered = 0;
    pool->on_recovered([&] { ++recovered; });
    const auto pid_of = [](Connection& conn) -> Result<int> { return conn.backend_pid(); };
    // Runs f on one connection while another is checked out: both slots in use.
    const auto nested = [&](auto inner) {
        return pool->run([&](Connection&) { return pool->run(inner); });
    };

    auto first = pool->run(pid_of);
    ASSERT_TRUE(first);
    ASSERT_TRUE(nested(pid_of));
    auto admin =
        Connection::open(DatabaseSettings{pg_test::admin_conninfo()}, "imgspool/test-admin");
    ASSERT_TRUE(admin);
    ASSERT_TRUE(admin->exec_sql("SELECT pg_terminate_backend($1::int)", Params().integer(*first)));
    ASSERT_FALSE(pool->run([](Connection& conn) { return exec(conn, "SELECT 1"); }));
    ASSERT_TRUE(admin->exec_sql("ALTER DATABASE " + name + " CONNECTION LIMIT 1"));

    auto refused = nested(pid_of);
    ASSERT_FALSE(refused);
    EXPECT_TRUE(refused.error().transient);
    EXPECT_TRUE(refused.error().reason.starts_with("database unreachable since 0 s (next try in"))
        << refused.error().reason;
    EXPECT_NE(refused.error().reason.find("too many connections"), std::string::npos)
        << refused.error().reason;
    EXPECT_EQ(recovered, 1);
    EXPECT_TRUE(pool->run([](Connection& conn) { return exec(conn, "SELECT 1"); }));
    EXPECT_EQ(pool->reconnects(), 0u);

    ASSERT_TRUE(admin->exec_sql("ALTER DATABASE " + name + " CONNECTION LIMIT -1"));
    auto both = nested(pid_of);
    ASSERT_TRUE(both) << both.error().message();
    EXPECT_EQ(pool->reconnects(), 1u);
}

TEST(PgPool, TransactionLeftOpenByAFunctionIsRolledBack) {
    auto pool = open_pool(pg_test::fresh_database("leftopen"), 1);
    ASSERT_TRUE(pool->run([](Connection& conn) { return exec(conn, "CREATE TABLE t (x int)"); }));
    ASSERT_TRUE(pool->run([](Connection& conn) -> Status {
        if (auto s = exec(conn, "BEGIN"); !s) return s;
        return exec(conn, "INSERT INTO t VALUES (1)");
    }));
    auto open = pool->run([](Connection& conn) -> Result<bool> { return conn.in_transaction(); });
    ASSERT_TRUE(open);
    EXPECT_FALSE(*open);
    auto n = count_rows(*pool, "t");
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0);
}

TEST(PgPool, ManyThreadsShareTheConnections) {
    constexpr int kThreads = 8;
    constexpr int kRuns = 25;
    constexpr int kSize = 3;
    auto pool = open_pool(pg_test::fresh_database("threads"), kSize);
    // exec_sql sends one statement per call (PQexecParams).
    auto made = pool->run([](Connection& conn) -> Status {
        if (auto s = exec(conn, "CREATE TABLE counter (n int)"); !s) return s;
        return exec(conn, "INSERT INTO counter VALUES (0)");
    });
    ASSERT_TRUE(made) << made.error().message();

    static constexpr PgStatement bump{"test_bump",
                                      "UPDATE counter SET n = n + 1 RETURNING pg_backend_pid()", 0};
    std::mutex pids_mutex;
    std::set<std::int64_t> pids;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < kRuns; ++i) {
                auto pid = pool->run([](Connection& conn) -> Result<std::int64_t> {
                    Transaction tx(conn);
                    if (auto s = tx.begin(); !s) return s.error();
                    auto r = conn.exec(bump);
                    if (!r) return r.error();
                    if (auto s = tx.commit(); !s) return s.error();
                    return int64(*r, 0, 0);
                });
                if (!pid) {
                    ++failures;
                    continue;
                }
                std::lock_guard lock(pids_mutex);
                pids.insert(*pid);
            }
        });
    }
    for (auto& t : threads) t.join();

    EXPECT_EQ(failures.load(), 0);
    auto n = pool->run([](Connection& conn) -> Result<std::int64_t> {
        auto r = conn.exec_sql("SELECT n FROM counter");
        if (!r) return r.error();
        return int64(*r, 0, 0);
    });
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, kThreads * kRuns);
    EXPECT_GE(pids.size(), 1u);
    EXPECT_LE(pids.size(), static_cast<std::size_t>(kSize));
    EXPECT_EQ(pool->reconnects(), 0u);
}

}  // namespace
}  // namespace imgspool::pg
