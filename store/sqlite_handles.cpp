#include "store/sqlite_handles.hpp"

#include <utility>

namespace imgspool::sqlite {

bool is_transient_code(int rc) {
    switch (rc & 0xff) {  // the primary code of an extended one
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_FULL:
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
        case SQLITE_NOMEM:
        case SQLITE_PROTOCOL:
            return true;
        default:
            return false;
    }
}

Error error(sqlite3* db, std::string_view what) {
    std::string reason(what);
    reason += ": ";
    reason += sqlite3_errmsg(db);
    Error e = make_error(Stage::commit, std::move(reason));
    e.transient = is_transient_code(sqlite3_extended_errcode(db));
    return e;
}

Status exec(sqlite3* db, const char* sql) {
    char* message = nullptr;
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    if (rc == SQLITE_OK) return ok_status();
    std::string reason = message ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    Error e = make_error(Stage::commit, "database: " + reason);
    e.transient = is_transient_code(rc);
    return e;
}

Result<Statement> Statement::prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return error(db, "preparing \"" + std::string(sql.substr(0, 60)) + "\"");
    }
    return Statement(db, stmt);
}

void Statement::check_bind(int rc, int index) {
    if (rc != SQLITE_OK && bind_error_.empty()) {
        bind_error_ = "binding parameter " + std::to_string(index) + ": " + sqlite3_errstr(rc);
    }
}

void Statement::bind(int index, std::string_view text) {
    check_bind(sqlite3_bind_text(stmt_.get(), index, text.data(), static_cast<int>(text.size()),
                                 SQLITE_TRANSIENT),
               index);
}

void Statement::bind(int index, std::int64_t value) {
    check_bind(sqlite3_bind_int64(stmt_.get(), index, value), index);
}

void Statement::bind_null(int index) {
    check_bind(sqlite3_bind_null(stmt_.get(), index), index);
}

Result<bool> Statement::step() {
    if (!bind_error_.empty()) return make_error(Stage::commit, "database: " + bind_error_);
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return error(db_, "database");
}

Status Statement::run() {
    auto row = step();
    if (!row) return row.error();
    if (*row) return make_error(Stage::commit, "database: statement unexpectedly returned rows");
    return ok_status();
}

std::int64_t Statement::changes() const {
    return sqlite3_changes64(db_);
}

std::string Statement::text(int column) const {
    const unsigned char* p = sqlite3_column_text(stmt_.get(), column);
    if (!p) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), column)));
}

std::int64_t Statement::int64(int column) const {
    return sqlite3_column_int64(stmt_.get(), column);
}

Result<Transaction> Transaction::begin(sqlite3* db) {
    if (auto st = exec(db, "BEGIN IMMEDIATE"); !st) return st.error();
    return Transaction(db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
    // Nothing to report to: a failed ROLLBACK leaves SQLite to roll back on the next statement.
    if (db_) (void)exec(db_, "ROLLBACK");
}

Status Transaction::commit() {
    if (auto st = exec(db_, "COMMIT"); !st) return st;
    db_ = nullptr;
    return ok_status();
}

}  // namespace imgspool::sqlite
