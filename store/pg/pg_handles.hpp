// Owners for libpq handles (PGconn, PGresult), text parameters, one connection with the
// statements prepared on it, and a transaction that rolls back unless committed.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "store/pg/database_settings.hpp"

namespace imgspool::pg {

struct PgConnFinish {
    void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultClear {
    void operator()(PGresult* result) const { PQclear(result); }
};
using PgConn = std::unique_ptr<PGconn, PgConnFinish>;
using PgResult = std::unique_ptr<PGresult, PgResultClear>;

// One SQL text with the name it is prepared under on every connection; constexpr at namespace
// scope next to the code that runs it. Parameters are text with explicit casts in the SQL.
struct PgStatement {
    const char* name;
    const char* sql;
    int nparams;
};

// Text parameters in order ($1, $2, ...); null values are SQL NULL. Owns its strings.
class Params {
  public:
    Params& text(std::string_view value);
    Params& optional_text(std::string_view value);  // "" = NULL, as bind_optional in SQLite
    Params& integer(std::int64_t value);
    Params& boolean(bool value);
    Params& null();

    int size() const { return static_cast<int>(values_.size()); }
    // Pointers into this object, valid while it lives unchanged.
    std::vector<const char*> pointers() const;

  private:
    std::vector<std::optional<std::string>> values_;
};

enum class Isolation { read_committed, repeatable_read, serializable };

class Connection {
  public:
    // Connects with the defaults of design §2.3 placed before dbname=<url>, so anything the URL
    // says wins; then refuses servers older than 12 and databases not encoded in UTF8. Errors are
    // transient Stage::commit (the pool turns a failure at start into a configuration error).
    static Result<Connection> open(const DatabaseSettings& settings,
                                   std::string_view application_name);

    // Runs a named statement, preparing it first if this session has not seen it yet.
    Result<PgResult> exec(const PgStatement& statement, const Params& params = {});
    // One-off SQL (migrations, checks, transaction control): PQexecParams, nothing prepared.
    Result<PgResult> exec_sql(std::string_view sql, const Params& params = {});

    // The session is gone or an error said it must be reset.
    bool broken() const;
    // PQreset: a new session with the same parameters; statements are prepared again on use.
    Status reset();

    // Inside a transaction (or a failed one) rather than idle.
    bool in_transaction() const;
    int server_version() const { return PQserverVersion(conn_.get()); }
    int backend_pid() const { return PQbackendPID(conn_.get()); }

  private:
    explicit Connection(PgConn conn) : conn_(std::move(conn)) {}
    Result<PgResult> checked(PgResult result, std::string_view what);

    PgConn conn_;
    std::set<std::string, std::less<>> prepared_;
    bool broken_ = false;
};

// BEGIN [ISOLATION LEVEL ...] in begin(); ROLLBACK on destruction unless commit() succeeded or
// the session is already gone.
class Transaction {
  public:
    explicit Transaction(Connection& conn, Isolation isolation = Isolation::read_committed)
        : conn_(conn), isolation_(isolation) {}
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    Status begin();
    Status commit();

  private:
    Connection& conn_;
    Isolation isolation_;
    bool open_ = false;
};

// Results read as text: NULL reads as "" (use is_null to tell), bool as 't'/'f', int8 parsed.
int rows(const PgResult& result);
std::string value(const PgResult& result, int row, int col);
bool is_null(const PgResult& result, int row, int col);
std::int64_t int64(const PgResult& result, int row, int col);
bool boolean(const PgResult& result, int row, int col);
// Rows changed by an INSERT/UPDATE/DELETE.
std::int64_t affected_rows(const PgResult& result);

}  // namespace imgspool::pg
