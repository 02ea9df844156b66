#include "store/job_db_common.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

namespace imgspool {

std::string iso_utc(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const std::time_t secs = system_clock::to_time_t(t);
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];  // room for any int the format could print
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

std::optional<std::chrono::system_clock::time_point> parse_iso_utc(const std::string& text) {
    std::tm tm{};
    int ms = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::time_t secs = timegm(&tm);
    if (secs == -1) return std::nullopt;
    return std::chrono::system_clock::from_time_t(secs) + std::chrono::milliseconds(ms);
}

// The CHECK on the column only knows valid JSON; the request must hold an object.
Status check_metadata(const std::string& upload_id, const std::string& metadata_json) {
    if (metadata_json.empty()) return ok_status();
    const auto value = nlohmann::json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
    if (!value.is_object()) {
        return make_error(Stage::validate,
                          "metadata of upload " + upload_id + " must be a JSON object");
    }
    return ok_status();
}

std::string local_node_name() {
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') return "localhost";
    return host.data();
}

Status may_take_node(const std::string& node, const NodeHolder& holder,
                     const NodeRegistration& me) {
    if (holder.state == "stopped" || holder.silent) return ok_status();
    if (holder.host == me.host) {
        // This process holds the state_dir's exclusive lock: its previous holder is dead (a
        // restart). Another state_dir on this host is another daemon, dead only if its pid is.
        if (holder.state_dir == me.state_dir) return ok_status();
        if (holder.pid > 0 && ::kill(static_cast<pid_t>(holder.pid), 0) != 0 && errno == ESRCH) {
            return ok_status();
        }
    }
    return make_error(Stage::config, "node \"" + node + "\" is alive on host " + holder.host +
                                         " (pid " + std::to_string(holder.pid) + ", heartbeat " +
                                         std::to_string(holder.heartbeat_age_s) +
                                         " s ago); give this host another [daemon] node");
}

std::string owned_by(const std::string& node, const std::string& adopted_from) {
    std::string text = "the job now belongs to node " + node;
    if (!adopted_from.empty()) text += " (adopted from " + adopted_from + ")";
    return text;
}

}  // namespace imgspool
