// The real imgspool daemon with [store] kind = "s3" against a real S3-compatible server on
// 127.0.0.1: s3rver behind a proxy that checks every request's SigV4 signature and payload
// digests with AWS's own signer, and a fault proxy in front of that (tests/s3/harness). Objects
// are read back from s3rver directly, anonymously, with their headers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "common/fs.hpp"
#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/integration/web_outputs.hpp"
#include "tests/s3/s3_harness.hpp"

namespace imgspool::it {
namespace {

using s3_test::HttpAnswer;
using s3_test::S3Harness;

constexpr const char* kWrongSecret = "wrongSecret/Key+9876543210zyxwvutsrqPONM";
constexpr const char* kCdnBase = "https://img.example.test/media";

// A TOML (and JSON) basic string.
std::string quoted(const std::string& s) {
    return nlohmann::json(s).dump();
}

std::string content_type_of(const std::string& name) {
    const std::string ext = name.substr(name.find('.') + 1);
    return ext == "jpg" ? "image/jpeg" : "image/" + ext;
}

// A loopback TCP port that refuses connections: bound, never listening, held until destroyed
// (so nothing else can take it meanwhile).
class RefusingPort {
  public:
    RefusingPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (!fd_.valid() || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
            ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            throw std::runtime_error("cannot bind a loopback port");
        }
        port_ = ntohs(addr.sin_port);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  private:
    fs::UniqueFd fd_;
    int port_ = 0;
};

struct Source {
    std::string name;
    std::string format;  // "jpeg" or "png"
    int width;
    int height;
    std::string bytes;
};

Source jpeg_source(const std::string& name, unsigned seed) {
    return {name, "jpeg", 1000, 800, make_jpeg({.width = 1000, .height = 800, .seed = seed})};
}

Source png_source(const std::string& name, unsigned seed) {
    return {name, "png", 900, 820, make_png({.width = 900, .height = 820, .seed = seed})};
}

class S3DaemonIt : public SpoolFixture {
  protected:
    void SetUp() override {
        SpoolFixture::SetUp();
        if (HasFatalFailure()) return;
        if (auto why = S3Harness::unavailable()) GTEST_SKIP() << *why;
        harness_ = std::make_unique<S3Harness>();
    }

    void TearDown() override {
        if (HasFailure() && harness_) {
            std::cerr << "---- S3 harness ----\nverify proxy: " << harness_->verify_stats().dump()
                      << "\nfault proxy: " << harness_->faults().dump() << "\n";
        }
        SpoolFixture::TearDown();
        harness_.reset();
    }

    std::string bucket() const { return harness_->info().at("bucket"); }
    std::string access_key_id() const { return harness_->info().at("access_key_id"); }
    std::string secret() const { return harness_->info().at("secret_access_key"); }

    // The [store] table for the harness bucket at endpoint, credentials in the file, quick
    // retries; `extra` adds or overrides nothing already listed.
    std::string store_toml(const std::string& endpoint, const std::string& extra = "") const {
        return "kind = \"s3\"\nbucket = " + quoted(bucket()) + "\nregion = \"us-east-1\"\n" +
               "endpoint = " + quoted(endpoint) + "\naccess_key_id = " + quoted(access_key_id()) +
               "\nsecret_access_key = " + quoted(secret()) +
               "\nconnect_timeout_ms = 2000\nrequest_timeout_ms = 10000\n"
               "retry_base_delay_ms = 10\nretry_max_delay_ms = 100\n" +
               extra;
    }

    static DaemonConfig daemon_config(const std::string& store) {
        DaemonConfig c;
        c.settle_ms = 200;
        c.store_toml = store;
        return c;
    }

    // The settings of the harness bucket from the environment alone, the S3_* way.
    std::vector<std::string> s3_environment(const std::string& secret_key) const {
        return {"S3_BUCKET=" + bucket(), "S3_ENDPOINT=" + harness_->fault_url(),
                "S3_ACCESS_KEY_ID=" + access_key_id(), "S3_SECRET_ACCESS_KEY=" + secret_key};
    }

    // The only job of `name` once it is deferred (pending with a last_error) after at least
    // `attempts` runs.
    std::optional<Row> wait_deferred(const std::string& name, int attempts = 1) {
        std::optional<Row> deferred;
        wait_for([&] {
            auto jobs = jobs_for(name);
            if (jobs.size() == 1 && jobs[0].at("status") == "pending" &&
                !jobs[0].at("last_error").empty() &&
                std::stoi(jobs[0].at("attempts")) >= attempts) {
                deferred = jobs[0];
            }
            return deferred.has_value();
        });
        return deferred;
    }

    // The endpoint (path-style) base of the objects' URLs: fault proxy URL + "/" + bucket.
    std::string endpoint_base() const { return harness_->fault_url() + "/" + bucket(); }

    // What s3rver holds for an object of upload_id, read straight from it (no proxies).
    HttpAnswer stored(const std::string& upload_id, const std::string& name) const {
        return s3_test::http(
            "GET", harness_->s3rver_url() + "/" + bucket() + "/images/" + upload_id + "/" + name);
    }

    // Every object of the web profile for upload_id is in the bucket, decodes to the right
    // format and size, and carries the right Content-Type and Cache-Control.
    ::testing::AssertionResult s3_outputs_ok(const std::string& upload_id, const Source& src) {
        for (const std::string& name : web_output_names(src.format)) {
            HttpAnswer got = stored(upload_id, name);
            if (got.status != 200) {
                return ::testing::AssertionFailure() << "GET " << name << " of " << upload_id
                                                     << " from s3rver: HTTP " << got.status;
            }
            if (auto ok = web_output_ok(name, got.body, src.width, src.height); !ok) return ok;
            if (got.headers["content-type"] != content_type_of(name)) {
                return ::testing::AssertionFailure()
                       << name << " has Content-Type \"" << got.headers["content-type"] << "\"";
            }
            if (got.headers["cache-control"] != "public, max-age=31536000") {
                return ::testing::AssertionFailure()
                       << name << " has Cache-Control \"" << got.headers["cache-control"] << "\"";
            }
        }
        return ::testing::AssertionSuccess();
    }

    // Every request that went through the fault proxy reached the verifying proxy, which
    // checked its signature and payload hash and accepted it.
    ::testing::AssertionResult all_requests_verified() const {
        // A request can be between the two proxies (the health check's HEAD comes any time):
        // the counts are compared until they agree, for a short while.
        nlohmann::json stats, faults;
        for (int i = 0; i < 40; ++i) {
            stats = harness_->verify_stats();
            faults = harness_->faults();
            if (stats.at("rejected") != 0) {
                return ::testing::AssertionFailure()
                       << "the verifying proxy rejected requests: " << stats.dump();
            }
            if (stats.at("verified") == faults.at("passed") && stats.at("verified") != 0) {
                return ::testing::AssertionSuccess();
            }
            std::this_thread::sleep_for(50ms);
        }
        return ::testing::AssertionFailure()
               << "requests passed by the fault proxy: " << faults.at("passed")
               << ", verified: " << stats.at("verified");
    }

    void drop(const Source& src) { write_file(inbox() / src.name, src.bytes); }

    // Rows of derivative_cache for the bytes of this job or naming it.
    std::vector<Row> cache_rows_for(const Row& job) {
        return query("SELECT * FROM derivative_cache WHERE source_hash = ?1 OR upload_id = ?2",
                     {job.at("source_hash"), job.at("id")});
    }

    // The files under the temp folder (logs, database, WAL, error notes, command output)
    // whose bytes contain needle.
    std::vector<std::string> files_containing(const std::string& needle) const {
        std::vector<std::string> out;
        for (const std::string& rel : files_under(root())) {
            const stdfs::path p = root() / rel;
            if (!stdfs::is_regular_file(stdfs::symlink_status(p))) continue;
            if (read_file(p).find(needle) != std::string::npos) out.push_back(rel);
        }
        return out;
    }

    // Drops a JPEG and a PNG, waits for both, and checks the objects, the recorded URLs
    // (under url_base) and that every request was verified.
    void jpeg_and_png_complete(const std::string& url_base) {
        ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
        const std::vector<Source> sources = {jpeg_source("photo.jpg", 301),
                                             png_source("drawing.png", 302)};
        for (const Source& s : sources) drop(s);
        for (const Source& s : sources) {
            const std::optional<Row> job = wait_complete(s.name);
            ASSERT_TRUE(job) << s.name << " was not completed";
            const std::string id = job->at("id");
            EXPECT_EQ(job->at("cache_hit"), "0");
            EXPECT_TRUE(s3_outputs_ok(id, s));
            EXPECT_EQ(recorded_urls(*this, id), expected_urls(id, s.format, url_base));
        }
        EXPECT_TRUE(all_requests_verified());
        // The health check's HEAD of the bucket comes on top of these.
        EXPECT_EQ(harness_->verify_stats().at("verified_by_method").value("PUT", 0), 14)
            << "one PUT per object";
        EXPECT_FALSE(stdfs::exists(objects())) << "nothing may go to a local store";
    }

    std::unique_ptr<S3Harness> harness_;
};

TEST_F(S3DaemonIt, JpegAndPngAreStoredWithTypeCacheHeadersAndEndpointUrls) {
    write_config(daemon_config(store_toml(harness_->fault_url())));
    start_daemon();
    jpeg_and_png_complete(endpoint_base());
}

// A manifest whose source is an s3:// object is read with the store's signed client (no
// [fetch.s3]): here a derivative the daemon itself stored, re-rendered as a source of its own.
TEST_F(S3DaemonIt, AManifestWithAnS3SourceIsReadWithTheSignedClient) {
    write_config(daemon_config(store_toml(harness_->fault_url())));
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const Source src = jpeg_source("first.jpg", 351);
    drop(src);
    const std::optional<Row> first = wait_complete(src.name);
    ASSERT_TRUE(first) << daemon_log();
    const HttpAnswer large = stored(first->at("id"), "large.jpg");
    ASSERT_EQ(large.status, 200);

    const std::string key = "images/" + first->at("id") + "/large.jpg";
    write_file(
        inbox() / "again.job.json",
        nlohmann::json({{"source", "s3://" + bucket() + "/" + key}, {"tool", "s3-test"}}).dump());
    write_file(
        inbox() / "gone.job.json",
        nlohmann::json({{"source", "s3://" + bucket() + "/images/no-such-object.jpg"}}).dump());
    const std::optional<Row> again = wait_complete("again.job.json");
    ASSERT_TRUE(again) << daemon_log();
    EXPECT_EQ(again->at("source_hash"), sha256_hex(large.body)) << "the object's bytes, read whole";
    EXPECT_EQ(again->at("source_url"), "s3://" + bucket() + "/" + key);
    const std::optional<Row> gone = wait_failed("gone.job.json");
    ASSERT_TRUE(gone) << daemon_log();
    EXPECT_EQ(gone->at("error_stage"), "fetch");
    EXPECT_TRUE(contains_any(gone->at("error"), {"nosuchkey", "not found", "404"}))
        << gone->at("error");
    EXPECT_TRUE(all_requests_verified());
}

TEST_F(S3DaemonIt, CdnUrlFromTheEnvironmentIsTheBaseOfTheRecordedUrls) {
    write_config(daemon_config(store_toml(harness_->fault_url())));
    set_daemon_env({std::string("CDN_URL=") + kCdnBase});
    start_daemon();
    jpeg_and_png_complete(kCdnBase);
}

TEST_F(S3DaemonIt, SettingsFromS3EnvironmentOnlyWorkAndTheSecretIsNeverWritten) {
    write_config(daemon_config("kind = \"s3\""));
    const std::vector<std::string> env = s3_environment(secret());

    const CommandResult check =
        run_imgspool({"check-config", "-c", config_path().string()}, root(), 30s, env);
    EXPECT_EQ(check.status.describe(), "exit 0") << check.out << check.err;
    EXPECT_NE(check.out.find("bucket = " + quoted(bucket())), std::string::npos) << check.out;
    EXPECT_NE(check.out.find("endpoint = " + quoted(harness_->fault_url())), std::string::npos)
        << check.out;
    EXPECT_NE(check.out.find("access_key_id = \"AKIA****\""), std::string::npos) << check.out;
    EXPECT_NE(check.out.find("secret_access_key = \"****\""), std::string::npos) << check.out;
    EXPECT_NE(check.err.find("config OK"), std::string::npos) << check.err;

    set_daemon_env(env);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const Source ok = jpeg_source("from-env.jpg", 311);
    drop(ok);
    const std::optional<Row> done_job = wait_complete(ok.name);
    ASSERT_TRUE(done_job);
    EXPECT_TRUE(s3_outputs_ok(done_job->at("id"), ok));
    EXPECT_EQ(recorded_urls(*this, done_job->at("id")),
              expected_urls(done_job->at("id"), "jpeg", endpoint_base()));

    // Failures write error notes: one the store refuses, one rejected before any upload.
    harness_->inject({{"kind", "status"},
                      {"status", 403},
                      {"code", "AccessDenied"},
                      {"method", "PUT"},
                      {"count", 1}});
    const Source refused = jpeg_source("refused.jpg", 312);
    drop(refused);
    const std::optional<Row> refused_job = wait_failed(refused.name);
    ASSERT_TRUE(refused_job);
    EXPECT_EQ(refused_job->at("error_stage"), "store");
    EXPECT_NE(refused_job->at("error").find("AccessDenied"), std::string::npos)
        << refused_job->at("error");
    write_file(inbox() / "animation.gif", gif_bytes());
    ASSERT_TRUE(wait_failed("animation.gif"));
    EXPECT_TRUE(all_requests_verified());

    kill_daemon();
    ASSERT_TRUE(stdfs::exists(failed() / "refused.jpg.error.json"));
    if (!on_postgres()) {
        ASSERT_TRUE(stdfs::exists(db_path()));
    }
    EXPECT_EQ(files_containing(secret()), std::vector<std::string>{})
        << "the secret key was written to these files";
}

TEST_F(S3DaemonIt, AwsFallbackVariablesWorkAndS3VariablesWinOverThem) {
    write_config(daemon_config("kind = \"s3\""));
    const std::vector<std::string> aws_env = {
        "S3_BUCKET=" + bucket(), "S3_ENDPOINT=" + harness_->fault_url(), "AWS_REGION=us-east-1",
        "AWS_ACCESS_KEY_ID=" + access_key_id(), "AWS_SECRET_ACCESS_KEY=" + secret()};
    const CommandResult check =
        run_imgspool({"check-config", "-c", config_path().string()}, root(), 30s, aws_env);
    EXPECT_EQ(check.status.describe(), "exit 0") << check.out << check.err;
    EXPECT_NE(check.out.find("secret_access_key = \"****\""), std::string::npos) << check.out;

    // A wrong AWS_SECRET_ACCESS_KEY does not matter when S3_SECRET_ACCESS_KEY is set.
    std::vector<std::string> both = s3_environment(secret());
    both.push_back(std::string("AWS_SECRET_ACCESS_KEY=") + kWrongSecret);
    const CommandResult precedence =
        run_imgspool({"check-config", "-c", config_path().string()}, root(), 30s, both);
    EXPECT_EQ(precedence.status.describe(), "exit 0") << precedence.out << precedence.err;

    set_daemon_env(aws_env);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const Source src = png_source("aws.png", 321);
    drop(src);
    const std::optional<Row> job = wait_complete(src.name);
    ASSERT_TRUE(job);
    EXPECT_TRUE(s3_outputs_ok(job->at("id"), src));
    EXPECT_TRUE(all_requests_verified());
    kill_daemon();
    EXPECT_EQ(files_containing(secret()), std::vector<std::string>{})
        << "the secret key was written to these files";
}

TEST_F(S3DaemonIt, WrongSecretFailsCheckConfigAndTheJobAtStoreWithSignatureDoesNotMatch) {
    write_config(daemon_config("kind = \"s3\""));
    const std::vector<std::string> env = s3_environment(kWrongSecret);

    const CommandResult check =
        run_imgspool({"check-config", "-c", config_path().string()}, root(), 30s, env);
    EXPECT_TRUE(check.status.exited && check.status.code != 0) << check.status.describe();
    EXPECT_TRUE(contains_any(check.err, {"signaturedoesnotmatch", "check the credentials"}))
        << check.err;

    set_daemon_env(env);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const Source src = jpeg_source("signed-wrong.jpg", 331);
    drop(src);
    const std::optional<Row> job = wait_failed(src.name);
    ASSERT_TRUE(job) << "the job did not fail";
    EXPECT_EQ(job->at("error_stage"), "store");
    EXPECT_NE(job->at("error").find("SignatureDoesNotMatch"), std::string::npos)
        << job->at("error");
    EXPECT_TRUE(contains_any(job->at("error"), {"check the credentials"})) << job->at("error");

    const nlohmann::json note = read_json(failed() / (src.name + ".error.json"));
    EXPECT_EQ(note.at("upload_id"), job->at("id"));
    EXPECT_EQ(note.at("stage"), "store");
    EXPECT_NE(note.at("error").get<std::string>().find("SignatureDoesNotMatch"), std::string::npos)
        << note.dump();
    EXPECT_EQ(read_file(failed() / src.name), src.bytes);

    EXPECT_EQ(job->at("source_hash"), sha256_hex(src.bytes));
    EXPECT_TRUE(cache_rows_for(*job).empty()) << "a failed upload was recorded in the cache";
    EXPECT_TRUE(query("SELECT * FROM images WHERE upload_id = ?1", {job->at("id")}).empty());

    // The verifying proxy (AWS's signer) is what refused the requests.
    const nlohmann::json stats = harness_->verify_stats();
    EXPECT_EQ(stats.at("verified"), 0) << stats.dump();
    ASSERT_GT(stats.at("rejected").get<int>(), 0) << stats.dump();
    for (const auto& r : stats.at("rejections")) {
        EXPECT_EQ(r.at("code"), "SignatureDoesNotMatch") << r.dump();
    }

    kill_daemon();
    EXPECT_EQ(files_containing(kWrongSecret), std::vector<std::string>{})
        << "the (wrong) secret key was written to these files";
}

TEST_F(S3DaemonIt, TransientFaultsAreRetriedAndTheJobCompletes) {
    write_config(daemon_config(store_toml(harness_->fault_url())));
    harness_->inject({{"kind", "status"},
                      {"status", 503},
                      {"code", "SlowDown"},
                      {"method", "PUT"},
                      {"count", 2}});
    harness_->inject({{"kind", "reset"}, {"method", "PUT"}});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const Source src = jpeg_source("bumpy.jpg", 341);
    drop(src);
    const std::optional<Row> job = wait_complete(src.name);
    ASSERT_TRUE(job) << "the retries did not recover";
    EXPECT_TRUE(s3_outputs_ok(job->at("id"), src));
    EXPECT_EQ(recorded_urls(*this, job->at("id")),
              expected_urls(job->at("id"), "jpeg", endpoint_base()));
    const nlohmann::json faults = harness_->faults();
    EXPECT_EQ(faults.at("injected"), 3) << faults.dump();
    EXPECT_TRUE(faults.at("pending").empty()) << faults.dump();
    EXPECT_TRUE(all_requests_verified());
}

TEST_F(S3DaemonIt, AnUnreachableStoreDefersTheJobWhichCompletesOnceTheStoreIsFixed) {
    const RefusingPort nothing_there;
    DaemonConfig config = daemon_config(store_toml(nothing_there.url(), "max_attempts = 2\n"));
    config.daemon = {{"retry_min_s", "1"}, {"retry_max_s", "2"}};
    write_config(config);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const Source src = jpeg_source("offline.jpg", 351);
    drop(src);
    // Deferred, not failed: pending with the reason and attempts, the file kept in work/.
    const std::optional<Row> deferred = wait_deferred(src.name, 2);
    ASSERT_TRUE(deferred) << tree();
    EXPECT_EQ(deferred->at("status"), "pending");
    EXPECT_TRUE(contains_any(deferred->at("last_error"), {"cannot reach the s3 endpoint"}))
        << deferred->at("last_error");
    EXPECT_FALSE(deferred->at("next_attempt_at").empty());
    EXPECT_TRUE(files_under(failed()).empty());
    EXPECT_EQ(files_under(work()).size(), 1u) << tree();
    EXPECT_TRUE(cache_rows_for(*deferred).empty());

    // The operator fixes the endpoint and restarts: the same job completes, nobody re-drops.
    kill_daemon();
    config.store_toml = store_toml(harness_->fault_url());
    write_config(config);
    start_daemon();
    const std::optional<Row> job = wait_complete(src.name);
    ASSERT_TRUE(job) << "the deferred job was not completed\n" << tree();
    EXPECT_EQ(job->at("id"), deferred->at("id"));
    EXPECT_EQ(job->at("cache_hit"), "0");
    EXPECT_TRUE(s3_outputs_ok(job->at("id"), src));
    EXPECT_EQ(recorded_urls(*this, job->at("id")),
              expected_urls(job->at("id"), "jpeg", endpoint_base()));
    EXPECT_TRUE(files_under(failed()).empty());
    EXPECT_TRUE(files_under(work()).empty()) << tree();
    EXPECT_TRUE(all_requests_verified());
}

TEST_F(S3DaemonIt, ExhaustedRetriesDeferAndTheJobCompletesWhenTheStoreRecovers) {
    DaemonConfig config = daemon_config(store_toml(harness_->fault_url(), "max_attempts = 2\n"));
    config.daemon = {{"retry_min_s", "1"}, {"retry_max_s", "2"}};
    write_config(config);
    harness_->inject({{"kind", "status"},
                      {"status", 503},
                      {"code", "SlowDown"},
                      {"method", "PUT"},
                      {"count", 1000}});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const Source src = png_source("busy.png", 361);
    drop(src);
    const std::optional<Row> deferred = wait_deferred(src.name);
    ASSERT_TRUE(deferred) << tree();
    EXPECT_EQ(deferred->at("status"), "pending");
    EXPECT_NE(deferred->at("last_error").find("503 SlowDown"), std::string::npos)
        << deferred->at("last_error");
    EXPECT_NE(deferred->at("last_error").find("gave up after 2 attempts"), std::string::npos)
        << deferred->at("last_error");
    EXPECT_TRUE(files_under(failed()).empty());

    // The store recovers: the same job uploads for real, no cache hit for unstored objects.
    ASSERT_EQ(s3_test::http("POST", harness_->fault_url() + "/_harness/faults/clear").status, 200);
    const std::optional<Row> job = wait_complete(src.name);
    ASSERT_TRUE(job) << "the deferred job was not completed";
    EXPECT_EQ(job->at("id"), deferred->at("id"));
    EXPECT_EQ(job->at("cache_hit"), "0");
    EXPECT_TRUE(s3_outputs_ok(job->at("id"), src));
    EXPECT_TRUE(files_under(failed()).empty());
    EXPECT_TRUE(all_requests_verified());
}

// The store stopped for 60 s and started again on the same port while 30 photos are dropped:
// every one completes, none goes to failed/, nobody acts.
TEST_F(S3DaemonIt, AStoreStoppedForAMinuteLosesNothingAndEveryDropCompletes) {
    DaemonConfig config = daemon_config(store_toml(harness_->fault_url()));
    config.daemon = {{"retry_min_s", "1"}, {"retry_max_s", "4"}};
    config.workers = 2;
    write_config(config);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    harness_->stop_store();
    const auto down_at = std::chrono::steady_clock::now();
    std::vector<Source> sources;
    for (unsigned i = 0; i < 30; ++i) {
        sources.push_back(jpeg_source("outage-" + std::to_string(i) + ".jpg", 900 + i));
        drop(sources.back());
        std::this_thread::sleep_for(1s);  // dropped over the first half of the outage
    }
    EXPECT_TRUE(files_under(failed()).empty()) << tree();
    std::this_thread::sleep_until(down_at + 60s);
    EXPECT_TRUE(files_under(failed()).empty()) << tree();
    EXPECT_FALSE(query("SELECT id FROM jobs_deferred").empty()) << "no job was deferred";
    harness_->restart_store();
    for (const Source& src : sources) {
        const std::optional<Row> job = wait_complete(src.name, 60s);
        ASSERT_TRUE(job) << src.name << " did not complete\n" << tree();
        EXPECT_TRUE(s3_outputs_ok(job->at("id"), src)) << src.name;
    }
    EXPECT_TRUE(files_under(failed()).empty());
    EXPECT_TRUE(files_under(work()).empty()) << tree();
    EXPECT_TRUE(query("SELECT id FROM upload_jobs WHERE status <> 'complete' AND source_name "
                      "LIKE 'outage-%'")
                    .empty());
    EXPECT_TRUE(daemon_running());
}

// A store that accepts connections and never answers: each request times out, the job is
// deferred (not failed), and completes once the store answers again.
TEST_F(S3DaemonIt, AStoreThatNeverAnswersDefersJobsUntilItAnswers) {
    std::string store = store_toml(harness_->fault_url(), "max_attempts = 1\n");
    store.replace(store.find("request_timeout_ms = 10000"), 26, "request_timeout_ms = 1500");
    DaemonConfig config = daemon_config(store);
    config.daemon = {{"retry_min_s", "1"}, {"retry_max_s", "2"}};
    write_config(config);
    harness_->inject({{"kind", "stall"}, {"ms", 600000}, {"count", 100000}});
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const Source src = jpeg_source("hung.jpg", 381);
    drop(src);
    const std::optional<Row> deferred = wait_deferred(src.name);
    ASSERT_TRUE(deferred) << tree();
    EXPECT_EQ(deferred->at("status"), "pending");
    EXPECT_TRUE(contains_any(deferred->at("last_error"), {"timeout", "timed out"}))
        << deferred->at("last_error");
    EXPECT_TRUE(files_under(failed()).empty());
    ASSERT_EQ(s3_test::http("POST", harness_->fault_url() + "/_harness/faults/clear").status, 200);
    const std::optional<Row> job = wait_complete(src.name);
    ASSERT_TRUE(job) << tree();
    EXPECT_EQ(job->at("id"), deferred->at("id"));
    EXPECT_TRUE(s3_outputs_ok(job->at("id"), src));
}

// Four photos dropped at once through the daemon: 4 jobs x 7 objects of the web profile = 28
// PUTs from 4 workers, all through the store's one connection pool, which opens at most
// max_connections connections (not one per job or per PUT) and keeps them for later jobs.
TEST_F(S3DaemonIt, TwentyEightPutsOpenAtMostThePoolsConnections) {
    DaemonConfig config = daemon_config(store_toml(harness_->fault_url(), "max_connections = 3\n"));
    config.workers = 4;
    write_config(config);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    std::vector<Source> sources;
    for (unsigned i = 0; i < 4; ++i) {
        sources.push_back(jpeg_source("pooled-" + std::to_string(i) + ".jpg", 370 + i));
    }
    for (const Source& s : sources) drop(s);
    for (const Source& s : sources) {
        const std::optional<Row> job = wait_complete(s.name);
        ASSERT_TRUE(job) << s.name << " was not completed";
        EXPECT_TRUE(s3_outputs_ok(job->at("id"), s));
    }
    EXPECT_TRUE(all_requests_verified());
    const nlohmann::json connections = harness_->connections();
    EXPECT_GE(connections.at("requests").get<int>(), 28) << connections.dump();
    EXPECT_LE(connections.at("accepted").get<int>(), 3) << connections.dump();
    EXPECT_LE(connections.at("max_open").get<int>(), 3) << connections.dump();
}

}  // namespace
}  // namespace imgspool::it
