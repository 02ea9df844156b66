// The fixture's PostgreSQL server stopped for a scope: start() brings it back, and so does the
// end of the scope however the test ends (the tests after it need the server). For tests
// registered RUN_SERIAL (see pg_test_server.hpp).
#pragma once

#include <gtest/gtest.h>

#include <exception>

#include "tests/pg/pg_test_server.hpp"

namespace pg_test {

class StoppedServer {
  public:
    StoppedServer() { stop_server(); }
    ~StoppedServer() {
        if (!stopped_) return;
        try {
            start_server();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "the PostgreSQL test server did not start again: " << e.what();
        }
    }
    StoppedServer(const StoppedServer&) = delete;
    StoppedServer& operator=(const StoppedServer&) = delete;

    void start() {
        stopped_ = false;
        start_server();
    }

  private:
    bool stopped_ = true;
};

}  // namespace pg_test
