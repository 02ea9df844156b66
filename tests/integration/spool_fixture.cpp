#include "tests/integration/spool_fixture.hpp"

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/integration/images.hpp"
#include "tests/pg/pg_test_server.hpp"

namespace imgspool::it {
namespace {

std::string toml_quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// sqlite3* with an owner.
struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

struct PgConnCloser {
    void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultClearer {
    void operator()(PGresult* r) const { PQclear(r); }
};

// Type OIDs from pg_type.h (server headers are not installed with libpq).
constexpr Oid kBoolOid = 16;
constexpr Oid kJsonOid = 114;
constexpr Oid kTimestamptzOid = 1184;
constexpr Oid kJsonbOid = 3802;

// The test's SQL with SQLite's ?N placeholders as PostgreSQL's $N (a bare ? counts on from the
// last number, as SQLite does); quoted text is left alone.
std::string dollar_params(const std::string& sql) {
    std::string out;
    bool quoted = false;
    int last = 0;
    for (size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (c == '\'') quoted = !quoted;
        if (quoted || c != '?') {
            out += c;
            continue;
        }
        size_t end = i + 1;
        while (end < sql.size() && std::isdigit(static_cast<unsigned char>(sql[end]))) ++end;
        last = end > i + 1 ? std::stoi(sql.substr(i + 1, end - i - 1)) : last + 1;
        out += "$" + std::to_string(last);
        i = end - 1;
    }
    return out;
}

// "2026-11-22 03:04:05.123456+00" (DateStyle ISO, TimeZone UTC) as SQLite's
// "2026-11-22T03:04:05.123Z": milliseconds truncated like imgspool_iso's to_char.
std::string iso_from_pg(const std::string& text) {
    if (text.size() < 19) return text;
    std::string ms = "000";
    if (text.size() > 20 && text[19] == '.') {
        for (size_t i = 0; i < 3 && 20 + i < text.size() &&
                           std::isdigit(static_cast<unsigned char>(text[20 + i]));
             ++i)
            ms[i] = text[20 + i];
    }
    return text.substr(0, 10) + "T" + text.substr(11, 8) + "." + ms + "Z";
}

// A PostgreSQL value as the text the SQLite reader would give for the same column.
std::string sqlite_text(Oid type, const std::string& value) {
    if (type == kBoolOid) return value == "t" ? "1" : "0";
    if (type == kTimestamptzOid) return iso_from_pg(value);
    if (type == kJsonbOid || type == kJsonOid) {
        const auto parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
        return parsed.is_discarded() ? value : parsed.dump();
    }
    return value;
}

}  // namespace

std::vector<Row> pg_rows(const std::string& url, const std::string& sql,
                         const std::vector<std::string>& params) {
    std::vector<Row> rows;
    std::unique_ptr<PGconn, PgConnCloser> conn(PQconnectdb(url.c_str()));
    if (PQstatus(conn.get()) != CONNECTION_OK) return rows;
    std::unique_ptr<PGresult, PgResultClearer> set(
        PQexec(conn.get(), "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'"));
    if (PQresultStatus(set.get()) != PGRES_COMMAND_OK) return rows;
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    const std::string pg_sql = dollar_params(sql);
    std::unique_ptr<PGresult, PgResultClearer> res(
        PQexecParams(conn.get(), pg_sql.c_str(), static_cast<int>(values.size()), nullptr,
                     values.data(), nullptr, nullptr, 0));
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
        const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
        const std::string sqlstate = state ? state : "";
        // 42P01 undefined_table: not created yet; class 08 / 57P: the server is going away.
        if (sqlstate != "42P01" && sqlstate.rfind("08", 0) != 0 && sqlstate.rfind("57P", 0) != 0)
            ADD_FAILURE() << "query failed: " << PQresultErrorMessage(res.get()) << "\n" << pg_sql;
        return rows;
    }
    for (int r = 0; r < PQntuples(res.get()); ++r) {
        Row row;
        for (int c = 0; c < PQnfields(res.get()); ++c) {
            row[PQfname(res.get(), c)] =
                PQgetisnull(res.get(), r, c)
                    ? ""
                    : sqlite_text(PQftype(res.get(), c), PQgetvalue(res.get(), r, c));
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

namespace {

std::string last_lines(const std::string& text, size_t n) {
    size_t pos = text.size();
    for (size_t i = 0; i <= n; ++i) {
        if (pos == 0) return text;
        pos = text.rfind('\n', pos - 1);
        if (pos == std::string::npos) return text;
    }
    return "...\n" + text.substr(pos + 1);
}

}  // namespace

void SpoolFixture::SetUp() {
    std::string pattern = (stdfs::temp_directory_path() / "imgspool-it-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp failed";
    root_ = pattern;
    stdfs::create_directories(outside());
    const char* backend = std::getenv("IMGSPOOL_TEST_DATABASE");
    const std::string name = backend ? backend : "";
    if (name == "postgres") {
        database_url_ = pg_test::fresh_database("it");
    } else {
        ASSERT_TRUE(name.empty() || name == "sqlite")
            << "IMGSPOOL_TEST_DATABASE must be sqlite or postgres, not " << name;
    }
    write_config(DaemonConfig{});
}

void SpoolFixture::TearDown() {
    if (daemon_) daemon_->kill_now();
    if (HasFailure()) {
        std::cerr << "---- imgspool log (" << log_path().string() << ", last lines) ----\n"
                  << last_lines(daemon_log(), 250) << "\n---- files ----\n"
                  << tree() << "---- end ----\n";
    }
    std::error_code ec;
    stdfs::remove_all(root_, ec);
}

std::string SpoolFixture::config_text(const DaemonConfig& c) const {
    std::ostringstream t;
    t << "[daemon]\n"
      << "state_dir = " << toml_quote(state_dir().string()) << "\n"
      << "workers = " << c.workers << "\n"
      << "settle_ms = " << c.settle_ms << "\n"
      << "rescan_s = " << c.rescan_s << "\n"
      << "queue_max = " << c.queue_max << "\n";
    for (const auto& [key, value] : c.daemon) t << key << " = " << value << "\n";
    t << "\n[[spool]]\n"
      << "name = \"main\"\n"
      << "root = " << toml_quote(spool_root().string()) << "\n"
      << "profile = " << toml_quote(c.profile) << "\n\n"
      << "[store]\n";
    if (c.store_toml.empty()) {
        t << "kind = \"local\"\n"
          << "path = " << toml_quote(objects().string()) << "\n"
          << "public_base_url = " << toml_quote(kCdn) << "\n";
    } else {
        t << c.store_toml << "\n";
    }
    if (!c.limits.empty()) {
        t << "\n[limits]\n";
        for (const auto& [key, value] : c.limits) t << key << " = " << value << "\n";
    }
    t << c.extra_toml;
    if (on_postgres()) t << "\n[database]\nurl = " << toml_quote(database_url_) << "\n";
    return t.str();
}

void SpoolFixture::write_config(const DaemonConfig& config) {
    write_file(config_path(), config_text(config));
}

void SpoolFixture::start_daemon() {
    if (daemon_) daemon_->kill_now();
    {
        std::ofstream log(log_path(), std::ios::app);
        log << "==== test harness: starting imgspool run (start #" << ++starts_ << ") ====\n";
    }
    daemon_ = std::make_unique<ChildProcess>(
        imgspool_binary(), std::vector<std::string>{"run", "-c", config_path().string()},
        log_path(), log_path(), daemon_env_);
}

void SpoolFixture::kill_daemon() {
    if (daemon_) daemon_->kill_now();
}

void SpoolFixture::wait_until_watching(const std::string& probe_name) {
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }))
        << "the daemon did not create " << inbox();
    write_file(inbox() / probe_name, make_jpeg({.width = 400, .height = 300, .seed = 9999}));
    ASSERT_TRUE(wait_complete(probe_name).has_value())
        << "the probe " << probe_name << " was not processed";
}

void write_file(const stdfs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot create " + path.string());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const stdfs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool SpoolFixture::wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (done()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
}

std::vector<std::string> SpoolFixture::files_under(const stdfs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!stdfs::is_directory(dir, ec)) return out;
    for (auto it = stdfs::recursive_directory_iterator(dir, ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
        const stdfs::file_status st = it->symlink_status(ec);
        if (ec) continue;  // vanished while listing (the daemon moves files)
        if (stdfs::is_directory(st)) continue;
        out.push_back(stdfs::relative(it->path(), dir).string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<Row> SpoolFixture::query(const std::string& sql,
                                     const std::vector<std::string>& params) {
    if (on_postgres()) return pg_rows(database_url_, sql, params);
    std::vector<Row> rows;
    std::error_code ec;
    if (!stdfs::exists(db_path(), ec)) return rows;
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(db_path().c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
    std::unique_ptr<sqlite3, DbCloser> db(raw);
    if (rc != SQLITE_OK) return rows;
    sqlite3_busy_timeout(db.get(), 5000);
    sqlite3_stmt* stmt_raw = nullptr;
    if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &stmt_raw, nullptr) != SQLITE_OK) {
        // A schema not created yet is normal early on; anything else is a test bug.
        const std::string msg = sqlite3_errmsg(db.get());
        if (msg.find("no such table") == std::string::npos) {
            ADD_FAILURE() << "query failed: " << msg << "\n" << sql;
        }
        return rows;
    }
    std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt(stmt_raw);
    for (size_t i = 0; i < params.size(); ++i) {
        sqlite3_bind_text(stmt.get(), static_cast<int>(i + 1), params[i].c_str(), -1,
                          SQLITE_TRANSIENT);
    }
    int step;
    while ((step = sqlite3_step(stmt.get())) == SQLITE_ROW) {
        Row row;
        for (int c = 0; c < sqlite3_column_count(stmt.get()); ++c) {
            const unsigned char* text = sqlite3_column_text(stmt.get(), c);
            row[sqlite3_column_name(stmt.get(), c)] =
                text ? reinterpret_cast<const char*>(text) : "";
        }
        rows.push_back(std::move(row));
    }
    if (step != SQLITE_DONE) rows.clear();  // busy: the caller polls again
    return rows;
}

std::vector<Row> SpoolFixture::jobs_for(const std::string& source_name) {
    return query("SELECT * FROM upload_jobs WHERE source_name = ?1 ORDER BY created_at, id",
                 {source_name});
}

std::optional<Row> SpoolFixture::job(const std::string& upload_id) {
    auto rows = query("SELECT * FROM upload_jobs WHERE id = ?1", {upload_id});
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

std::optional<Row> SpoolFixture::finished_job(const std::string& source_name) {
    auto rows = query(
        "SELECT * FROM upload_jobs WHERE source_name = ?1 AND status IN ('complete', 'failed') "
        "ORDER BY updated_at DESC, id LIMIT 1",
        {source_name});
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

std::optional<Row> SpoolFixture::wait_complete(const std::string& relative,
                                               std::chrono::milliseconds t) {
    std::optional<Row> found;
    wait_for(
        [&] {
            if (!stdfs::exists(done() / relative)) return false;
            found = finished_job(relative);
            return found && (*found)["status"] == "complete";
        },
        t);
    if (found && (*found)["status"] != "complete") return std::nullopt;
    if (!stdfs::exists(done() / relative)) return std::nullopt;
    return found;
}

std::optional<Row> SpoolFixture::wait_failed(const std::string& relative,
                                             std::chrono::milliseconds t) {
    std::optional<Row> found;
    const bool ok = wait_for(
        [&] {
            if (!stdfs::exists(stdfs::symlink_status(failed() / relative))) return false;
            if (!stdfs::exists(failed() / (relative + ".error.json"))) return false;
            found = finished_job(relative);
            return found && (*found)["status"] == "failed";
        },
        t);
    if (!ok) return std::nullopt;
    return found;
}

std::string SpoolFixture::daemon_log() const {
    std::ifstream in(log_path(), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string SpoolFixture::tree() const {
    std::ostringstream out;
    std::error_code ec;
    for (auto it = stdfs::recursive_directory_iterator(root_, ec);
         !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
        const auto rel = stdfs::relative(it->path(), root_).string();
        if (rel.rfind("objects/", 0) == 0 && it.depth() > 2) continue;  // one line per upload
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) != 0) continue;
        const char* kind = S_ISDIR(st.st_mode)    ? "dir "
                           : S_ISLNK(st.st_mode)  ? "link"
                           : S_ISFIFO(st.st_mode) ? "fifo"
                                                  : "file";
        out << kind << " " << rel;
        if (S_ISREG(st.st_mode)) out << " (" << st.st_size << " bytes)";
        out << "\n";
    }
    return out.str();
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
    std::vector<nlohmann::json> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
    }
    return lines;
}

nlohmann::json read_json(const stdfs::path& path) {
    return nlohmann::json::parse(read_file(path));
}

bool contains_any(const std::string& text, const std::vector<std::string>& needles) {
    std::string lower = text;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return std::any_of(needles.begin(), needles.end(),
                       [&](const std::string& n) { return lower.find(n) != std::string::npos; });
}

std::string sha256_hex(const std::string& bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 0xF];
    }
    return out;
}

}  // namespace imgspool::it
