// The address an HTTP endpoint listens on: an IPv4 or IPv6 literal and a port.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool {

struct BindAddress {
    sockaddr_storage storage{};  // a sockaddr_in or sockaddr_in6 with the port set
    bool ipv6 = false;
};

// Address literals only: the endpoints are meant for 127.0.0.1 or one chosen interface, and a
// name would make the listening address depend on DNS. `what` names the endpoint in reasons
// ("metrics port 70000 is outside 0..65535"). Stage::config errors.
Result<BindAddress> parse_bind_address(const std::string& bind, int port, std::string_view what);

}  // namespace imgspool
