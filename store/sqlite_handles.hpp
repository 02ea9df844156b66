// Owners for SQLite handles used by JobDb: a prepared statement that binds and steps with every
// return code checked, and a write transaction that rolls back unless committed.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool::sqlite {

// Result codes that pass by themselves: busy or locked (another connection, the sqlite3 CLI),
// a full disk, I/O errors, out of memory.
bool is_transient_code(int rc);

// A Stage::commit error: "<what>: <sqlite3_errmsg(db)>", transient when the last result code is.
Error error(sqlite3* db, std::string_view what);

// Runs SQL without results (schema, pragmas, transaction control).
Status exec(sqlite3* db, const char* sql);

class Statement {
  public:
    static Result<Statement> prepare(sqlite3* db, std::string_view sql);

    // Binds to the 1-based parameter index; a failed bind is reported by the next step().
    void bind(int index, std::string_view text);
    void bind(int index, std::int64_t value);
    void bind_null(int index);

    // true: a row is ready to read; false: the statement is done.
    Result<bool> step();
    // Steps a statement that returns no rows to its end.
    Status run();
    // Rows changed by the last run().
    std::int64_t changes() const;

    std::string text(int column) const;  // NULL reads as ""
    std::int64_t int64(int column) const;

  private:
    struct Finalizer {
        void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
    };
    Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
    void check_bind(int rc, int index);

    sqlite3* db_;
    std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
    std::string bind_error_;
};

// BEGIN IMMEDIATE on construction (takes the write lock up front, so the busy timeout applies);
// ROLLBACK on destruction unless commit() succeeded.
class Transaction {
  public:
    static Result<Transaction> begin(sqlite3* db);
    Transaction(Transaction&& other) noexcept;
    Transaction& operator=(Transaction&&) = delete;
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction();

    Status commit();

  private:
    explicit Transaction(sqlite3* db) : db_(db) {}
    sqlite3* db_;
};

}  // namespace imgspool::sqlite
