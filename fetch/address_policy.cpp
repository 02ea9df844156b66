#include "fetch/address_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace imgspool::fetch {

namespace {

struct Range {
    std::array<std::uint8_t, 16> base;  // IPv4 ranges: the first 4 bytes
    int prefix;
    AddressClass cls;
};

// IANA IPv4 special-purpose registry, as far as a fetch must care.
constexpr Range kV4Ranges[] = {
    {{0, 0, 0, 0}, 8, AddressClass::unspecified},
    {{10, 0, 0, 0}, 8, AddressClass::private_use},
    {{100, 64, 0, 0}, 10, AddressClass::shared_cgnat},
    {{127, 0, 0, 0}, 8, AddressClass::loopback},
    {{169, 254, 0, 0}, 16, AddressClass::link_local},
    {{172, 16, 0, 0}, 12, AddressClass::private_use},
    {{192, 0, 0, 0}, 24, AddressClass::reserved},
    {{192, 0, 2, 0}, 24, AddressClass::documentation},
    {{192, 88, 99, 0}, 24, AddressClass::reserved},  // 6to4 relay anycast
    {{192, 168, 0, 0}, 16, AddressClass::private_use},
    {{198, 18, 0, 0}, 15, AddressClass::benchmarking},
    {{198, 51, 100, 0}, 24, AddressClass::documentation},
    {{203, 0, 113, 0}, 24, AddressClass::documentation},
    {{224, 0, 0, 0}, 4, AddressClass::multicast},
    {{240, 0, 0, 0}, 4, AddressClass::reserved},  // includes 255.255.255.255
};

// IPv6 ranges that do not carry an IPv4 address; anything else outside 2000::/3 is reserved.
constexpr Range kV6Ranges[] = {
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, AddressClass::private_use},  // local-use NAT64
    {{0x01, 0x00}, 64, AddressClass::reserved},                             // discard-only
    {{0x20, 0x01, 0x00, 0x00}, 32, AddressClass::reserved},                 // Teredo
    {{0x20, 0x01, 0x00, 0x10}, 28, AddressClass::reserved},                 // ORCHID
    {{0x20, 0x01, 0x00, 0x20}, 28, AddressClass::reserved},                 // ORCHIDv2
    {{0x20, 0x01, 0x0d, 0xb8}, 32, AddressClass::documentation},
    {{0x3f, 0xff}, 20, AddressClass::documentation},
    {{0xfc}, 7, AddressClass::unique_local},
    {{0xfe, 0x80}, 10, AddressClass::link_local},
    {{0xfe, 0xc0}, 10, AddressClass::private_use},  // site-local (deprecated)
    {{0xff}, 8, AddressClass::multicast},
};

bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, int prefix) {
    const int whole = prefix / 8;
    if (std::memcmp(a, b, static_cast<std::size_t>(whole)) != 0) return false;
    const int rest = prefix % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

const std::uint8_t* octets(const IpAddress& a) {
    return a.v4 ? a.bytes.data() + 12 : a.bytes.data();
}

IpAddress v4_from(const std::uint8_t* four) {
    IpAddress a;
    a.v4 = true;
    std::copy(four, four + 4, a.bytes.begin() + 12);
    return a;
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
    return std::all_of(p, p + n, [](std::uint8_t b) { return b == 0; });
}

AddressClass classify_v4(const IpAddress& a) {
    for (const Range& r : kV4Ranges) {
        if (prefix_equal(octets(a), r.base.data(), r.prefix)) return r.cls;
    }
    return AddressClass::global;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A DNS name: labels of letters, digits, '-' and '_' (internal names use it), 1..63 bytes each.
bool valid_host_name(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || ++label > 63) return false;
    }
    return label > 0;
}

Error bad_entry(std::string_view entry, const std::string& why) {
    return make_error(Stage::config, "\"" + std::string(entry) + "\" " + why);
}

}  // namespace

const char* describe(AddressClass c) {
    switch (c) {
        case AddressClass::global:
            return "a global address";
        case AddressClass::unspecified:
            return "an unspecified address";
        case AddressClass::loopback:
            return "a loopback address";
        case AddressClass::private_use:
            return "a private address";
        case AddressClass::shared_cgnat:
            return "a shared (CGNAT) address";
        case AddressClass::link_local:
            return "a link-local address";
        case AddressClass::unique_local:
            return "a unique-local address";
        case AddressClass::multicast:
            return "a multicast address";
        case AddressClass::reserved:
            return "a reserved address";
        case AddressClass::documentation:
            return "a documentation address";
        case AddressClass::benchmarking:
            return "a benchmarking address";
    }
    return "an unknown address";
}

std::optional<IpAddress> parse_ip(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
        text = text.substr(1, text.size() - 2);
    }
    if (text.empty() || text.size() > 64) return std::nullopt;
    const std::string s(text);
    IpAddress a;
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data() + 12) == 1) {
        a.v4 = true;
        return a;
    }
    const std::string no_zone = s.substr(0, s.find('%'));
    if (inet_pton(AF_INET6, no_zone.c_str(), a.bytes.data()) == 1) return a;
    return std::nullopt;
}

std::optional<IpAddress> from_sockaddr(const sockaddr* addr, socklen_t len) {
    if (addr == nullptr) return std::nullopt;
    IpAddress a;
    if (addr->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
        sockaddr_in in{};
        std::memcpy(&in, addr, sizeof in);
        std::memcpy(a.bytes.data() + 12, &in.sin_addr, 4);
        a.v4 = true;
        return a;
    }
    if (addr->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, addr, sizeof in6);
        std::memcpy(a.bytes.data(), &in6.sin6_addr, 16);
        return a;
    }
    return std::nullopt;
}

std::string to_text(const IpAddress& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(a.v4 ? AF_INET : AF_INET6, octets(a), buf, sizeof buf);
    return buf;
}

Unwrapped unwrap(const IpAddress& a) {
    if (a.v4) return {a, nullptr};
    const std::uint8_t* b = a.bytes.data();
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static constexpr std::uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b};
    if (std::memcmp(b, kMapped, 12) == 0) return {v4_from(b + 12), "IPv4-mapped"};
    if (std::memcmp(b, kNat64, 12) == 0) return {v4_from(b + 12), "NAT64"};
    if (b[0] == 0x20 && b[1] == 0x02) return {v4_from(b + 2), "6to4"};
    // ::/96 (IPv4-compatible, deprecated), but not :: and ::1, which have classes of their own.
    if (all_zero(b, 12) && !(all_zero(b + 12, 3) && b[15] <= 1)) {
        return {v4_from(b + 12), "IPv4-compatible"};
    }
    return {a, nullptr};
}

AddressClass classify(const IpAddress& addr) {
    const Unwrapped u = unwrap(addr);
    if (u.addr.v4) return classify_v4(u.addr);
    const std::uint8_t* b = u.addr.bytes.data();
    if (all_zero(b, 15)) return b[15] == 0 ? AddressClass::unspecified : AddressClass::loopback;
    for (const Range& r : kV6Ranges) {
        if (prefix_equal(b, r.base.data(), r.prefix)) return r.cls;
    }
    if ((b[0] & 0xe0) != 0x20) return AddressClass::reserved;  // outside 2000::/3
    return AddressClass::global;
}

bool Cidr::contains(const IpAddress& addr) const {
    return addr.v4 == base.v4 && prefix_equal(octets(addr), octets(base), prefix);
}

Result<AllowEntry> parse_allow_entry(std::string_view entry) {
    static const std::string kWhat = "is not a host name, IP address or CIDR range";
    if (entry.empty()) return bad_entry(entry, kWhat);
    if (entry.find('%') != std::string_view::npos) return bad_entry(entry, kWhat);
    const auto slash = entry.find('/');
    const std::optional<IpAddress> ip = parse_ip(entry.substr(0, slash));
    if (ip) {
        const int max = ip->v4 ? 32 : 128;
        int prefix = max;
        if (slash != std::string_view::npos) {
            const std::string_view digits = entry.substr(slash + 1);
            if (digits.empty() || digits.size() > 3 ||
                !std::all_of(digits.begin(), digits.end(),
                             [](char c) { return c >= '0' && c <= '9'; })) {
                return bad_entry(entry, kWhat);
            }
            prefix = std::stoi(std::string(digits));
            if (prefix > max) return bad_entry(entry, kWhat);
        }
        Cidr cidr{*ip, prefix};
        IpAddress masked = *ip;
        std::uint8_t* m = masked.v4 ? masked.bytes.data() + 12 : masked.bytes.data();
        for (int bit = prefix; bit < max; ++bit)
            m[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
        if (!(masked == *ip)) {
            return bad_entry(entry, "has bits set past the prefix (did you mean " +
                                        to_text(masked) + "/" + std::to_string(prefix) + "?)");
        }
        return AllowEntry{cidr, std::string(entry)};
    }
    if (slash != std::string_view::npos) return bad_entry(entry, kWhat);
    std::string name = lower(entry);
    const bool suffix = name.front() == '.';
    if (name.size() > 1 && name.back() == '.') name.pop_back();
    if (!valid_host_name(suffix ? std::string_view(name).substr(1) : std::string_view(name))) {
        return bad_entry(entry, kWhat);
    }
    return AllowEntry{name, std::string(entry)};
}

bool AddressPolicy::name_allowed(std::string_view url_host) const {
    std::string host = lower(url_host);
    if (host.size() > 1 && host.back() == '.') host.pop_back();
    for (const AllowEntry& e : allow_) {
        const auto* name = std::get_if<std::string>(&e.what);
        if (name == nullptr) continue;
        if (name->front() == '.') {
            if (host.size() > name->size() && host.ends_with(*name)) return true;
        } else if (host == *name) {
            return true;
        }
    }
    return false;
}

bool AddressPolicy::range_allowed(const IpAddress& addr) const {
    const IpAddress inner = unwrap(addr).addr;
    for (const AllowEntry& e : allow_) {
        const auto* cidr = std::get_if<Cidr>(&e.what);
        if (cidr != nullptr && (cidr->contains(addr) || cidr->contains(inner))) return true;
    }
    return false;
}

std::optional<std::string> AddressPolicy::refuse(const IpAddress& addr,
                                                 std::string_view url_host) const {
    const AddressClass cls = classify(addr);
    if (cls == AddressClass::global || range_allowed(addr)) return std::nullopt;
    const bool never_by_name = cls == AddressClass::multicast || cls == AddressClass::unspecified;
    if (!never_by_name && name_allowed(url_host)) return std::nullopt;
    std::string why = to_text(addr) + " is " + describe(cls);
    if (const char* via = unwrap(addr).via) why += std::string(" (") + via + ")";
    return why;
}

Result<AddressPolicy> make_address_policy(const std::vector<std::string>& allow_hosts) {
    std::vector<AllowEntry> entries;
    for (const std::string& text : allow_hosts) {
        Result<AllowEntry> entry = parse_allow_entry(text);
        if (!entry) return entry.error();
        entries.push_back(std::move(entry).value());
    }
    return AddressPolicy(std::move(entries));
}

}  // namespace imgspool::fetch
