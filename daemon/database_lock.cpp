#include "daemon/database_lock.hpp"

#include "store/pg/database_url.hpp"

namespace imgspool {
namespace {

// pg_try_advisory_lock(bigint) key: "img1node" in ASCII; not the migrations' key ("imgspool"),
// which this session would otherwise hold against its own pool. Other applications sharing the
// database are unlikely to pick it; they would only make imgspool refuse to start.
constexpr const char* kLockKey = "7596841608447747173";

}  // namespace

DatabaseLock::DatabaseLock(pg::Connection conn, std::string where)
    : conn_(std::move(conn)), where_(std::move(where)) {}

Status DatabaseLock::try_lock(pg::Connection& conn, const std::string& where) {
    auto taken =
        conn.exec_sql("SELECT pg_try_advisory_lock($1::bigint)", pg::Params().text(kLockKey));
    if (!taken) return taken.error();
    if (pg::boolean(*taken, 0, 0)) return ok_status();
    auto holder = conn.exec_sql(R"sql(
        SELECT coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket')
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint)sql",
                                pg::Params().text(kLockKey));
    std::string who = "another imgspool";
    if (holder && pg::rows(*holder) > 0) {
        who += " (" + pg::value(*holder, 0, 0) + " from " + pg::value(*holder, 0, 1) + ")";
    }
    return make_error(Stage::config,
                      who + " already uses database " + where +
                          "; one daemon per database until several nodes can share one");
}

Result<std::unique_ptr<DatabaseLock>> DatabaseLock::take(const pg::DatabaseSettings& settings,
                                                         const std::string& node) {
    const std::string where = "postgresql " + pg::describe_database(settings.url);
    auto conn = pg::Connection::open(settings, "imgspool/" + node + "/lock");
    if (!conn) {
        // The first connection `run` makes: without its job record the daemon does not start, and
        // says so at once rather than deferring every job. Permanent, so nothing waits for it.
        return make_error(Stage::config,
                          "cannot use the database " + where + ": " + conn.error().reason +
                              "; start the server or correct [database] url (or DATABASE_URL), "
                              "then start imgspool again");
    }
    if (Status st = try_lock(*conn, where); !st) return st.error();
    return std::unique_ptr<DatabaseLock>(new DatabaseLock(std::move(*conn), where));
}

Status DatabaseLock::check() {
    if (!conn_.broken()) {
        auto alive = conn_.exec_sql("SELECT 1");
        if (alive) return ok_status();
        if (!conn_.broken()) return alive.error();
    }
    if (Status st = conn_.reset(); !st) return st;
    return try_lock(conn_, where_);
}

}  // namespace imgspool
