#include "tests/pg/pg_test_server.hpp"

#include <libpq-fe.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>

namespace pg_test {

namespace {

std::string state_file() {
    const char* path = std::getenv("IMGSPOOL_TEST_PG_FILE");
    if (!path || !*path) {
        throw std::runtime_error(
            "IMGSPOOL_TEST_PG_FILE is not set: run this test through ctest (fixture pg_server), "
            "or start a server by hand with tests/pg/pg_server.sh start <file> "
            "/usr/lib/postgresql/15/bin and set IMGSPOOL_TEST_PG_FILE=<file>");
    }
    return path;
}

std::map<std::string, std::string> read_state() {
    const std::string path = state_file();
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read the PostgreSQL test server's file " + path);
    std::map<std::string, std::string> values;
    for (std::string line; std::getline(in, line);) {
        const auto eq = line.find('=');
        if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return values;
}

void run_script(const char* command) {
    const std::string line = std::string("bash '") + IMGSPOOL_PG_SERVER_SCRIPT + "' " + command +
                             " '" + state_file() + "'";
    if (std::system(line.c_str()) != 0) throw std::runtime_error("failed: " + line);
}

struct ConnFinish {
    void operator()(PGconn* conn) const { PQfinish(conn); }
};

// "Fresh Db-1" → "fresh_db_1", kept short: names are at most 63 bytes.
std::string identifier_part(std::string_view hint) {
    std::string out;
    for (char c : hint.substr(0, 30)) {
        out += std::isalnum(static_cast<unsigned char>(c))
                   ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                   : '_';
    }
    return out.empty() ? "db" : out;
}

}  // namespace

ServerFacts server_facts() {
    auto v = read_state();
    ServerFacts facts;
    facts.dir = v["PG_DIR"];
    facts.socket_dir = v["PG_SOCKET_DIR"];
    facts.host = v["PG_HOST"];
    facts.port = std::atoi(v["PG_PORT"].c_str());
    facts.user = v["PG_USER"];
    facts.password = v["PG_PASSWORD"];
    facts.admin_user = v["PG_ADMIN_USER"];
    if (facts.port == 0 || facts.socket_dir.empty() || facts.password.empty()) {
        throw std::runtime_error("the PostgreSQL test server's file " + state_file() +
                                 " is incomplete");
    }
    return facts;
}

std::string admin_conninfo() {
    const auto f = server_facts();
    return "host=" + f.socket_dir + " port=" + std::to_string(f.port) + " user=" + f.admin_user +
           " dbname=postgres";
}

std::string fresh_database(std::string_view hint) {
    const auto f = server_facts();
    std::random_device random;
    const std::string name =
        "t_" + identifier_part(hint) + "_" + std::to_string(random() % 100000000u);

    std::unique_ptr<PGconn, ConnFinish> conn(PQconnectdb(admin_conninfo().c_str()));
    if (PQstatus(conn.get()) != CONNECTION_OK) {
        throw std::runtime_error(std::string("cannot reach the test server as superuser: ") +
                                 PQerrorMessage(conn.get()));
    }
    const std::string sql =
        "CREATE DATABASE " + name + " OWNER " + f.user + " TEMPLATE template0 ENCODING 'UTF8'";
    PGresult* result = PQexec(conn.get(), sql.c_str());
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    const std::string message = PQresultErrorMessage(result);
    PQclear(result);
    if (!ok) throw std::runtime_error(sql + ": " + message);
    return "postgresql://" + f.user + ":" + f.password + "@" + f.host + ":" +
           std::to_string(f.port) + "/" + name;
}

void stop_server() {
    run_script("stop-server");
}

void start_server() {
    run_script("start-server");
}

void restart_server() {
    run_script("restart-server");
}

}  // namespace pg_test
