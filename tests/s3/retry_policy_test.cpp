#include "store/s3/retry_policy.hpp"

#include <gtest/gtest.h>

namespace imgspool::s3 {
namespace {

using std::chrono::milliseconds;

TEST(RetryPolicy, ServerErrorsAndThrottlingRetry) {
    for (long status : {500L, 502L, 503L, 504L, 429L, 408L}) {
        EXPECT_TRUE(is_retryable_status(status, "")) << status;
    }
    EXPECT_TRUE(is_retryable_status(503, "SlowDown"));
    EXPECT_TRUE(is_retryable_status(400, "RequestTimeout"));
    EXPECT_TRUE(is_retryable_status(200, "InternalError"));  // CompleteMultipartUpload's 200 error
}

TEST(RetryPolicy, ClientErrorsFailAtOnce) {
    EXPECT_FALSE(is_retryable_status(403, "AccessDenied"));
    EXPECT_FALSE(is_retryable_status(403, "SignatureDoesNotMatch"));
    EXPECT_FALSE(is_retryable_status(403, "RequestTimeTooSkewed"));
    EXPECT_FALSE(is_retryable_status(404, "NoSuchBucket"));
    EXPECT_FALSE(is_retryable_status(400, "BadDigest"));
    EXPECT_FALSE(is_retryable_status(400, "XAmzContentSHA256Mismatch"));
    EXPECT_FALSE(is_retryable_status(301, "PermanentRedirect"));
}

TEST(RetryPolicy, BrokenConnectionsRetryConfigurationMistakesDoNot) {
    for (CURLcode c :
         {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
          CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_COULDNT_RESOLVE_HOST}) {
        EXPECT_TRUE(is_retryable_transport(c)) << c;
    }
    for (CURLcode c : {CURLE_URL_MALFORMAT, CURLE_PEER_FAILED_VERIFICATION,
                       CURLE_SSL_CACERT_BADFILE, CURLE_UNSUPPORTED_PROTOCOL}) {
        EXPECT_FALSE(is_retryable_transport(c)) << c;
    }
}

TEST(RetryPolicy, OutagesAndThrottlingAreTransientOnceTheRetriesAreUsedUp) {
    for (long status : {500L, 502L, 503L, 504L, 429L, 408L}) {
        EXPECT_TRUE(is_transient_status(status, "")) << status;
    }
    for (const char* code : {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}) {
        EXPECT_TRUE(is_transient_status(400, code)) << code;
    }
    for (CURLcode c : {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR,
                       CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE,
                       CURLE_COULDNT_RESOLVE_HOST, CURLE_SSL_CONNECT_ERROR, CURLE_OUT_OF_MEMORY}) {
        EXPECT_TRUE(is_transient_transport(c)) << c;
    }
}

TEST(RetryPolicy, AClockSkewIsTransientButNotRetriedAtOnce) {
    EXPECT_FALSE(is_retryable_status(403, "RequestTimeTooSkewed"));
    EXPECT_TRUE(is_transient_status(403, "RequestTimeTooSkewed"));
}

TEST(RetryPolicy, WhatOnlyAPersonCanFixIsPermanent) {
    for (const char* code :
         {"SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId", "ExpiredToken"}) {
        EXPECT_FALSE(is_transient_status(403, code)) << code;
    }
    EXPECT_FALSE(is_transient_status(404, "NoSuchBucket"));
    EXPECT_FALSE(is_transient_status(400, "BadDigest"));
    EXPECT_FALSE(is_transient_status(400, "XAmzContentSHA256Mismatch"));
    EXPECT_FALSE(is_transient_status(400, "InvalidArgument"));
    EXPECT_FALSE(is_transient_status(301, "PermanentRedirect"));
    for (CURLcode c :
         {CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_PEER_FAILED_VERIFICATION,
          CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM, CURLE_WEIRD_SERVER_REPLY}) {
        EXPECT_FALSE(is_transient_transport(c)) << c;
    }
}

TEST(RetryPolicy, AttemptsAreBounded) {
    const RetryPolicy p{3, milliseconds(100), milliseconds(1000)};
    EXPECT_TRUE(p.may_retry(1));
    EXPECT_TRUE(p.may_retry(2));
    EXPECT_FALSE(p.may_retry(3));
}

TEST(RetryPolicy, BackoffIsFullJitterUnderACappedExponentialCeiling) {
    const RetryPolicy p{10, milliseconds(100), milliseconds(1000)};
    std::mt19937_64 rng(42);
    const long long ceilings[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (int failed = 1; failed <= 7; ++failed) {
        long long lowest = 1'000'000;
        long long highest = 0;
        for (int i = 0; i < 2000; ++i) {
            const long long d = p.backoff(failed, rng).count();
            lowest = std::min(lowest, d);
            highest = std::max(highest, d);
        }
        const long long ceiling = ceilings[failed - 1];
        EXPECT_GE(lowest, 0);
        EXPECT_LE(highest, ceiling) << "after " << failed << " failures";
        // Full jitter spreads over the whole range, not just near the ceiling.
        EXPECT_LT(lowest, ceiling / 10) << "after " << failed << " failures";
        EXPECT_GT(highest, ceiling * 9 / 10) << "after " << failed << " failures";
    }
}

TEST(RetryPolicy, HugeAttemptCountsDoNotOverflow) {
    const RetryPolicy p{100, milliseconds(100), milliseconds(5000)};
    std::mt19937_64 rng(1);
    EXPECT_LE(p.backoff(90, rng).count(), 5000);
}

}  // namespace
}  // namespace imgspool::s3
