// The PostgreSQL server of the `pg_server` CTest fixture, for tests: where it is, fresh databases
// on it, and outages. Tests using it register with FIXTURES_REQUIRED pg_server, LABELS pg and
// ENVIRONMENT ${IMGSPOOL_TEST_PG_ENV} (IMGSPOOL_TEST_PG_FILE=<the fixture's state file>).
// Failures throw std::runtime_error: a test cannot go on without its server.
#pragma once

#include <string>
#include <string_view>

namespace pg_test {

struct ServerFacts {
    std::string dir;         // the cluster's folder under /tmp
    std::string socket_dir;  // unix socket folder (trust for every role)
    std::string host;        // 127.0.0.1 (scram-sha-256)
    int port = 0;
    std::string user;        // "imgspool": LOGIN, no other rights
    std::string password;    // its random password
    std::string admin_user;  // "postgres", superuser, through the socket only
};

// Read from the file named by IMGSPOOL_TEST_PG_FILE.
ServerFacts server_facts();

// The superuser over the unix socket: "host=<socket dir> port=<port> user=postgres
// dbname=postgres".
std::string admin_conninfo();

// CREATE DATABASE t_<hint>_<random> OWNER imgspool ENCODING UTF8; returns the TCP URL with the test
// role's password, "postgresql://imgspool:<password>@127.0.0.1:<port>/<name>", so tests go
// through scram and the password masking. The database goes with the cluster.
std::string fresh_database(std::string_view hint);

// Outages (pg_ctl, through pg_server.sh): the server, not the folder, stops; same port after.
// They affect every test using the fixture at that moment: register such tests RUN_SERIAL.
void stop_server();
void start_server();
void restart_server();

}  // namespace pg_test
