#include "store/pg/database_url.hpp"

#include <libpq-fe.h>

#include <cctype>
#include <memory>
#include <set>

namespace imgspool::pg {

namespace {

struct OptionsFree {
    void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};
using Options = std::unique_ptr<PQconninfoOption, OptionsFree>;

bool is_uri(std::string_view url) {
    return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

// "sqlite:/x", "http://h": a URI scheme other than libpq's. A key=value conninfo has no ':' in
// its first keyword.
bool has_other_scheme(std::string_view url) {
    std::size_t i = 0;
    while (i < url.size() && (std::isalnum(static_cast<unsigned char>(url[i])) || url[i] == '+' ||
                              url[i] == '-' || url[i] == '.'))
        ++i;
    return i > 0 && i < url.size() && url[i] == ':' && !is_uri(url);
}

bool is_secret(std::string_view keyword) {
    return keyword == "password" || keyword == "sslpassword";
}

// Every keyword libpq knows ("host", "sslmode", ...): the only quoted words an error may keep.
std::set<std::string, std::less<>> keywords() {
    std::set<std::string, std::less<>> names;
    Options all(PQconninfoParse("", nullptr));
    for (auto* o = all.get(); o && o->keyword; ++o) names.insert(o->keyword);
    return names;
}

// libpq's parse errors quote pieces of the input ('invalid percent-encoded token: "s3cr%zz"'),
// which may be a password: every quoted piece that is not a keyword becomes "…".
std::string without_values(std::string_view message) {
    const auto names = keywords();
    std::string out;
    std::size_t i = 0;
    while (i < message.size()) {
        const auto open = message.find('"', i);
        const auto close = open == std::string_view::npos ? open : message.find('"', open + 1);
        if (close == std::string_view::npos) {
            out += message.substr(i);
            break;
        }
        out += message.substr(i, open - i);
        const auto quoted = message.substr(open + 1, close - open - 1);
        out += names.contains(quoted) ? "\"" + std::string(quoted) + "\"" : "\"…\"";
        i = close + 1;
    }
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    return out;
}

Result<Options> parse(std::string_view url) {
    const std::string text(url);
    char* message = nullptr;
    Options options(PQconninfoParse(text.c_str(), &message));
    if (options) return options;
    std::string why = message ? without_values(message) : "libpq could not parse it";
    PQfreemem(message);
    return make_error(Stage::config, std::move(why));
}

const char* value_of(const Options& options, std::string_view keyword) {
    for (auto* o = options.get(); o->keyword; ++o) {
        if (keyword == o->keyword) return o->val && *o->val ? o->val : nullptr;
    }
    return nullptr;
}

std::string percent_encoded(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

// A conninfo value, quoted when libpq needs it to be ("a b", "", "it's").
std::string conninfo_value(std::string_view value) {
    const bool plain = !value.empty() && value.find_first_of(" \t\n'\\") == std::string_view::npos;
    if (plain) return std::string(value);
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

std::string masked_conninfo(const Options& options) {
    std::string out;
    for (auto* o = options.get(); o->keyword; ++o) {
        if (!o->val) continue;
        if (!out.empty()) out += ' ';
        out += std::string(o->keyword) + "=" +
               (is_secret(o->keyword) ? "****" : conninfo_value(o->val));
    }
    return out;
}

std::string masked_uri(const Options& options) {
    const char* user = value_of(options, "user");
    const char* host = value_of(options, "host");
    const char* port = value_of(options, "port");
    const char* dbname = value_of(options, "dbname");
    // A single host name or address goes in the authority; socket paths and host lists stay
    // query parameters, which libpq accepts as well.
    const bool host_in_authority =
        host && host[0] != '/' && std::string_view(host).find(',') == std::string_view::npos &&
        (!port || std::string_view(port).find(',') == std::string_view::npos);

    std::string out = "postgresql://";
    if (user || value_of(options, "password")) {
        if (user) out += percent_encoded(user);
        if (value_of(options, "password")) out += ":****";
        out += '@';
    }
    if (host_in_authority) {
        const bool ipv6 = std::string_view(host).find(':') != std::string_view::npos;
        out += ipv6 ? "[" + std::string(host) + "]" : percent_encoded(host);
        if (port) out += ":" + std::string(port);
    }
    out += '/';
    if (dbname) out += percent_encoded(dbname);

    char separator = '?';
    for (auto* o = options.get(); o->keyword; ++o) {
        const std::string_view key = o->keyword;
        if (!o->val || key == "user" || key == "dbname" || key == "password") continue;
        if (host_in_authority && (key == "host" || key == "port")) continue;
        out += separator;
        out += std::string(key) + "=" + (is_secret(key) ? "****" : percent_encoded(o->val));
        separator = '&';
    }
    return out;
}

}  // namespace

Status check_database_url(std::string_view url, std::string_view name) {
    const std::string where(name);
    if (url.empty()) {
        return make_error(Stage::config, where + " is empty (leave it out for SQLite)");
    }
    if (has_other_scheme(url)) {
        return make_error(Stage::config,
                          where +
                              " must be a postgresql:// (or postgres://) URL or a key=value "
                              "connection string; an empty value means SQLite");
    }
    auto parsed = parse(url);
    if (!parsed) {
        return make_error(Stage::config, where + " is not a valid PostgreSQL connection string: " +
                                             parsed.error().reason);
    }
    return ok_status();
}

std::string masked_database_url(std::string_view url) {
    auto parsed = parse(url);
    if (!parsed || has_other_scheme(url)) return "(unparsable connection string)";
    return is_uri(url) ? masked_uri(*parsed) : masked_conninfo(*parsed);
}

std::string describe_database(std::string_view url) {
    auto parsed = parse(url);
    if (!parsed) return "(unparsable connection string)";
    std::string out;
    for (const char* key : {"host", "hostaddr", "port", "dbname", "user", "sslmode"}) {
        const char* value = value_of(*parsed, key);
        if (!value) continue;
        if (!out.empty()) out += ' ';
        out += std::string(key) + "=" + value;
    }
    return out.empty() ? "(libpq defaults)" : out;
}

}  // namespace imgspool::pg
