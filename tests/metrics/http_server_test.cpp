#include "metrics/http_server.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "metrics/imgspool_metrics.hpp"
#include "tests/metrics/exposition.hpp"

namespace imgspool {
namespace {

struct Reply {
    long status = 0;
    std::string body;
    std::string content_type;
    std::string error;  // set when the request itself failed
};

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

size_t append(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

Reply request(int port, const std::string& path, const char* method = "GET") {
    Reply r;
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &append);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &r.body);
    const CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK) {
        r.error = curl_easy_strerror(rc);
        return r;
    }
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &r.status);
    const char* type = nullptr;
    curl_easy_getinfo(curl.get(), CURLINFO_CONTENT_TYPE, &type);
    if (type) r.content_type = type;
    return r;
}

// Runs `promtool check metrics` on the text; returns its exit status and everything it printed.
std::pair<int, std::string> promtool_check(const std::string& text) {
    char dir_template[] = "/tmp/imgspool-promtool-XXXXXX";
    const char* dir = mkdtemp(dir_template);
    if (!dir) return {-1, "mkdtemp failed"};
    const std::string input = std::string(dir) + "/metrics.txt";
    std::ofstream(input) << text;
    const std::string cmd = std::string(PROMTOOL_PATH) + " check metrics < " + input + " 2>&1";
    std::string output;
    int status = -1;
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[512];
        while (size_t n = fread(buf, 1, sizeof buf, p)) output.append(buf, n);
        const int raw = pclose(p);
        status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    }
    std::remove(input.c_str());
    rmdir(dir);
    return {status, output};
}

class HttpServerTest : public ::testing::Test {
  protected:
    HttpServer server_{{.bind = "127.0.0.1", .port = 0},
                       [this] { return metrics_text_; },
                       [this] {
                           return ready_ ? Readiness{} : Readiness{false, "watchers not armed"};
                       }};
    std::string metrics_text_ = "# HELP up_total Ups.\n# TYPE up_total counter\nup_total 1\n";
    std::atomic<bool> ready_{true};

    void SetUp() override {
        const Status started = server_.start();
        ASSERT_TRUE(started.ok()) << started.error().message();
        ASSERT_GT(server_.port(), 0);
    }
};

TEST_F(HttpServerTest, ServesMetricsInTheExpositionFormat) {
    const Reply r = request(server_.port(), "/metrics");
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, metrics_text_);
    EXPECT_NE(r.content_type.find("text/plain; version=0.0.4"), std::string::npos)
        << r.content_type;
}

TEST_F(HttpServerTest, HealthzIsOkWhileRunning) {
    const Reply r = request(server_.port(), "/healthz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok");
}

TEST_F(HttpServerTest, ReadyzFollowsTheReadinessCheck) {
    Reply r = request(server_.port(), "/readyz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ready");
    ready_ = false;
    r = request(server_.port(), "/readyz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "watchers not armed");
}

TEST_F(HttpServerTest, UnknownPathsAre404AndOtherMethods405) {
    EXPECT_EQ(request(server_.port(), "/").status, 404);
    EXPECT_EQ(request(server_.port(), "/metrics/extra").status, 404);
    EXPECT_EQ(request(server_.port(), "/metrics", "POST").status, 405);
    EXPECT_EQ(request(server_.port(), "/healthz", "DELETE").status, 405);
}

TEST_F(HttpServerTest, ATakenPortIsReportedAndStopIsIdempotent) {
    HttpServer second(
        {.bind = "127.0.0.1", .port = server_.port()}, [] { return ""; },
        [] { return Readiness{}; });
    const Status s = second.start();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().reason.find("127.0.0.1:" + std::to_string(server_.port())),
              std::string::npos)
        << s.error().reason;
    EXPECT_NE(s.error().reason.find("in use"), std::string::npos) << s.error().reason;

    const int port = server_.port();
    server_.stop();
    server_.stop();
    EXPECT_NE(request(port, "/healthz").error, "");
}

TEST(HttpServer, RejectsABindAddressThatIsNoAddress) {
    HttpServer server(
        {.bind = "metrics.example", .port = 0}, [] { return ""; }, [] { return Readiness{}; });
    const Status s = server.start();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().reason.find("not an IPv4 or IPv6 address"), std::string::npos);
}

// A readiness check and a metrics source that hang (as a check of a stalled store would) hold
// up only their own requests: /healthz answers at once while both hang.
TEST(HttpServer, HealthzAnswersAtOnceWhileReadyzAndMetricsHang) {
    std::mutex gate_mutex;
    std::condition_variable gate_cv;
    bool open = false;
    std::atomic<int> waiting{0};
    auto hang = [&] {
        ++waiting;
        std::unique_lock lock(gate_mutex);
        gate_cv.wait(lock, [&] { return open; });
    };
    HttpServer server(
        {.bind = "127.0.0.1", .port = 0},
        [&] {
            hang();
            return std::string("up_total 1\n");
        },
        [&] {
            hang();
            return Readiness{false, "store unreachable: late"};
        });
    ASSERT_TRUE(server.start().ok());
    std::thread metrics([&] { EXPECT_EQ(request(server.port(), "/metrics").status, 200); });
    std::thread ready([&] { EXPECT_EQ(request(server.port(), "/readyz").status, 503); });
    for (int i = 0; i < 500 && waiting < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(waiting, 2) << "the hanging requests did not reach their callbacks";

    for (int i = 0; i < 5; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        const Reply r = request(server.port(), "/healthz");
        const auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_EQ(r.status, 200) << r.error;
        EXPECT_EQ(r.body, "ok");
        // Far below the hang (which lasts until the gate opens); loose enough for a loaded
        // machine under the sanitizers. The daemon's probes_it_test holds the 100 ms line.
        EXPECT_LT(took, std::chrono::milliseconds(1000))
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
    }
    {
        std::lock_guard lock(gate_mutex);
        open = true;
    }
    gate_cv.notify_all();
    metrics.join();
    ready.join();
}

// The real exposition, after real-looking jobs, scraped over HTTP and checked by promtool.
// Every line promtool prints fails the test: parse errors and lint problems alike, because the
// metric set is lint-clean and should stay so. As the daemon serves it: with its node label.
TEST(HttpServer, ImgspoolExpositionPassesPromtool) {
    ImgspoolMetrics metrics(
        NodeInfo{.node = "a", .host = "h", .version = "0.1.0", .database = "sqlite"});
    JobOutcome ok;
    ok.upload_id = "u1";
    ok.profile = "web \"quoted\"\\path";
    ok.success = true;
    ok.final_path = "/spool/done/a.jpg";
    ok.original_bytes = 5000;
    ok.output_bytes = 2000;
    ok.outputs = {StoredVariant{"small", "jpeg", "k", "u", 10, 10, 2000}};
    ok.elapsed = std::chrono::duration<double>(0.3);
    metrics.job_finished(ok);
    JobOutcome bad;
    bad.upload_id = "u2";
    bad.profile = "web";
    bad.error = make_error(Stage::validate, "too small");
    bad.final_path = "/spool/failed/b.jpg";
    metrics.job_finished(bad);
    metrics.sample(
        {.jobs_by_state = std::map<std::string, std::int64_t>{{"complete", 1}}, .queue_depth = 2});

    HttpServer server(
        {.bind = "127.0.0.1", .port = 0}, [&] { return metrics.render(); },
        [] { return Readiness{}; });
    ASSERT_TRUE(server.start().ok());
    const Reply r = request(server.port(), "/metrics");
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(testing::sample_value(r.body, "generation_success_total{node=\"a\"}"), 1);
    EXPECT_EQ(
        testing::sample_value(r.body, "generation_failure_total{node=\"a\",reason=\"validate\"}"),
        1);

    const auto [status, output] = promtool_check(r.body);
    EXPECT_EQ(status, 0) << output << "\n--- exposition ---\n" << r.body;
    EXPECT_EQ(output, "") << "promtool complained:\n" << output;
}

}  // namespace
}  // namespace imgspool
