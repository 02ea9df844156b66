// What a fetch of an http(s):// source may do: where it may connect, how many redirects it
// follows, how long it may take. Built from [fetch] for each fetch, so a reload applies at once.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "fetch/address_policy.hpp"

namespace imgspool::fetch {

struct FetchSettings {
    AddressPolicy policy;
    int max_redirects = 5;
    std::chrono::seconds connect_timeout{10};
    std::chrono::seconds timeout{60};  // the whole fetch, all hops together
    // CURLOPT_RESOLVE entries ("host:port:address"), so unit tests can make a name resolve to
    // loopback without touching the system resolver. Never set from the config.
    std::vector<std::string> test_resolve;
};

}  // namespace imgspool::fetch
