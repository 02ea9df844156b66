// Which peer addresses a fetch may connect to: the special-purpose IPv4 and IPv6 ranges (loopback,
// private, link-local and the cloud metadata address, ...) are refused unless the operator allows
// them ([fetch] allow_hosts: host names, ".suffix" names, IP addresses, CIDR ranges).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.hpp"

namespace imgspool::fetch {

enum class AddressClass {
    global,
    unspecified,
    loopback,
    private_use,
    shared_cgnat,
    link_local,
    unique_local,
    multicast,
    reserved,
    documentation,
    benchmarking
};

// "a private address", "a loopback address", ...
const char* describe(AddressClass c);

struct IpAddress {
    std::array<std::uint8_t, 16> bytes{};  // IPv4: in bytes[12..15], the rest zero
    bool v4 = false;
    bool operator==(const IpAddress&) const = default;
};

std::optional<IpAddress> parse_ip(std::string_view text);  // strips [] and a %zone
std::optional<IpAddress> from_sockaddr(const sockaddr* addr, socklen_t len);
std::string to_text(const IpAddress& addr);  // "10.0.0.5", "::ffff:127.0.0.1"

// An IPv6 address that carries an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96,
// 6to4 2002::/16) is judged by the IPv4 inside, because that is where packets end up.
struct Unwrapped {
    IpAddress addr;             // the IPv4 inside, or the address itself
    const char* via = nullptr;  // "IPv4-mapped", "NAT64", ...; null when nothing was unwrapped
};
Unwrapped unwrap(const IpAddress& addr);

// The class of the address after unwrapping; IPv6 outside 2000::/3 is `reserved` (default deny).
AddressClass classify(const IpAddress& addr);

struct Cidr {
    IpAddress base;
    int prefix = 0;  // 0..32 for IPv4, 0..128 for IPv6
    bool contains(const IpAddress& addr) const;
};

struct AllowEntry {
    std::variant<std::string, Cidr>
        what;          // a lower-case host name (".suffix" for subdomains) or a range
    std::string text;  // as the operator wrote it
};

// "cdn.local", ".corp.example" (any subdomain of corp.example), "10.1.2.3", "[::1]", "fd00::/8".
// Stage::config errors naming the entry.
Result<AllowEntry> parse_allow_entry(std::string_view entry);

class AddressPolicy {
  public:
    explicit AddressPolicy(std::vector<AllowEntry> allow = {}) : allow_(std::move(allow)) {}

    // nullopt: a connection to `addr`, made for a URL whose host is `url_host`, may go ahead.
    // Else why not: "10.0.0.5 is a private address", "::ffff:127.0.0.1 is a loopback address
    // (IPv4-mapped)". A global address always may; others when allowed by range, or by the URL
    // host's name (but never multicast or unspecified ones by name).
    std::optional<std::string> refuse(const IpAddress& addr, std::string_view url_host) const;

    const std::vector<AllowEntry>& allowed() const { return allow_; }

  private:
    bool name_allowed(std::string_view url_host) const;
    bool range_allowed(const IpAddress& addr) const;

    std::vector<AllowEntry> allow_;
};

Result<AddressPolicy> make_address_policy(const std::vector<std::string>& allow_hosts);

}  // namespace imgspool::fetch
