// Helpers both job record backends share: the ISO timestamps every timestamp column holds,
// and the checks made before a request is written.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "store/job_records.hpp"

namespace imgspool {

// Timestamps as every timestamp column holds them: "2026-11-22T03:04:05.123Z" (UTC).
std::string iso_utc(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_iso_utc(const std::string& text);

// The metadata column holds a JSON object or nothing; checked before writing so the reason says
// which job and what was wrong (Stage::validate).
Status check_metadata(const std::string& upload_id, const std::string& metadata_json);

// The host name, the node a SQLite job record writes as when nobody names one ("localhost" when
// the host name cannot be read: one daemon per SQLite file, so the name only labels rows).
std::string local_node_name();

// What the nodes table says about the process holding a node name.
struct NodeHolder {
    std::string host, state_dir, state;
    std::int64_t pid = 0;
    bool silent = false;  // alive, but its heartbeat is older than its lease_s (database clock)
    std::int64_t heartbeat_age_s = 0;
};

// Whether `me` may take `node` from its holder (JobDb::register_node); the refusal otherwise, a
// permanent Stage::config error naming the holder's host, pid and heartbeat age.
Status may_take_node(const std::string& node, const NodeHolder& holder, const NodeRegistration& me);

// The row of a job that belongs to another node: "the job now belongs to node b (adopted from
// a)", without the parenthesis when it was never adopted.
std::string owned_by(const std::string& node, const std::string& adopted_from);

}  // namespace imgspool
