// One daemon per PostgreSQL database, until nodes share one (issue 13): the database's twin of
// the spool lock. Recovery at start judges every unfinished row as this daemon's, and the
// waiting_files table is replaced whole, so a second daemon on the same database would fail the
// first one's jobs. The lock is a session-level advisory lock on a connection of its own, held
// while the daemon runs; a lost session loses it, so check() takes it again.
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "store/pg/database_settings.hpp"
#include "store/pg/pg_handles.hpp"

namespace imgspool {

class DatabaseLock {
  public:
    // Stage::config error naming the holder (its application_name and address) when another
    // daemon has the database.
    static Result<std::unique_ptr<DatabaseLock>> take(const pg::DatabaseSettings& settings,
                                                      const std::string& node);
    // Still held, or taken again after the session was lost; an error while the server does not
    // answer (transient) or once another daemon took the database meanwhile (permanent).
    Status check();

  private:
    DatabaseLock(pg::Connection conn, std::string where);
    static Status try_lock(pg::Connection& conn, const std::string& where);

    pg::Connection conn_;
    std::string where_;  // "postgresql host=… dbname=…", no secrets
};

}  // namespace imgspool
