// The S3 store against a real S3-compatible server on 127.0.0.1: s3rver behind a proxy that
// checks every request's SigV4 signature and payload digests with AWS's own signer, and a proxy
// that injects 5xx answers, connection resets, stalls and corrupted bodies.
#include "store/s3/s3_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "store/s3/s3_client.hpp"
#include "store/s3/sigv4.hpp"
#include "tests/s3/s3_harness.hpp"

namespace imgspool {
namespace {

using s3_test::http;
using s3_test::S3Harness;

class S3StoreIt : public ::testing::Test {
  protected:
    void SetUp() override {
        if (auto why = S3Harness::unavailable()) GTEST_SKIP() << *why;
        harness_ = std::make_unique<S3Harness>();
    }

    // What s3rver holds under key, read directly (not through the proxies).
    s3_test::HttpAnswer stored(const std::string& key) const {
        return http("GET", harness_->s3rver_url() + "/" +
                               harness_->info().at("bucket").get<std::string>() +
                               s3::canonical_uri("/" + key));
    }

    std::unique_ptr<S3Harness> harness_;
};

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string out(n, '\0');
    for (char& c : out) c = static_cast<char>(rng() & 0xff);
    return out;
}

TEST_F(S3StoreIt, PutAllUploadsEveryObjectWithTypeAndCacheHeaders) {
    S3Store store(harness_->config(), "");
    const std::string jpeg = random_bytes(70000, 1);
    const std::string png = random_bytes(1234, 2);
    const std::string webp = random_bytes(99, 3);
    const std::vector<PutObject> objects{
        {"images/u1/small.jpg", "image/jpeg", jpeg},
        {"images/u1/with space/caf\xC3\xA9.png", "image/png", png},
        {"images/u1/r+s=t&u$v@w.webp", "image/webp", webp},
    };
    const Status put = store.put_all(objects);
    ASSERT_TRUE(put) << put.error().message() << "\n" << harness_->verify_stats().dump(2);

    for (const PutObject& object : objects) {
        const auto got = stored(object.key);
        EXPECT_EQ(got.status, 200) << object.key;
        EXPECT_EQ(got.body, object.bytes) << object.key;
        EXPECT_EQ(got.headers.at("content-type"), object.content_type) << object.key;
        EXPECT_EQ(got.headers.at("cache-control"), "public, max-age=31536000") << object.key;
    }
    const auto stats = harness_->verify_stats();
    EXPECT_EQ(stats.at("verified"), 3);
    EXPECT_EQ(stats.at("rejected"), 0) << stats.dump();
    EXPECT_EQ(store.retries(), 0u);
}

TEST_F(S3StoreIt, UrlForIsTheEndpointUrlOfTheObjectThatServesIt) {
    S3Store store(harness_->config(), "");
    const std::string bytes = random_bytes(500, 4);
    ASSERT_TRUE(store.put_all({{"images/u2/thumb.jpg", "image/jpeg", bytes}}));
    // The same bucket seen at s3rver's own address, which serves anonymous GETs.
    S3Config direct = harness_->config();
    direct.endpoint = harness_->s3rver_url();
    const auto got = http("GET", S3Store(direct, "").url_for("images/u2/thumb.jpg"));
    EXPECT_EQ(got.status, 200);
    EXPECT_EQ(got.body, bytes);
}

TEST_F(S3StoreIt, SessionTokenIsSignedAndSent) {
    harness_.reset();
    harness_ = std::make_unique<S3Harness>(
        std::vector<std::string>{"HARNESS_SESSION_TOKEN=FwoGZXIvYXdzEXAMPLETOKEN+/="});
    S3Config config = harness_->config();
    config.session_token = "FwoGZXIvYXdzEXAMPLETOKEN+/=";
    S3Store store(config, "");
    const Status put = store.put_all({{"images/u3/small.jpg", "image/jpeg", "jpeg bytes"}});
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_EQ(harness_->verify_stats().at("rejected"), 0);
}

TEST_F(S3StoreIt, WrongSecretKeyFailsWithAReadableReasonAndNoSecret) {
    S3Config config = harness_->config();
    config.secret_access_key = "wrongSecretValue/0123456789abcdefghijklmn";
    S3Store store(config, "");
    const Status put = store.put_all({{"images/u4/small.jpg", "image/jpeg", "bytes"}});
    ASSERT_FALSE(put);
    EXPECT_EQ(put.error().stage, Stage::store);
    const std::string reason = put.error().reason;
    EXPECT_NE(reason.find("PUT images/u4/small.jpg: HTTP 403 SignatureDoesNotMatch: The request "
                          "signature we calculated does not match"),
              std::string::npos)
        << reason;
    EXPECT_NE(reason.find("(after 1 attempt)"), std::string::npos) << reason;
    EXPECT_FALSE(put.error().transient) << "a wrong secret does not pass by itself";
    EXPECT_EQ(reason.find("removed"), std::string::npos) << "nothing was stored to remove";
    EXPECT_EQ(reason.find(config.secret_access_key), std::string::npos);
    EXPECT_EQ(store.describe().find(config.secret_access_key), std::string::npos);
    EXPECT_EQ(stored("images/u4/small.jpg").status, 404);
}

TEST_F(S3StoreIt, RetriesRecoverFromAConnectionResetAndTwo503s) {
    // The reset hits the first request, on a fresh connection, so libcurl cannot resend it
    // itself: the store's retry policy must.
    harness_->inject({{"kind", "reset"}, {"count", 1}});
    harness_->inject({{"kind", "status"}, {"status", 503}, {"code", "SlowDown"}, {"count", 2}});
    S3Store store(harness_->config(), "");
    const std::string bytes = random_bytes(4000, 5);
    const Status put = store.put_all({{"images/u5/small.jpg", "image/jpeg", bytes}});
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_EQ(store.retries(), 3u);
    EXPECT_EQ(harness_->faults().at("injected"), 3);
    EXPECT_EQ(stored("images/u5/small.jpg").body, bytes);
}

TEST_F(S3StoreIt, ExhaustedRetriesFailWithTheFinalStatus) {
    harness_->inject({{"kind", "status"}, {"status", 503}, {"code", "SlowDown"}, {"count", 100}});
    S3Config config = harness_->config();
    config.max_attempts = 3;
    S3Store store(config, "");
    const Status put = store.put_all({{"images/u6/small.jpg", "image/jpeg", "bytes"}});
    ASSERT_FALSE(put);
    EXPECT_NE(put.error().reason.find("PUT images/u6/small.jpg: HTTP 503 SlowDown: Please reduce "
                                      "your request rate."),
              std::string::npos)
        << put.error().reason;
    EXPECT_NE(put.error().reason.find("(gave up after 3 attempts)"), std::string::npos)
        << put.error().reason;
    EXPECT_TRUE(put.error().transient) << "throttling passes: the job is deferred";
    EXPECT_EQ(store.retries(), 2u);
}

TEST_F(S3StoreIt, AStalledRequestTimesOutAndIsRetried) {
    harness_->inject({{"kind", "stall"}, {"count", 1}, {"ms", 20000}});
    S3Config config = harness_->config();
    config.request_timeout_ms = 800;
    S3Store store(config, "");
    const Status put = store.put_all({{"images/u7/small.jpg", "image/jpeg", "bytes"}});
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_EQ(store.retries(), 1u);
    EXPECT_EQ(stored("images/u7/small.jpg").body, "bytes");
}

TEST_F(S3StoreIt, ACorruptedBodyIsAFailureNotASuccess) {
    harness_->inject({{"kind", "corrupt"}, {"count", 1}});
    S3Store store(harness_->config(), "");
    const Status put = store.put_all({{"images/u8/small.jpg", "image/jpeg", "original bytes"}});
    ASSERT_FALSE(put);
    EXPECT_NE(put.error().reason.find("HTTP 400 XAmzContentSHA256Mismatch"), std::string::npos)
        << put.error().reason;
    EXPECT_FALSE(put.error().transient);
    EXPECT_EQ(stored("images/u8/small.jpg").status, 404);
}

TEST_F(S3StoreIt, LargeObjectsGoUpInPartsAndReadBackWhole) {
    S3Config config = harness_->config();
    config.multipart_threshold = 5 * 1024 * 1024;
    config.multipart_part_size = 5 * 1024 * 1024;
    S3Store store(config, "");
    const std::string big = random_bytes(11 * 1024 * 1024 + 17, 6);
    const std::string small = random_bytes(300, 7);
    const Status put = store.put_all({{"images/u9/original.png", "image/png", big},
                                      {"images/u9/small.jpg", "image/jpeg", small}});
    ASSERT_TRUE(put) << put.error().message();
    const auto got = stored("images/u9/original.png");
    EXPECT_EQ(got.status, 200);
    EXPECT_TRUE(got.body == big) << "multipart object differs (" << got.body.size() << " bytes)";
    EXPECT_EQ(got.headers.at("content-type"), "image/png");
    EXPECT_EQ(got.headers.at("cache-control"), "public, max-age=31536000");
    const auto stats = harness_->verify_stats();
    EXPECT_EQ(stats.at("verified"), 1 + 1 + 3 + 1);  // small PUT, create, 3 parts, complete
    EXPECT_EQ(stats.at("rejected"), 0) << stats.dump();
}

TEST_F(S3StoreIt, AFailedMultipartUploadIsAbortedNotLeftDangling) {
    harness_->inject({{"kind", "status"},
                      {"status", 400},
                      {"code", "InvalidPart"},
                      {"message", "part refused by the test"},
                      {"match", "partNumber=2"}});
    S3Config config = harness_->config();
    config.multipart_threshold = 5 * 1024 * 1024;
    config.multipart_part_size = 5 * 1024 * 1024;
    S3Store store(config, "");
    const std::string big = random_bytes(11 * 1024 * 1024, 8);
    const Status put = store.put_all({{"images/u10/original.png", "image/png", big}});
    ASSERT_FALSE(put);
    const std::string reason = put.error().reason;
    EXPECT_NE(reason.find("PUT images/u10/original.png (part 2 of 3): HTTP 400 InvalidPart"),
              std::string::npos)
        << reason;
    EXPECT_NE(reason.find("the multipart upload was aborted"), std::string::npos) << reason;

    std::atomic<std::uint64_t> retries{0};
    s3::TransferEngine engine(config, retries);
    s3::S3Client client(engine, s3::job_options(config));
    auto listed = client.perform_one(s3::S3Request{"GET", "", {{"uploads", ""}}, {}, {}, "list"});
    ASSERT_TRUE(listed) << listed.error().message();
    EXPECT_NE(listed->body.find("<ListMultipartUploadsResult>"), std::string::npos);
    EXPECT_EQ(listed->body.find("<Upload>"), std::string::npos) << listed->body;
    EXPECT_EQ(stored("images/u10/original.png").status, 404);
}

TEST_F(S3StoreIt, ConcurrentJobsFromSeveralThreads) {
    S3Store store(harness_->config(), "");
    std::vector<std::thread> threads;
    std::vector<int> ok(4, 0);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            const std::string prefix = "images/t" + std::to_string(t) + "/";
            ok[t] = store.put_all({{prefix + "a.jpg", "image/jpeg", "a"},
                                   {prefix + "b.png", "image/png", "b"}})
                        ? 1
                        : 0;
        });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < 4; ++t) {
        EXPECT_EQ(ok[t], 1) << "thread " << t;
        EXPECT_EQ(stored("images/t" + std::to_string(t) + "/b.png").body, "b");
    }
}

TEST_F(S3StoreIt, CheckPassesForAWorkingBucket) {
    S3Store store(harness_->config(), "");
    const Status checked = store.check();
    EXPECT_TRUE(checked) << checked.error().message();
    EXPECT_EQ(harness_->verify_stats().at("verified"), 1);
}

TEST_F(S3StoreIt, CheckNamesAMissingBucket) {
    S3Config config = harness_->config();
    config.bucket = "no-such-bucket";
    S3Store store(config, "");
    const Status checked = store.check();
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().reason.find("HEAD bucket no-such-bucket: HTTP 404 NoSuchBucket"),
              std::string::npos)
        << checked.error().reason;
    EXPECT_FALSE(checked.error().transient);
}

TEST_F(S3StoreIt, CheckWithAWrongKeyNamesTheCredentials) {
    S3Config config = harness_->config();
    config.secret_access_key = "notTheRightSecret";
    S3Store store(config, "");
    const Status checked = store.check();
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().reason.find("HTTP 403"), std::string::npos) << checked.error().reason;
    EXPECT_NE(checked.error().reason.find("check the credentials"), std::string::npos)
        << checked.error().reason;
    EXPECT_EQ(checked.error().reason.find("notTheRightSecret"), std::string::npos);
}

TEST_F(S3StoreIt, CheckReportsAnUnreachableEndpoint) {
    S3Config config = harness_->config();
    config.endpoint = "http://127.0.0.1:1";
    config.max_attempts = 2;
    S3Store store(config, "");
    const Status checked = store.check();
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().reason.find("cannot reach the S3 endpoint http://127.0.0.1:1"),
              std::string::npos)
        << checked.error().reason;
    EXPECT_NE(checked.error().reason.find("(gave up after 2 attempts)"), std::string::npos);
    EXPECT_TRUE(checked.error().transient);
}

TEST_F(S3StoreIt, APermanentFailureRemovesTheObjectsThePutStored) {
    harness_->inject({{"kind", "status"},
                      {"status", 400},
                      {"code", "InvalidArgument"},
                      {"message", "refused by the test"},
                      {"match", "/c.webp"}});
    S3Store store(harness_->config(), "");
    const Status put = store.put_all({{"images/p1/a.jpg", "image/jpeg", random_bytes(2000, 11)},
                                      {"images/p1/b.png", "image/png", random_bytes(3000, 12)},
                                      {"images/p1/c.webp", "image/webp", random_bytes(100, 13)}});
    ASSERT_FALSE(put);
    EXPECT_FALSE(put.error().transient) << put.error().message();
    EXPECT_NE(put.error().reason.find("PUT images/p1/c.webp: HTTP 400 InvalidArgument"),
              std::string::npos)
        << put.error().reason;
    EXPECT_NE(put.error().reason.find("the 2 object(s) it may have stored were removed"),
              std::string::npos)
        << put.error().reason;
    for (const char* key : {"images/p1/a.jpg", "images/p1/b.png", "images/p1/c.webp"}) {
        EXPECT_EQ(stored(key).status, 404) << key << " was left behind";
    }
}

TEST_F(S3StoreIt, ATransientFailureLeavesTheObjectsForTheRetry) {
    harness_->inject({{"kind", "status"},
                      {"status", 503},
                      {"code", "ServiceUnavailable"},
                      {"match", "/c.webp"},
                      {"count", 100}});
    S3Config config = harness_->config();
    config.max_attempts = 2;
    S3Store store(config, "");
    const std::string a = random_bytes(2000, 14);
    const Status put = store.put_all(
        {{"images/p2/a.jpg", "image/jpeg", a}, {"images/p2/c.webp", "image/webp", "c"}});
    ASSERT_FALSE(put);
    EXPECT_TRUE(put.error().transient) << put.error().message();
    EXPECT_EQ(stored("images/p2/a.jpg").body, a);
    // The retry overwrites the same keys once the store is back.
    ASSERT_EQ(http("POST", harness_->fault_url() + "/_harness/faults/clear").status, 200);
    ASSERT_TRUE(store.put_all(
        {{"images/p2/a.jpg", "image/jpeg", a}, {"images/p2/c.webp", "image/webp", "c"}}));
    EXPECT_EQ(stored("images/p2/c.webp").body, "c");
}

TEST_F(S3StoreIt, RemoveAllDeletesEveryKeyAndAMissingOneIsFine) {
    S3Store store(harness_->config(), "");
    ASSERT_TRUE(store.put_all(
        {{"images/r1/a.jpg", "image/jpeg", "a"}, {"images/r1/b.jpg", "image/jpeg", "b"}}));
    const Status removed =
        store.remove_all({"images/r1/a.jpg", "images/r1/b.jpg", "images/r1/never-stored.jpg"});
    ASSERT_TRUE(removed) << removed.error().message();
    EXPECT_EQ(stored("images/r1/a.jpg").status, 404);
    EXPECT_EQ(stored("images/r1/b.jpg").status, 404);
    EXPECT_EQ(harness_->verify_stats().at("rejected"), 0);
}

TEST_F(S3StoreIt, RemoveAllWithAWrongSecretIsAPermanentFailure) {
    S3Config config = harness_->config();
    config.secret_access_key = "wrongSecretValue/0123456789abcdefghijklmn";
    S3Store store(config, "");
    const Status removed = store.remove_all({"images/r2/a.jpg"});
    ASSERT_FALSE(removed);
    EXPECT_FALSE(removed.error().transient);
    EXPECT_NE(removed.error().reason.find("DELETE images/r2/a.jpg: HTTP 403 SignatureDoesNotMatch"),
              std::string::npos)
        << removed.error().reason;
}

TEST_F(S3StoreIt, AStoreThatStallsEveryRequestIsATransientFailureAfterTheTimeouts) {
    harness_->inject({{"kind", "stall"}, {"count", 1000}, {"ms", 30000}});
    S3Config config = harness_->config();
    config.request_timeout_ms = 500;
    config.max_attempts = 2;
    S3Store store(config, "");
    const auto start = std::chrono::steady_clock::now();
    const Status put = store.put_all(
        {{"images/s1/a.jpg", "image/jpeg", "a"}, {"images/s1/b.jpg", "image/jpeg", "b"}});
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(put);
    EXPECT_TRUE(put.error().transient) << put.error().message();
    EXPECT_NE(put.error().reason.find("timed out"), std::string::npos) << put.error().reason;
    EXPECT_LT(took, std::chrono::seconds(4));
    const Status checked = store.check();
    ASSERT_FALSE(checked);
    EXPECT_TRUE(checked.error().transient);
}

// A clock off by more than 15 minutes passes once NTP corrects it: deferred, not failed, and not
// retried at once (an immediate retry carries the same wrong time).
TEST_F(S3StoreIt, AClockSkewIsTransientWithoutImmediateRetries) {
    harness_->inject({{"kind", "status"},
                      {"status", 403},
                      {"code", "RequestTimeTooSkewed"},
                      {"message",
                       "The difference between the request time and the current time "
                       "is too large."}});
    S3Store store(harness_->config(), "");
    const Status put = store.put_all({{"images/k1/small.jpg", "image/jpeg", "bytes"}});
    ASSERT_FALSE(put);
    EXPECT_TRUE(put.error().transient) << put.error().message();
    EXPECT_NE(put.error().reason.find("clock problem"), std::string::npos) << put.error().reason;
    EXPECT_NE(put.error().reason.find("(after 1 attempt)"), std::string::npos)
        << put.error().reason;
    EXPECT_EQ(store.retries(), 0u);
}

TEST_F(S3StoreIt, AccessDeniedAndNoSuchBucketArePermanent) {
    harness_->inject({{"kind", "status"},
                      {"status", 403},
                      {"code", "AccessDenied"},
                      {"message", "Access Denied"}});
    S3Store store(harness_->config(), "");
    const Status denied = store.put_all({{"images/k2/small.jpg", "image/jpeg", "bytes"}});
    ASSERT_FALSE(denied);
    EXPECT_FALSE(denied.error().transient) << denied.error().message();
    S3Config config = harness_->config();
    config.bucket = "no-such-bucket";
    S3Store elsewhere(config, "");
    const Status missing = elsewhere.put_all({{"images/k2/small.jpg", "image/jpeg", "bytes"}});
    ASSERT_FALSE(missing);
    EXPECT_FALSE(missing.error().transient) << missing.error().message();
    EXPECT_NE(missing.error().reason.find("NoSuchBucket"), std::string::npos)
        << missing.error().reason;
}

// The pool holds open connections when the server stops: they are cut, new ones refused, and
// the store says so as a transient failure quickly; once the server is back on the same port the
// same store works again, without a restart.
TEST_F(S3StoreIt, AStoppedStoreIsTransientAndThePoolRecoversWhenItComesBack) {
    S3Config config = harness_->config();
    config.max_attempts = 3;
    S3Store store(config, "");
    ASSERT_TRUE(store.put_all({{"images/o1/small.jpg", "image/jpeg", "before"}}));

    harness_->stop_store();
    const auto start = std::chrono::steady_clock::now();
    const Status put = store.put_all({{"images/o2/small.jpg", "image/jpeg", "during"}});
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(put);
    EXPECT_TRUE(put.error().transient) << put.error().message();
    EXPECT_NE(put.error().reason.find("cannot reach the S3 endpoint"), std::string::npos)
        << put.error().reason;
    EXPECT_LT(took, std::chrono::seconds(2));
    const Status checked = store.check();
    ASSERT_FALSE(checked);
    EXPECT_TRUE(checked.error().transient);

    harness_->restart_store();
    const Status after = store.put_all({{"images/o2/small.jpg", "image/jpeg", "after"}});
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_EQ(stored("images/o2/small.jpg").body, "after");
    EXPECT_TRUE(store.check());
}

// 4 jobs of 7 objects, as the web profile makes, from 4 threads at once through one store: the
// server sees at most max_connections connections, not one per job or per PUT.
TEST_F(S3StoreIt, TwentyEightPutsFromFourThreadsOpenAtMostThePoolsConnections) {
    S3Config config = harness_->config();
    config.max_connections = 4;
    S3Store store(config, "");
    const std::vector<std::string> variants = {"small.jpg",   "small.webp", "medium.jpg",
                                               "medium.webp", "large.jpg",  "large.webp",
                                               "original.jpg"};
    std::vector<std::thread> jobs;
    std::vector<int> ok(4, 0);
    for (int j = 0; j < 4; ++j) {
        jobs.emplace_back([&, j] {
            std::vector<std::string> bytes;
            for (std::size_t v = 0; v < variants.size(); ++v) {
                bytes.push_back(random_bytes(20000 + v * 1000, static_cast<unsigned>(j * 10 + v)));
            }
            std::vector<PutObject> objects;
            for (std::size_t v = 0; v < variants.size(); ++v) {
                objects.push_back(
                    {"images/j" + std::to_string(j) + "/" + variants[v], "image/jpeg", bytes[v]});
            }
            ok[j] = store.put_all(objects) ? 1 : 0;
        });
    }
    for (auto& job : jobs) job.join();
    EXPECT_EQ(ok, (std::vector<int>{1, 1, 1, 1}));
    const nlohmann::json connections = harness_->connections();
    EXPECT_EQ(connections.at("requests"), 28) << connections.dump();
    EXPECT_LE(connections.at("accepted").get<int>(), 4) << connections.dump();
    EXPECT_LE(connections.at("max_open").get<int>(), 4) << connections.dump();
    EXPECT_EQ(harness_->verify_stats().at("verified"), 28);

    // Later jobs reuse the open connections.
    ASSERT_TRUE(store.put_all({{"images/j9/small.jpg", "image/jpeg", "again"}}));
    ASSERT_TRUE(store.check());
    EXPECT_LE(harness_->connections().at("accepted").get<int>(), 4) << harness_->connections();
}

}  // namespace
}  // namespace imgspool
