#include "common/bind_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>

namespace imgspool {

Result<BindAddress> parse_bind_address(const std::string& bind, int port, std::string_view what) {
    if (port < 0 || port > 65535) {
        return make_error(Stage::config, std::string(what) + " port " + std::to_string(port) +
                                             " is outside 0..65535");
    }
    BindAddress out;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    if (inet_pton(AF_INET, bind.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        return out;
    }
    if (inet_pton(AF_INET6, bind.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        out.ipv6 = true;
        return out;
    }
    return make_error(Stage::config, std::string(what) + " bind address \"" + bind +
                                         "\" is not an IPv4 or IPv6 address (e.g. 127.0.0.1)");
}

}  // namespace imgspool
