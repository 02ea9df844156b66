#include "store/pg/database_settings.hpp"

#include "store/pg/database_url.hpp"

namespace imgspool::pg {

namespace {

Status check_range(const char* key, int value, int low, int high, const char* extra = "") {
    if (value >= low && value <= high) return ok_status();
    return make_error(Stage::config, std::string("[database] ") + key + " must be " + extra +
                                         std::to_string(low) + ".." + std::to_string(high) +
                                         ", not " + std::to_string(value));
}

}  // namespace

Status validate(const DatabaseSettings& settings) {
    if (!settings.url.empty()) {
        if (auto url = check_database_url(settings.url); !url) return url;
    }
    if (settings.pool_size != 0) {
        if (auto s = check_range("pool_size", settings.pool_size, 2, 256, "0 (workers + 3) or ");
            !s)
            return s;
    }
    if (auto s = check_range("connect_timeout_s", settings.connect_timeout_s, 1, 60); !s) return s;
    return check_range("statement_timeout_s", settings.statement_timeout_s, 1, 600);
}

}  // namespace imgspool::pg
