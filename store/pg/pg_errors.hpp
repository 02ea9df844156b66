// Which PostgreSQL failures pass by themselves (design §2.4), and error texts without secrets:
// "<what>: <primary message> (SQLSTATE 40001)". The conninfo is never part of a text; libpq's own
// messages name host and port at most, never the password.
#pragma once

#include <libpq-fe.h>

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool::pg {

enum class Handling {
    permanent,       // constraint, data or SQL errors: the same call would fail again
    transient,       // resources, timeouts, locks, auth after start: defer and try later
    reconnect,       // the session is gone (08***, 57P01..03, 25P03): transient, and reset it
    retry_in_place,  // 40001, 40P01: run the whole transaction again at once
};

// `sqlstate` is PG_DIAG_SQLSTATE, or "" for errors libpq made itself; those are judged by
// `connection_bad` (PQstatus == CONNECTION_BAD): reconnect, else permanent.
Handling classify_sqlstate(std::string_view sqlstate, bool connection_bad);

// A Stage::commit error for a failed call: transient unless classify_sqlstate says permanent.
// `result` may be null (libpq returned no result: out of memory or the connection is gone).
Error pg_error(std::string_view what, const PGresult* result, const PGconn* conn);

// PQerrorMessage(conn) on one line ("connection to server at "127.0.0.1", port 5432 failed:
// FATAL:  password authentication failed for user "imgspool"").
std::string libpq_message(const PGconn* conn);

// The SQLSTATE an Error made by pg_error carries ("" when it has none).
std::string_view sqlstate_of(const Error& error);

// 40001 serialization_failure, 40P01 deadlock_detected: the transaction lost a race.
bool is_retry_in_place(const Error& error);

// The session behind the error is gone: the connection must be reset before its next use.
bool needs_reconnect(const Error& error);

}  // namespace imgspool::pg
