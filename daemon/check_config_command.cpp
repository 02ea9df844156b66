// `imgspool check-config`: the effective configuration (secrets masked), a store check and, for
// PostgreSQL, a database check that connects and reads the schema version without changing it.
#include <cstdio>
#include <string>

#include <vips/vips.h>

#include "daemon/commands.hpp"
#include "daemon/open_job_db.hpp"
#include "daemon/runtime.hpp"
#include "pipeline/profile.hpp"
#include "store/pg/database_url.hpp"
#include "store/pg/pg_handles.hpp"
#include "store/pg/pg_schema.hpp"

namespace imgspool {
namespace {

// A database older than this build is migrated by the next `imgspool run`; a newer one is
// refused by it, so it fails the check.
int check_database(const Config& config) {
    const std::string where = "postgresql " + pg::describe_database(config.database.url);
    auto conn = pg::Connection::open(config.database, "imgspool/check-config");
    if (!conn) {
        std::fprintf(stderr, "imgspool: database %s: %s\n", where.c_str(),
                     conn.error().message().c_str());
        return 1;
    }
    auto schema = pg::read_schema_info(*conn);
    if (!schema) {
        std::fprintf(stderr, "imgspool: database %s: %s\n", where.c_str(),
                     schema.error().message().c_str());
        return 1;
    }
    const int mine = pg::pg_schema_version();
    if (schema->version > mine) {
        std::fprintf(stderr,
                     "imgspool: database %s has schema version %d, newer than this imgspool "
                     "understands (%d); upgrade imgspool\n",
                     where.c_str(), schema->version, mine);
        return 1;
    }
    if (schema->version == 0) {
        std::fprintf(stderr,
                     "imgspool: database %s reachable, no imgspool tables yet (run creates "
                     "them)\n",
                     where.c_str());
    } else if (schema->version < mine) {
        std::fprintf(stderr,
                     "imgspool: database %s reachable, schema version %d (run migrates it "
                     "to %d)\n",
                     where.c_str(), schema->version, mine);
    } else {
        std::fprintf(stderr, "imgspool: database %s reachable, schema version %d\n", where.c_str(),
                     schema->version);
    }
    return 0;
}

// Which optional encoders this libvips has; a profile that needs a missing one was refused when
// the config was read.
void report_encoders() {
    const Encoders& e = available_encoders();
    std::fprintf(stderr, "imgspool: libvips %s encodes AVIF: %s; GIF: %s\n", vips_version_string(),
                 e.avif ? "yes" : "no (profiles cannot list \"avif\")",
                 e.gif ? "yes" : "no (profiles cannot list \"gif\")");
}

}  // namespace

int check_config(Config config) {
    std::printf("%s", describe_config(config).c_str());
    report_encoders();
    if (uses_postgresql(config)) {
        if (int rc = check_database(config); rc != 0) return rc;
    }
    auto store = make_store(config.store);
    if (!store) {
        std::fprintf(stderr, "imgspool: %s\n", store.error().message().c_str());
        return 1;
    }
    if (Status st = store.value()->check(); !st) {
        std::fprintf(stderr, "imgspool: store %s: %s\n", store.value()->describe().c_str(),
                     st.error().message().c_str());
        return 1;
    }
    std::fprintf(stderr, "imgspool: config OK; store %s reachable\n",
                 store.value()->describe().c_str());
    return 0;
}

}  // namespace imgspool
