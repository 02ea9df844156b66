// fetch_http against the test origin (origin/origin.js) on 127.0.0.1, 127.0.0.2 and ::1: answers,
// redirects, caps, timeouts, and the address policy refusing before anything is sent.
#include "fetch/http_fetcher.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include "tests/fetch/origin_server.hpp"
#include "tests/integration/images.hpp"

namespace imgspool::fetch {
namespace {

using fetch_test::OriginServer;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMaxBytes = 1024 * 1024;

class HttpFetcherTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (auto why = OriginServer::unavailable()) GTEST_SKIP() << *why;
        jpeg_ = it::make_jpeg({320, 240, 3, 12.0});
        origin_ = std::make_unique<OriginServer>(
            std::map<std::string, std::string>{{"photo.jpg", jpeg_}});
    }

    static FetchSettings settings(std::vector<std::string> allow,
                                  std::vector<std::string> resolve = {}) {
        Result<AddressPolicy> policy = make_address_policy(allow);
        EXPECT_TRUE(policy.ok());
        FetchSettings s;
        if (policy.ok()) s.policy = policy.value();
        s.connect_timeout = std::chrono::seconds(2);
        s.timeout = std::chrono::seconds(5);
        s.test_resolve = std::move(resolve);
        return s;
    }

    static Result<Fetched> get(const std::string& text, const FetchSettings& s,
                               std::uint64_t max_bytes = kMaxBytes, Heartbeat* beat = nullptr) {
        Result<SourceUrl> url = parse_source_url(text);
        if (!url) return url.error();
        return fetch_http(*url, s, max_bytes, beat);
    }

    // Waits until the origin has no answer in flight (a cut transfer is noticed with a delay).
    nlohmann::json settled_stats() const {
        nlohmann::json stats = origin_->stats();
        for (int i = 0; i < 100 && stats.at("open").get<int>() > 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            stats = origin_->stats();
        }
        return stats;
    }

    int path_count(const std::string& path) const {
        return origin_->stats().at("paths").value(path, 0);
    }

    std::string port1() const { return std::to_string(origin_->port1()); }

    std::string jpeg_;
    std::unique_ptr<OriginServer> origin_;
};

void expect_permanent(const Result<Fetched>& r, const std::string& reason) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().stage, Stage::fetch);
    EXPECT_FALSE(r.error().transient) << r.error().reason;
    EXPECT_EQ(r.error().reason, reason);
}

TEST_F(HttpFetcherTest, FetchesAnImage) {
    Heartbeat beat("worker-1");
    const Result<Fetched> r =
        get(origin_->url1("/img/photo.jpg"), settings({"127.0.0.1"}), kMaxBytes, &beat);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->bytes, jpeg_);
    EXPECT_EQ(r->hops, 0);
    EXPECT_EQ(r->content_type, "image/jpeg");
    EXPECT_EQ(r->connected_ip, "127.0.0.1");
    EXPECT_EQ(r->final_url, origin_->url1("/img/photo.jpg"));
    EXPECT_GT(beat.state(), 0u) << "the progress callback beats the worker's heartbeat";
}

TEST_F(HttpFetcherTest, CapIsExactAtTheDeclaredLength) {
    EXPECT_TRUE(get(origin_->url1("/img/photo.jpg"), settings({"127.0.0.1"}), jpeg_.size()).ok());
    expect_permanent(
        get(origin_->url1("/img/photo.jpg"), settings({"127.0.0.1"}), jpeg_.size() - 1),
        "answer larger than " + std::to_string(jpeg_.size() - 1) +
            " bytes (limits.max_bytes) from " + origin_->url1("/img/photo.jpg"));
}

TEST_F(HttpFetcherTest, FollowsARedirectChainOfThree) {
    const Result<Fetched> r =
        get(origin_->url2("/redirect/2?to=/img/photo.jpg"), settings({"127.0.0.2"}));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->hops, 3);
    EXPECT_EQ(r->bytes, jpeg_);
    EXPECT_EQ(r->final_url, origin_->url2("/img/photo.jpg"));
    EXPECT_EQ(r->connected_ip, "127.0.0.2");
}

TEST_F(HttpFetcherTest, FollowsExactlyMaxRedirectsAndFailsOnTheNextOne) {
    const FetchSettings s = settings({"127.0.0.1"});
    const Result<Fetched> five = get(origin_->url1("/redirect/4?to=/img/photo.jpg"), s);
    ASSERT_TRUE(five.ok()) << five.error().message();
    EXPECT_EQ(five->hops, 5);

    origin_->reset();
    expect_permanent(get(origin_->url1("/redirect/5?to=/img/photo.jpg"), s),
                     "more than 5 redirects (last: " + origin_->url1("/img/photo.jpg") + ")");
    EXPECT_EQ(origin_->requests(), 6);  // the sixth redirect is not followed
    EXPECT_EQ(path_count("/img/photo.jpg"), 0);
}

TEST_F(HttpFetcherTest, OtherRedirectCodesAreFollowedToo) {
    for (const char* code : {"301", "303", "307", "308"}) {
        const Result<Fetched> r =
            get(origin_->url1(std::string("/redirect/1?to=/img/photo.jpg&code=") + code),
                settings({"127.0.0.1"}));
        ASSERT_TRUE(r.ok()) << code << ": " << r.error().message();
        EXPECT_EQ(r->hops, 2) << code;
    }
}

TEST_F(HttpFetcherTest, RedirectToAnotherSchemeIsRefused) {
    const std::string from = origin_->url1("/redirect/0");
    expect_permanent(
        get(origin_->url1("/redirect/0?to=file:///etc/passwd"), settings({"127.0.0.1"})),
        "redirect from " + from +
            " refused: source file:///etc/passwd: only http://, https:// and s3:// "
            "sources are fetched");
    expect_permanent(get(origin_->url1("/redirect/0?to=s3://bucket/key"), settings({"127.0.0.1"})),
                     "redirect from " + from + " to an s3:// source refused");
}

TEST_F(HttpFetcherTest, ClientErrorsArePermanentServerErrorsTransient) {
    const FetchSettings s = settings({"127.0.0.1"});
    for (const char* code : {"404", "403", "410", "400"}) {
        const std::string url = origin_->url1(std::string("/status/") + code);
        expect_permanent(get(url, s), std::string("HTTP ") + code + " from " + url);
    }
    for (const char* code : {"500", "502", "503", "408", "429"}) {
        const std::string url = origin_->url1(std::string("/status/") + code);
        const Result<Fetched> r = get(url, s);
        ASSERT_FALSE(r.ok()) << code;
        EXPECT_TRUE(r.error().transient) << code;
        EXPECT_EQ(r.error().reason, std::string("HTTP ") + code + " from " + url);
    }
}

TEST_F(HttpFetcherTest, FlakyOriginIsTransientUntilItAnswers) {
    const FetchSettings s = settings({"127.0.0.1"});
    const std::string url = origin_->url1("/flaky/job-1");
    for (int attempt = 0; attempt < 2; ++attempt) {
        const Result<Fetched> r = get(url, s);
        ASSERT_FALSE(r.ok());
        EXPECT_TRUE(r.error().transient);
        EXPECT_EQ(r.error().reason, "HTTP 500 from " + url);
    }
    const Result<Fetched> r = get(url, s);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->bytes, jpeg_);
}

TEST_F(HttpFetcherTest, TrickleTimesOutTransientWithinTheTimeout) {
    FetchSettings s = settings({"127.0.0.1"});
    s.timeout = std::chrono::seconds(2);
    const auto start = Clock::now();
    const Result<Fetched> r = get(origin_->url1("/trickle?bps=100&total=100000"), s);
    const auto took = Clock::now() - start;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().stage, Stage::fetch);
    EXPECT_TRUE(r.error().transient) << r.error().reason;
    EXPECT_NE(r.error().reason.find(origin_->url1("/trickle")), std::string::npos)
        << r.error().reason;
    std::cout << "trickle: \"" << r.error().reason << "\" after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
    EXPECT_LT(took, s.timeout + std::chrono::seconds(2));
    EXPECT_GE(took, std::chrono::milliseconds(1500));
}

TEST_F(HttpFetcherTest, TheTimeoutBoundsTheWholeFetchNotJustSlowReads) {
    // 4000 B/s is well above the low-speed limit (1024 B/s): only the total deadline can stop it.
    FetchSettings s = settings({"127.0.0.1"});
    s.timeout = std::chrono::seconds(2);
    const std::string url = origin_->url1("/redirect/0?to=/trickle%3Fbps%3D4000%26total%3D200000");
    const auto start = Clock::now();
    const Result<Fetched> r = get(url, s);
    const auto took = Clock::now() - start;
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().transient);
    EXPECT_EQ(r.error().reason,
              "no complete answer within 2 s (fetch.timeout_s) from " + origin_->url1("/trickle"));
    EXPECT_LT(took, s.timeout + std::chrono::seconds(2));
}

TEST_F(HttpFetcherTest, HugeChunkedAnswerIsCutNearMaxBytes) {
    const std::string url = origin_->url1("/huge?bytes=2147483648&chunked=1");
    const auto start = Clock::now();
    expect_permanent(get(url, settings({"127.0.0.1"})),
                     "answer larger than 1 MiB (limits.max_bytes) from " + origin_->url1("/huge"));
    const auto took = Clock::now() - start;
    const auto sent = settled_stats().at("huge_sent").get<std::uint64_t>();
    std::cout << "huge chunked: the origin sent " << sent << " bytes for a cap of " << kMaxBytes
              << " in " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
              << " ms\n";
    EXPECT_GT(sent, kMaxBytes);
    // What the cap let through plus what sat in socket buffers when the connection closed.
    EXPECT_LT(sent, kMaxBytes + 16 * 1024 * 1024);
    EXPECT_LT(took, std::chrono::seconds(2));
}

TEST_F(HttpFetcherTest, HugeDeclaredAnswerIsRefusedAtTheHeaders) {
    const std::string url = origin_->url1("/huge?bytes=2147483648&chunked=0");
    expect_permanent(get(url, settings({"127.0.0.1"})),
                     "answer larger than 1 MiB (limits.max_bytes) from " + origin_->url1("/huge"));
    const auto sent = settled_stats().at("huge_sent").get<std::uint64_t>();
    std::cout << "huge declared: the origin sent " << sent << " bytes\n";
    EXPECT_LT(sent, kMaxBytes + 16 * 1024 * 1024);
}

TEST_F(HttpFetcherTest, HtmlServedAsJpegIsReturnedForValidationToJudge) {
    const Result<Fetched> r = get(origin_->url1("/html-as-jpeg"), settings({"127.0.0.1"}));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->content_type, "image/jpeg");
    EXPECT_EQ(r->bytes.rfind("<!DOCTYPE html>", 0), 0u) << r->bytes;
}

// With nothing allowed, every special address is refused before connect: no request reaches the
// origin, and none of them waits for a timeout (10.0.0.5 and 169.254.169.254 have no listener).
TEST_F(HttpFetcherTest, DefaultPolicyRefusesLoopbackPrivateAndMetadataBeforeConnecting) {
    const FetchSettings s = settings({});
    const std::string p1 = port1();
    struct Case {
        std::string url;
        std::string why;
    };
    std::vector<Case> cases = {
        {origin_->url1("/img/photo.jpg"), "127.0.0.1 is a loopback address"},
        {origin_->url2("/img/photo.jpg"), "127.0.0.2 is a loopback address"},
        {"http://[::ffff:127.0.0.1]:" + p1 + "/img/photo.jpg",
         "::ffff:127.0.0.1 is a loopback address (IPv4-mapped)"},
        {"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"},
        {"http://10.0.0.5:" + p1 + "/img/photo.jpg", "10.0.0.5 is a private address"},
        {"http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
         "64:ff9b::a9fe:a9fe is a link-local address (NAT64)"},
    };
    if (origin_->port6() != 0) {
        cases.push_back({origin_->url6("/img/photo.jpg"), "::1 is a loopback address"});
    }
    for (const Case& c : cases) {
        const auto start = Clock::now();
        expect_permanent(get(c.url, s), "refused: " + c.why + " (" + c.url + ")");
        EXPECT_LT(Clock::now() - start, std::chrono::seconds(1)) << c.url;
    }
    // localhost resolves to 127.0.0.1 and/or ::1; both are refused, whichever is tried first.
    const Result<Fetched> r = get("http://localhost:" + p1 + "/img/photo.jpg", s);
    ASSERT_FALSE(r.ok());
    EXPECT_FALSE(r.error().transient);
    EXPECT_EQ(r.error().reason.rfind("refused: ", 0), 0u) << r.error().reason;
    EXPECT_NE(r.error().reason.find("is a loopback address"), std::string::npos);

    EXPECT_EQ(origin_->requests(), 0) << origin_->stats().dump();
}

TEST_F(HttpFetcherTest, RedirectFromAnAllowedHostToLoopbackIsRefusedAtItsConnect) {
    const FetchSettings s = settings({"127.0.0.2"});
    const std::string p1 = port1();
    const std::pair<std::string, std::string> targets[] = {
        {origin_->url1("/img/photo.jpg"), "127.0.0.1 is a loopback address"},
        {"http://[::ffff:127.0.0.1]:" + p1 + "/img/photo.jpg",
         "::ffff:127.0.0.1 is a loopback address (IPv4-mapped)"},
        {"http://localhost:" + p1 + "/img/photo.jpg", "is a loopback address"},
    };
    for (const auto& [target, why] : targets) {
        const Result<Fetched> r = get(origin_->url2("/redirect/0?to=" + target), s);
        ASSERT_FALSE(r.ok()) << target;
        EXPECT_FALSE(r.error().transient);
        EXPECT_EQ(r.error().reason.rfind("refused: ", 0), 0u) << r.error().reason;
        EXPECT_NE(r.error().reason.find(why), std::string::npos) << r.error().reason;
    }
    const nlohmann::json listeners = origin_->stats().at("listeners");
    EXPECT_EQ(listeners.value("127.0.0.2", 0), 3);
    EXPECT_EQ(listeners.value("127.0.0.1", 0), 0) << listeners.dump();
}

TEST_F(HttpFetcherTest, AnAllowedNameIsTrustedForItsOwnHopOnly) {
    const std::string p1 = port1();
    const std::string p2 = std::to_string(origin_->port2());
    const FetchSettings s = settings(
        {"cdn.test"}, {"cdn.test:" + p2 + ":127.0.0.2", "other.test:" + p1 + ":127.0.0.1"});
    const Result<Fetched> ok = get("http://cdn.test:" + p2 + "/img/photo.jpg", s);
    ASSERT_TRUE(ok.ok()) << ok.error().message();
    EXPECT_EQ(ok->connected_ip, "127.0.0.2");

    const std::string other = "http://other.test:" + p1 + "/img/photo.jpg";
    expect_permanent(get("http://cdn.test:" + p2 + "/redirect/0?to=" + other, s),
                     "refused: 127.0.0.1 is a loopback address (" + other + ")");
    EXPECT_EQ(origin_->stats().at("listeners").value("127.0.0.1", 0), 0);
}

// DNS rebinding: the name looks public, the address it resolves to decides.
TEST_F(HttpFetcherTest, APublicLookingNameResolvingToLoopbackIsRefused) {
    const std::string p1 = port1();
    const std::string url = "http://public.example:" + p1 + "/img/photo.jpg";
    expect_permanent(get(url, settings({}, {"public.example:" + p1 + ":127.0.0.1"})),
                     "refused: 127.0.0.1 is a loopback address (" + url + ")");
    EXPECT_EQ(origin_->requests(), 0);
}

// Every address curl tries is checked on its own: a refused first address is skipped (never
// connected: nothing listens on 10.0.0.5, which would hang until the timeout), the next allowed
// one is used.
TEST_F(HttpFetcherTest, EachResolvedAddressIsCheckedAsItIsTried) {
    const std::string p1 = port1();
    const FetchSettings s =
        settings({"127.0.0.1"}, {"rebind.example:" + p1 + ":10.0.0.5,127.0.0.1"});
    const auto start = Clock::now();
    const Result<Fetched> r = get("http://rebind.example:" + p1 + "/img/photo.jpg", s);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->connected_ip, "127.0.0.1");
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
}

TEST_F(HttpFetcherTest, ProxyEnvironmentIsIgnored) {
    // Port 1 on loopback: a proxy there would refuse every connection.
    for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"}) {
        setenv(name, "http://127.0.0.1:1", 1);
    }
    const Result<Fetched> r = get(origin_->url1("/img/photo.jpg"), settings({"127.0.0.1"}));
    for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"}) {
        unsetenv(name);
    }
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->bytes, jpeg_);
    EXPECT_EQ(r->connected_ip, "127.0.0.1");
}

TEST_F(HttpFetcherTest, NothingListeningIsTransient) {
    // The origin's port on 127.0.0.3: allowed, but nothing listens there.
    const std::string url = "http://127.0.0.3:" + port1() + "/img/photo.jpg";
    const Result<Fetched> r = get(url, settings({"127.0.0.0/8"}));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().transient) << r.error().reason;
    EXPECT_NE(r.error().reason.find(url), std::string::npos) << r.error().reason;
}

TEST_F(HttpFetcherTest, AnAllowedAddressThatIsDownIsTransientEvenNextToARefusedOne) {
    // localhost is ::1 and 127.0.0.1; only 127.0.0.1 is allowed, and nothing listens on it at
    // port2 (the origin's 127.0.0.2 port).
    const std::string url = "http://localhost:" + std::to_string(origin_->port2()) + "/x";
    const Result<Fetched> r = get(url, settings({"127.0.0.1"}));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().transient) << r.error().reason;
    EXPECT_NE(r.error().reason.find(url), std::string::npos) << r.error().reason;
}

}  // namespace
}  // namespace imgspool::fetch
