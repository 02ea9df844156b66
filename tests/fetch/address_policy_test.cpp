#include "fetch/address_policy.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <utility>

namespace imgspool::fetch {
namespace {

IpAddress ip(const char* text) {
    std::optional<IpAddress> a = parse_ip(text);
    EXPECT_TRUE(a.has_value()) << text;
    return a.value_or(IpAddress{});
}

AddressClass cls(const char* text) {
    return classify(ip(text));
}

AddressPolicy policy(std::vector<std::string> allow) {
    Result<AddressPolicy> p = make_address_policy(allow);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().reason);
    return p.ok() ? p.value() : AddressPolicy();
}

TEST(AddressClassify, Ipv4SpecialRangesAtTheirEdges) {
    const std::pair<const char*, AddressClass> cases[] = {
        {"0.0.0.0", AddressClass::unspecified},
        {"0.255.255.255", AddressClass::unspecified},
        {"1.0.0.0", AddressClass::global},
        {"9.255.255.255", AddressClass::global},
        {"10.0.0.0", AddressClass::private_use},
        {"10.255.255.255", AddressClass::private_use},
        {"11.0.0.0", AddressClass::global},
        {"100.63.255.255", AddressClass::global},
        {"100.64.0.0", AddressClass::shared_cgnat},
        {"100.127.255.255", AddressClass::shared_cgnat},
        {"100.128.0.0", AddressClass::global},
        {"127.0.0.1", AddressClass::loopback},
        {"127.255.255.254", AddressClass::loopback},
        {"169.254.169.254", AddressClass::link_local},
        {"169.255.0.0", AddressClass::global},
        {"172.15.255.255", AddressClass::global},
        {"172.16.0.0", AddressClass::private_use},
        {"172.31.255.255", AddressClass::private_use},
        {"172.32.0.0", AddressClass::global},
        {"192.0.0.8", AddressClass::reserved},
        {"192.0.2.1", AddressClass::documentation},
        {"192.88.99.1", AddressClass::reserved},
        {"192.168.1.1", AddressClass::private_use},
        {"192.169.0.0", AddressClass::global},
        {"198.17.255.255", AddressClass::global},
        {"198.18.0.0", AddressClass::benchmarking},
        {"198.19.255.255", AddressClass::benchmarking},
        {"198.20.0.0", AddressClass::global},
        {"198.51.100.7", AddressClass::documentation},
        {"203.0.113.9", AddressClass::documentation},
        {"223.255.255.255", AddressClass::global},
        {"224.0.0.1", AddressClass::multicast},
        {"239.255.255.255", AddressClass::multicast},
        {"240.0.0.1", AddressClass::reserved},
        {"255.255.255.255", AddressClass::reserved},
        {"93.184.216.34", AddressClass::global},
        {"8.8.8.8", AddressClass::global},
    };
    for (const auto& [text, expected] : cases) {
        EXPECT_EQ(cls(text), expected) << text << " is " << describe(cls(text));
    }
}

TEST(AddressClassify, Ipv6Ranges) {
    const std::pair<const char*, AddressClass> cases[] = {
        {"::", AddressClass::unspecified},
        {"::1", AddressClass::loopback},
        {"64:ff9b:1::1", AddressClass::private_use},
        {"100::1", AddressClass::reserved},
        {"2001::1", AddressClass::reserved},
        {"2001:10::1", AddressClass::reserved},
        {"2001:20::1", AddressClass::reserved},
        {"2001:db8::1", AddressClass::documentation},
        {"3fff::1", AddressClass::documentation},
        {"3fff:fff::1", AddressClass::documentation},
        {"3fff:1000::1", AddressClass::global},
        {"fc00::1", AddressClass::unique_local},
        {"fd12:3456::1", AddressClass::unique_local},
        {"fe80::1", AddressClass::link_local},
        {"fe80::1%eth0", AddressClass::link_local},
        {"febf::1", AddressClass::link_local},
        {"fec0::1", AddressClass::private_use},
        {"ff02::1", AddressClass::multicast},
        {"2606:4700::1111", AddressClass::global},
        {"2a00:1450:4001::1", AddressClass::global},
        {"2000::", AddressClass::global},
        {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::documentation},
        {"4000::1", AddressClass::reserved},  // outside 2000::/3: default deny
        {"1fff::1", AddressClass::reserved},
        {"e000::1", AddressClass::reserved},
    };
    for (const auto& [text, expected] : cases) {
        EXPECT_EQ(cls(text), expected) << text << " is " << describe(cls(text));
    }
}

TEST(AddressClassify, Ipv6CarryingIpv4IsJudgedByTheIpv4Inside) {
    EXPECT_EQ(cls("::ffff:127.0.0.1"), AddressClass::loopback);
    EXPECT_EQ(cls("::ffff:10.0.0.5"), AddressClass::private_use);
    EXPECT_EQ(cls("::ffff:8.8.8.8"), AddressClass::global);
    EXPECT_EQ(cls("::a00:5"), AddressClass::private_use);  // IPv4-compatible 10.0.0.5
    EXPECT_EQ(cls("::127.0.0.1"), AddressClass::loopback);
    EXPECT_EQ(cls("64:ff9b::a9fe:a9fe"), AddressClass::link_local);  // NAT64 169.254.169.254
    EXPECT_EQ(cls("64:ff9b::a00:5"), AddressClass::private_use);
    EXPECT_EQ(cls("64:ff9b::808:808"), AddressClass::global);
    EXPECT_EQ(cls("2002:7f00:1::1"), AddressClass::loopback);  // 6to4 of 127.0.0.1
    EXPECT_EQ(cls("2002:a9fe:a9fe::"), AddressClass::link_local);
    EXPECT_EQ(cls("2002:808:808::1"), AddressClass::global);

    const Unwrapped u = unwrap(ip("::ffff:127.0.0.1"));
    EXPECT_TRUE(u.addr.v4);
    EXPECT_EQ(to_text(u.addr), "127.0.0.1");
    EXPECT_STREQ(u.via, "IPv4-mapped");
    EXPECT_STREQ(unwrap(ip("64:ff9b::a9fe:a9fe")).via, "NAT64");
    EXPECT_STREQ(unwrap(ip("2002:7f00:1::1")).via, "6to4");
    EXPECT_STREQ(unwrap(ip("::a00:5")).via, "IPv4-compatible");
    EXPECT_EQ(unwrap(ip("::1")).via, nullptr);
    EXPECT_EQ(unwrap(ip("2001:db8::1")).via, nullptr);
}

TEST(IpText, ParsesBothFamiliesAndRefusesTheRest) {
    EXPECT_TRUE(ip("10.0.0.5").v4);
    EXPECT_FALSE(ip("::1").v4);
    EXPECT_EQ(to_text(ip("[::1]")), "::1");
    EXPECT_EQ(to_text(ip("fe80::1%eth0")), "fe80::1");
    EXPECT_EQ(to_text(ip("::ffff:127.0.0.1")), "::ffff:127.0.0.1");
    EXPECT_FALSE(parse_ip("").has_value());
    EXPECT_FALSE(parse_ip("localhost").has_value());
    EXPECT_FALSE(parse_ip("127.1").has_value());  // inet_pton takes dotted quads only
    EXPECT_FALSE(parse_ip("256.0.0.1").has_value());
    EXPECT_FALSE(parse_ip("1.2.3.4%eth0").has_value());
}

TEST(IpText, FromSockaddr) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    inet_pton(AF_INET, "169.254.169.254", &in.sin_addr);
    auto a = from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(to_text(*a), "169.254.169.254");

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.0.0.5", &in6.sin6_addr);
    a = from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    ASSERT_TRUE(a.has_value());
    EXPECT_FALSE(a->v4);
    EXPECT_EQ(classify(*a), AddressClass::private_use);

    EXPECT_FALSE(from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), 8).has_value());
    sockaddr other{};
    other.sa_family = AF_UNIX;
    EXPECT_FALSE(from_sockaddr(&other, sizeof other).has_value());
}

TEST(AllowEntry, ParsesNamesSuffixesAddressesAndRanges) {
    auto e = parse_allow_entry("CDN.Local.");
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(std::get<std::string>(e->what), "cdn.local");
    EXPECT_EQ(e->text, "CDN.Local.");

    e = parse_allow_entry(".corp.example");
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(std::get<std::string>(e->what), ".corp.example");

    e = parse_allow_entry("10.1.2.3");
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(std::get<Cidr>(e->what).prefix, 32);

    e = parse_allow_entry("[::1]");
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(std::get<Cidr>(e->what).prefix, 128);

    for (const char* edge :
         {"0.0.0.0/0", "10.0.0.0/8", "10.1.2.3/32", "::/0", "fd00::/8", "2001:db8::1/128"}) {
        EXPECT_TRUE(parse_allow_entry(edge).ok()) << edge;
    }
}

TEST(AllowEntry, RefusesWhatIsNoneOfThemWithTheEntryInTheReason) {
    for (const char* bad :
         {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "a b", "http://x", "host/8", "..",
          ".", "a..b", "fe80::1%eth0", "-/-", "10.0.0.0/-1"}) {
        auto e = parse_allow_entry(bad);
        ASSERT_FALSE(e.ok()) << bad;
        EXPECT_EQ(e.error().stage, Stage::config);
        EXPECT_NE(e.error().reason.find(std::string("\"") + bad + "\""), std::string::npos)
            << e.error().reason;
    }
    auto e = parse_allow_entry("10.0.0.0/33");
    EXPECT_EQ(e.error().reason, "\"10.0.0.0/33\" is not a host name, IP address or CIDR range");
    e = parse_allow_entry("10.0.0.5/8");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().reason.find("did you mean 10.0.0.0/8?"), std::string::npos)
        << e.error().reason;
    EXPECT_FALSE(parse_allow_entry(std::string(254, 'a')).ok());
    EXPECT_FALSE(parse_allow_entry(std::string(64, 'a') + ".example").ok());
    EXPECT_TRUE(parse_allow_entry(std::string(63, 'a') + ".example").ok());
}

TEST(Cidr, ContainsAtThePrefixEdges) {
    const Cidr v4{ip("10.0.0.0"), 8};
    EXPECT_TRUE(v4.contains(ip("10.255.255.255")));
    EXPECT_FALSE(v4.contains(ip("11.0.0.0")));
    EXPECT_FALSE(v4.contains(ip("::ffff:10.0.0.1")));  // other family; policies unwrap first
    const Cidr all{ip("0.0.0.0"), 0};
    EXPECT_TRUE(all.contains(ip("255.255.255.255")));
    EXPECT_FALSE(all.contains(ip("::1")));
    const Cidr host{ip("::1"), 128};
    EXPECT_TRUE(host.contains(ip("::1")));
    EXPECT_FALSE(host.contains(ip("::2")));
    const Cidr odd{ip("172.16.0.0"), 12};
    EXPECT_TRUE(odd.contains(ip("172.31.0.1")));
    EXPECT_FALSE(odd.contains(ip("172.32.0.1")));
}

TEST(AddressPolicy, DefaultRefusesEverySpecialAddressWithAReason) {
    const AddressPolicy p;
    EXPECT_EQ(p.refuse(ip("10.0.0.5"), "x.example"), "10.0.0.5 is a private address");
    EXPECT_EQ(p.refuse(ip("169.254.169.254"), "x.example"),
              "169.254.169.254 is a link-local address");
    EXPECT_EQ(p.refuse(ip("::ffff:127.0.0.1"), "x.example"),
              "::ffff:127.0.0.1 is a loopback address (IPv4-mapped)");
    EXPECT_EQ(p.refuse(ip("64:ff9b::a9fe:a9fe"), "x.example"),
              "64:ff9b::a9fe:a9fe is a link-local address (NAT64)");
    EXPECT_EQ(p.refuse(ip("::1"), "localhost"), "::1 is a loopback address");
    EXPECT_EQ(p.refuse(ip("::"), "x"), ":: is an unspecified address");
    EXPECT_EQ(p.refuse(ip("0.0.0.0"), "x"), "0.0.0.0 is an unspecified address");
    EXPECT_EQ(p.refuse(ip("4000::1"), "x"), "4000::1 is a reserved address");
    EXPECT_FALSE(p.refuse(ip("93.184.216.34"), "example.com").has_value());
    EXPECT_FALSE(p.refuse(ip("2606:4700::1111"), "example.com").has_value());
    EXPECT_FALSE(p.refuse(ip("::ffff:8.8.8.8"), "dns.example").has_value());
}

TEST(AddressPolicy, AllowsByRangeIncludingEmbeddedIpv4) {
    const AddressPolicy p = policy({"10.0.0.0/8", "fd00::/8", "127.0.0.2"});
    EXPECT_FALSE(p.refuse(ip("10.9.9.9"), "anything").has_value());
    EXPECT_FALSE(p.refuse(ip("::ffff:10.0.0.5"), "anything").has_value());
    EXPECT_FALSE(p.refuse(ip("fd12::1"), "anything").has_value());
    EXPECT_FALSE(p.refuse(ip("127.0.0.2"), "127.0.0.2").has_value());
    EXPECT_TRUE(p.refuse(ip("127.0.0.1"), "127.0.0.1").has_value());
    EXPECT_TRUE(p.refuse(ip("192.168.0.1"), "anything").has_value());
    EXPECT_TRUE(p.refuse(ip("fe80::1"), "anything").has_value());
}

TEST(AddressPolicy, NamesAreTrustedOnlyForTheirOwnHost) {
    const AddressPolicy p = policy({"cdn.local", ".corp.example"});
    EXPECT_FALSE(p.refuse(ip("10.0.0.5"), "cdn.local").has_value());
    EXPECT_FALSE(p.refuse(ip("10.0.0.5"), "CDN.LOCAL.").has_value());
    EXPECT_FALSE(p.refuse(ip("10.0.0.5"), "img.corp.example").has_value());
    EXPECT_FALSE(p.refuse(ip("10.0.0.5"), "a.b.corp.example").has_value());
    // A suffix entry covers subdomains only, and a name only its own hop.
    EXPECT_TRUE(p.refuse(ip("10.0.0.5"), "corp.example").has_value());
    EXPECT_TRUE(p.refuse(ip("10.0.0.5"), "evilcorp.example").has_value());
    EXPECT_TRUE(p.refuse(ip("10.0.0.5"), "cdn.local.evil.example").has_value());
    EXPECT_TRUE(p.refuse(ip("10.0.0.5"), "10.0.0.5").has_value());
    // Multicast and unspecified addresses never pass by name.
    EXPECT_EQ(p.refuse(ip("224.0.0.1"), "cdn.local"), "224.0.0.1 is a multicast address");
    EXPECT_EQ(p.refuse(ip("0.0.0.0"), "cdn.local"), "0.0.0.0 is an unspecified address");
    // ... but by range, when the operator wrote one.
    EXPECT_FALSE(policy({"0.0.0.0/0"}).refuse(ip("224.0.0.1"), "x").has_value());
}

TEST(AddressPolicy, MakeFailsOnTheFirstBadEntry) {
    Result<AddressPolicy> p = make_address_policy({"cdn.local", "10.0.0.0/33", "bad entry"});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().reason, "\"10.0.0.0/33\" is not a host name, IP address or CIDR range");
    Result<AddressPolicy> ok = make_address_policy({});
    ASSERT_TRUE(ok.ok());
    EXPECT_TRUE(ok->allowed().empty());
}

}  // namespace
}  // namespace imgspool::fetch
