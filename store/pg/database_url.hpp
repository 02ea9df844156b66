// The PostgreSQL connection string of [database] url / DATABASE_URL: checked, masked and described
// without ever repeating a password. Both libpq forms are understood: a postgresql:// (or
// postgres://) URI and a "key=value ..." conninfo; parsing is libpq's own (PQconninfoParse).
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool::pg {

// A Stage::config error when libpq cannot parse `url` or it has another scheme (sqlite:, http:).
// `name` says where the value came from ("[database] url" or "DATABASE_URL"); the reason quotes
// keyword names at most, never values.
Status check_database_url(std::string_view url, std::string_view name = "[database] url");

// The same connection string in the same form with password and sslpassword shown as "****":
//   postgresql://imgspool:****@db:5432/imgspool?sslmode=require
//   host=db user=imgspool password=**** dbname=imgspool
// An unparsable string gives "(unparsable connection string)".
std::string masked_database_url(std::string_view url);

// The only form fit for a log line: "host=db port=5432 dbname=imgspool user=imgspool" (keys that
// are not set are left out; sslmode is added when set). "(libpq defaults)" when none is set.
std::string describe_database(std::string_view url);

}  // namespace imgspool::pg
