#include "store/pg/pg_handles.hpp"

#include <charconv>
#include <cstdlib>

#include "store/pg/pg_errors.hpp"

namespace imgspool::pg {

namespace {

constexpr int kMinServerVersion = 120000;

// libpq's connection defaults (design §2.3): a silent server is noticed in about 25 s instead of
// the kernel's two hours, statements cannot hang a worker, timestamps are UTC.
struct ConnectDefaults {
    std::vector<std::string> keys;
    std::vector<std::string> values;

    void add(std::string key, std::string value) {
        keys.push_back(std::move(key));
        values.push_back(std::move(value));
    }
};

ConnectDefaults connect_parameters(const DatabaseSettings& settings,
                                   std::string_view application_name) {
    ConnectDefaults d;
    d.add("connect_timeout", std::to_string(settings.connect_timeout_s));
    d.add("keepalives", "1");
    d.add("keepalives_idle", "10");
    d.add("keepalives_interval", "5");
    d.add("keepalives_count", "3");
    d.add("tcp_user_timeout", "15000");
    d.add("application_name", std::string(application_name));
    d.add("options", "-c statement_timeout=" + std::to_string(settings.statement_timeout_s * 1000) +
                         " -c idle_in_transaction_session_timeout=60000 -c TimeZone=UTC");
    // Last: with expand_dbname=1 the URL's own fields override the entries above.
    d.add("dbname", settings.url);
    return d;
}

Status check_server(PGconn* conn) {
    if (PQserverVersion(conn) < kMinServerVersion) {
        return make_error(Stage::commit, "PostgreSQL server version " +
                                             std::to_string(PQserverVersion(conn)) +
                                             " is older than 12, which imgspool needs");
    }
    const char* encoding = PQparameterStatus(conn, "server_encoding");
    if (!encoding || std::string_view(encoding) != "UTF8") {
        return make_error(Stage::commit, std::string("the database is encoded in ") +
                                             (encoding ? encoding : "an unknown encoding") +
                                             ", not UTF8, which imgspool needs for file names");
    }
    return ok_status();
}

const char* isolation_sql(Isolation isolation) {
    switch (isolation) {
        case Isolation::repeatable_read:
            return "BEGIN ISOLATION LEVEL REPEATABLE READ";
        case Isolation::serializable:
            return "BEGIN ISOLATION LEVEL SERIALIZABLE";
        case Isolation::read_committed:
            break;
    }
    return "BEGIN";
}

}  // namespace

Params& Params::text(std::string_view value) {
    values_.emplace_back(std::string(value));
    return *this;
}

Params& Params::optional_text(std::string_view value) {
    return value.empty() ? null() : text(value);
}

Params& Params::integer(std::int64_t value) {
    values_.emplace_back(std::to_string(value));
    return *this;
}

Params& Params::boolean(bool value) {
    values_.emplace_back(value ? "t" : "f");
    return *this;
}

Params& Params::null() {
    values_.emplace_back(std::nullopt);
    return *this;
}

std::vector<const char*> Params::pointers() const {
    std::vector<const char*> out;
    out.reserve(values_.size());
    for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
}

Result<Connection> Connection::open(const DatabaseSettings& settings,
                                    std::string_view application_name) {
    const ConnectDefaults d = connect_parameters(settings, application_name);
    std::vector<const char*> keys;
    std::vector<const char*> values;
    for (std::size_t i = 0; i < d.keys.size(); ++i) {
        keys.push_back(d.keys[i].c_str());
        values.push_back(d.values[i].c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);

    PgConn conn(PQconnectdbParams(keys.data(), values.data(), 1));
    if (!conn) return make_transient(Stage::commit, "cannot connect: out of memory");
    if (PQstatus(conn.get()) != CONNECTION_OK) {
        return make_transient(Stage::commit, "cannot connect: " + libpq_message(conn.get()));
    }
    if (auto s = check_server(conn.get()); !s) return s.error();
    return Connection(std::move(conn));
}

Result<PgResult> Connection::checked(PgResult result, std::string_view what) {
    const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
    Error error = pg_error(what, result.get(), conn_.get());
    if (needs_reconnect(error)) broken_ = true;
    return error;
}

Result<PgResult> Connection::exec(const PgStatement& statement, const Params& params) {
    if (!prepared_.contains(statement.name)) {
        PgResult prepared(
            PQprepare(conn_.get(), statement.name, statement.sql, statement.nparams, nullptr));
        auto ok = checked(std::move(prepared), std::string("prepare ") + statement.name);
        if (!ok) return ok.error();
        prepared_.insert(statement.name);
    }
    const auto values = params.pointers();
    PgResult result(PQexecPrepared(conn_.get(), statement.name, params.size(), values.data(),
                                   nullptr, nullptr, 0));
    return checked(std::move(result), statement.name);
}

Result<PgResult> Connection::exec_sql(std::string_view sql, const Params& params) {
    const std::string text(sql);
    const auto values = params.pointers();
    PgResult result(PQexecParams(conn_.get(), text.c_str(), params.size(), nullptr, values.data(),
                                 nullptr, nullptr, 0));
    // The first word names the SQL in errors ("BEGIN", "CREATE", "SELECT").
    return checked(std::move(result), text.substr(0, text.find_first_of(" \n")));
}

bool Connection::broken() const {
    return broken_ || PQstatus(conn_.get()) == CONNECTION_BAD;
}

Status Connection::reset() {
    prepared_.clear();
    PQreset(conn_.get());
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
        broken_ = true;
        return make_transient(Stage::commit, "cannot reconnect: " + libpq_message(conn_.get()));
    }
    if (auto s = check_server(conn_.get()); !s) {
        broken_ = true;
        return s;
    }
    broken_ = false;
    return ok_status();
}

bool Connection::in_transaction() const {
    const auto status = PQtransactionStatus(conn_.get());
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

Transaction::~Transaction() {
    if (open_ && !conn_.broken()) {
        // A failed ROLLBACK leaves the connection marked broken; the pool resets it.
        (void)conn_.exec_sql("ROLLBACK");
    }
}

Status Transaction::begin() {
    auto r = conn_.exec_sql(isolation_sql(isolation_));
    if (!r) return r.error();
    open_ = true;
    return ok_status();
}

Status Transaction::commit() {
    auto r = conn_.exec_sql("COMMIT");
    // Whatever COMMIT returned, the transaction is over: a lost connection may even have
    // committed (design §2.3, "unknown outcome"), and nothing here retries it.
    open_ = false;
    if (!r) return r.error();
    return ok_status();
}

int rows(const PgResult& result) {
    return PQntuples(result.get());
}

std::string value(const PgResult& result, int row, int col) {
    return PQgetvalue(result.get(), row, col);
}

bool is_null(const PgResult& result, int row, int col) {
    return PQgetisnull(result.get(), row, col) != 0;
}

std::int64_t int64(const PgResult& result, int row, int col) {
    const char* text = PQgetvalue(result.get(), row, col);
    std::int64_t out = 0;
    std::from_chars(text, text + std::char_traits<char>::length(text), out);
    return out;
}

bool boolean(const PgResult& result, int row, int col) {
    return PQgetvalue(result.get(), row, col)[0] == 't';
}

std::int64_t affected_rows(const PgResult& result) {
    const char* text = PQcmdTuples(result.get());
    std::int64_t out = 0;
    std::from_chars(text, text + std::char_traits<char>::length(text), out);
    return out;
}

}  // namespace imgspool::pg
