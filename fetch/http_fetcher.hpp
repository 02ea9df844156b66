// GET of an http(s):// source with libcurl, safe against server-side request forgery: every
// address curl is about to connect to is checked against the address policy before the socket
// exists, redirects are followed by hand (each hop checked again), the answer is capped at
// max_bytes while it streams, and the whole fetch has one deadline.
#pragma once

#include <cstdint>
#include <string>

#include "common/error.hpp"
#include "common/progress_tracker.hpp"
#include "fetch/fetch_settings.hpp"
#include "fetch/source_url.hpp"

namespace imgspool::fetch {

struct Fetched {
    std::string bytes;
    std::string final_url;     // the URL of the last hop
    std::string content_type;  // as the origin said; for logs only (formats are sniffed)
    int hops = 0;              // redirects followed
    std::string connected_ip;  // the peer of the last hop
};

// Stage::fetch errors. Transient: timeouts, 5xx/408/429, connections that fail or are cut, a
// name that does not resolve. Permanent: refusals by the policy, answers over max_bytes, other
// 4xx, too many redirects, bad redirect targets. `beat` (may be null) beats while data moves.
Result<Fetched> fetch_http(const SourceUrl& url, const FetchSettings& settings,
                           std::uint64_t max_bytes, Heartbeat* beat);

}  // namespace imgspool::fetch
