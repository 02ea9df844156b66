#include "store/pg/pg_errors.hpp"

#include <string>

namespace imgspool::pg {

namespace {

constexpr std::string_view kSqlstateTag = " (SQLSTATE ";
// Errors libpq makes itself carry no SQLSTATE; a lost connection is tagged so that
// needs_reconnect() can tell it from a permanent client-side error.
constexpr std::string_view kConnectionLost = " (connection lost)";

// "could not send data\nserver closed the connection unexpectedly\n" → one line.
std::string one_line(const char* message) {
    std::string out;
    for (const char* c = message; c && *c; ++c) {
        if (*c == '\n') {
            if (c[1]) out += "; ";
        } else {
            out += *c;
        }
    }
    return out.empty() ? "no message from libpq" : out;
}

}  // namespace

std::string libpq_message(const PGconn* conn) {
    return one_line(conn ? PQerrorMessage(conn) : nullptr);
}

Handling classify_sqlstate(std::string_view s, bool connection_bad) {
    if (s.size() != 5) return connection_bad ? Handling::reconnect : Handling::permanent;
    const std::string_view cls = s.substr(0, 2);
    if (cls == "08") return Handling::reconnect;
    if (s == "40001" || s == "40P01") return Handling::retry_in_place;
    if (s == "57P01" || s == "57P02" || s == "57P03" || s == "25P03") return Handling::reconnect;
    if (cls == "53" || cls == "58") return Handling::transient;
    if (s == "55P03" || s == "57014" || s == "40003") return Handling::transient;
    // Auth, a missing database, revoked rights: fatal when open() meets them (the pool reports
    // them as configuration errors), transient afterwards so that a changed password defers jobs.
    if (cls == "28" || s == "3D000" || s == "42501") return Handling::transient;
    return connection_bad ? Handling::reconnect : Handling::permanent;
}

Error pg_error(std::string_view what, const PGresult* result, const PGconn* conn) {
    const bool bad = conn && PQstatus(conn) == CONNECTION_BAD;
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;

    std::string reason(what);
    reason += ": ";
    if (primary) {
        reason += one_line(primary);
    } else if (result && *PQresultErrorMessage(result)) {
        reason += one_line(PQresultErrorMessage(result));
    } else {
        reason += one_line(conn ? PQerrorMessage(conn) : nullptr);
    }
    const Handling handling = classify_sqlstate(state ? state : "", bad);
    if (state && *state) {
        reason += std::string(kSqlstateTag) + state + ")";
    } else if (handling == Handling::reconnect) {
        reason += kConnectionLost;
    }
    if (handling == Handling::permanent) return make_error(Stage::commit, std::move(reason));
    return make_transient(Stage::commit, std::move(reason));
}

std::string_view sqlstate_of(const Error& error) {
    const std::string_view reason = error.reason;
    const auto at = reason.rfind(kSqlstateTag);
    if (at == std::string_view::npos || !reason.ends_with(')')) return {};
    const auto state = reason.substr(at + kSqlstateTag.size());
    return state.size() == 6 ? state.substr(0, 5) : std::string_view{};
}

bool is_retry_in_place(const Error& error) {
    const auto state = sqlstate_of(error);
    return !state.empty() && classify_sqlstate(state, false) == Handling::retry_in_place;
}

bool needs_reconnect(const Error& error) {
    if (std::string_view(error.reason).ends_with(kConnectionLost)) return true;
    const auto state = sqlstate_of(error);
    return !state.empty() && classify_sqlstate(state, false) == Handling::reconnect;
}

}  // namespace imgspool::pg
