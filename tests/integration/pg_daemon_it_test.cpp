// The daemon on PostgreSQL while the server goes away (the pg_server fixture's real server,
// stopped and started with pg_ctl): deferred jobs run as soon as it answers again, not after
// their retry delay; a server that does not answer at start stops `imgspool run` at once with a
// message that names the database but never its password; GET /images/{id} is 503, not 404,
// while the record cannot be read; /metrics names the node and counts the reconnects.
// RUN_SERIAL (CMakeLists): every test here stops the server that other tests share.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/loopback.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/pg/pg_test_server.hpp"
#include "tests/pg/stopped_server.hpp"

namespace imgspool::it {
namespace {

using Clock = std::chrono::steady_clock;

// One column of a query's rows on the test's database; empty while the server does not answer.
std::vector<std::string> pg_column(const std::string& url, const std::string& sql,
                                   const std::string& column,
                                   const std::vector<std::string>& params = {}) {
    std::vector<std::string> out;
    for (Row& r : pg_rows(url, sql, params)) out.push_back(r[column]);
    return out;
}

struct HttpAnswer {
    int status = 0;       // 0: curl failed
    std::string headers;  // lower-cased
    std::string body;
};

// GET with the curl CLI, headers included (libcurl's helper of loopback.hpp drops them).
HttpAnswer curl_get(const std::string& url) {
    const std::string command = "curl -sS --noproxy '*' --max-time 20 -i '" + url + "'";
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return {};
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
    HttpAnswer a;
    const auto end = out.find("\r\n\r\n");
    if (end == std::string::npos || out.rfind("HTTP/", 0) != 0) return a;
    a.headers = out.substr(0, end);
    for (char& c : a.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    a.body = out.substr(end + 4);
    try {
        a.status = std::stoi(out.substr(out.find(' ') + 1, 3));
    } catch (const std::exception&) {
        a.status = 0;
    }
    return a;
}

class PgDaemonTest : public SpoolFixture {
  protected:
    void SetUp() override {
        SpoolFixture::SetUp();
        if (HasFatalFailure()) return;
        url_ = pg_test::fresh_database("nodeobs");
        metrics_port_ = free_port();
        http_port_ = free_port();
        ASSERT_GT(metrics_port_, 0);
        ASSERT_GT(http_port_, 0);
        write_config(config());
    }

    // The test's database, the node "it-a", /metrics and the HTTP drop-in on free ports.
    DaemonConfig config() const {
        DaemonConfig c;
        c.daemon = {{"node", "\"it-a\""}};
        c.extra_toml = "\n[database]\nurl = \"" + url_ +
                       "\"\n\n[metrics]\nenabled = true\nbind = \"127.0.0.1\"\nport = " +
                       std::to_string(metrics_port_) +
                       "\n\n[http]\nenabled = true\nbind = \"127.0.0.1\"\nport = " +
                       std::to_string(http_port_) + "\n";
        return c;
    }

    std::vector<std::string> statuses(const std::string& source_name) const {
        return pg_column(url_, "SELECT status FROM upload_jobs WHERE source_name = ?1", "status",
                         {source_name});
    }
    bool completed_once(const std::string& name) const {
        return stdfs::exists(done() / name) &&
               statuses(name) == std::vector<std::string>{"complete"};
    }
    std::string image_url(const std::string& id) const {
        return "http://127.0.0.1:" + std::to_string(http_port_) + "/images/" + id;
    }

    std::string url_;
    int metrics_port_ = 0;
    int http_port_ = 0;
};

// Without the release on recovery, the deferred jobs would wait out their first retry delay (60
// to 120 s after their deferral here); they complete well before that once the server is back.
TEST_F(PgDaemonTest, DeferredJobsRunAsSoonAsTheDatabaseAnswersAgain) {
    DaemonConfig c = config();
    c.workers = 1;
    c.daemon["retry_min_s"] = "120";
    c.daemon["retry_max_s"] = "240";
    write_config(c);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    std::vector<std::string> names;
    for (int i = 0; i < 10; ++i) {
        names.push_back("d" + std::to_string(i) + ".jpg");
        write_file(inbox() / names.back(),
                   make_jpeg({.width = 2000, .height = 1500, .seed = 70u + i}));
    }
    // Every file claimed (recorded, in work/, queued for the one worker): the jobs not run yet
    // meet the outage and defer.
    ASSERT_TRUE(wait_for([&] { return files_under(inbox()).empty(); }, 30s)) << tree();
    {
        pg_test::StoppedServer stopped;
        ASSERT_TRUE(wait_for(
            [&] { return daemon_log().find("\"job deferred\"") != std::string::npos; }, 60s))
            << "no job met the outage; the test proves nothing\n"
            << daemon_log();
        // A file dropped during the outage cannot be recorded: it stays in inbox/ meanwhile.
        names.push_back("during.jpg");
        write_file(inbox() / names.back(), make_jpeg({.width = 640, .height = 480, .seed = 99}));
        std::this_thread::sleep_for(2s);
        EXPECT_TRUE(stdfs::exists(inbox() / "during.jpg"));
        stopped.start();
    }
    const Clock::time_point back = Clock::now();
    const Clock::time_point deadline = back + 45s;
    for (const std::string& name : names) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        EXPECT_TRUE(wait_for([&] { return completed_once(name); }, std::max(left, 1ms))) << name;
    }
    const auto took = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - back);
    EXPECT_LT(took.count(), 50) << "the deferred jobs waited for their retry delay";
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});
    EXPECT_NE(daemon_log().find("database reachable again"), std::string::npos) << daemon_log();

    // The same node in every series, and the sessions the pool re-established.
    const HttpReply scrape = http_get(metrics_port_, "/metrics");
    ASSERT_EQ(scrape.status, 200);
    EXPECT_NE(scrape.body.find("imgspool_node_info{node=\"it-a\",host=\""), std::string::npos)
        << scrape.body;
    EXPECT_NE(scrape.body.find("database=\"postgresql\"} 1\n"), std::string::npos) << scrape.body;
    const std::string series = "\nimgspool_db_reconnects_total{node=\"it-a\"} ";
    const auto at = scrape.body.find(series);
    ASSERT_NE(at, std::string::npos) << scrape.body;
    EXPECT_GE(std::stod(scrape.body.substr(at + series.size())), 1.0) << scrape.body;
    EXPECT_TRUE(daemon_running());
}

// No database, no daemon: `imgspool run` exits 1 within the connect timeout and says which
// database it could not reach and what to check, without the password the URL holds.
TEST_F(PgDaemonTest, AServerThatDoesNotAnswerAtStartStopsRunAtOnce) {
    const pg_test::ServerFacts facts = pg_test::server_facts();
    const std::string dbname = url_.substr(url_.rfind('/') + 1);
    CommandResult run;
    Clock::duration took{};
    {
        pg_test::StoppedServer stopped;
        const Clock::time_point t0 = Clock::now();
        run = run_imgspool({"run", "-c", config_path().string()}, root(), 60s);
        took = Clock::now() - t0;
    }
    const std::string said = run.out + run.err;
    EXPECT_EQ(run.status.code, 1) << run.status.describe() << "\n" << said;
    EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), 10000) << said;
    EXPECT_NE(said.find("host=127.0.0.1"), std::string::npos) << said;
    EXPECT_NE(said.find("port=" + std::to_string(facts.port)), std::string::npos) << said;
    EXPECT_NE(said.find("dbname=" + dbname), std::string::npos) << said;
    EXPECT_NE(said.find("[database] url"), std::string::npos) << "no advice: " << said;
    EXPECT_EQ(said.find(facts.password), std::string::npos) << "the password was shown: " << said;
    EXPECT_EQ(said.find("imgspool started"), std::string::npos) << said;
}

// A job record that cannot be read is no unknown job: 503 with Retry-After while the server is
// down, the job again once it is back; an id that was never issued is 404.
TEST_F(PgDaemonTest, GetImagesWhileTheDatabaseIsDownIs503NotUnknown) {
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "known.jpg", make_jpeg({.width = 800, .height = 600, .seed = 80}));
    ASSERT_TRUE(wait_for([&] { return completed_once("known.jpg"); }, 60s)) << daemon_log();
    const std::vector<std::string> ids =
        pg_column(url_, "SELECT id FROM upload_jobs WHERE source_name = 'known.jpg'", "id");
    ASSERT_EQ(ids.size(), 1u);
    const std::string unknown = "00000000-0000-4000-8000-000000000999";
    ASSERT_EQ(curl_get(image_url(ids[0])).status, 200);
    ASSERT_EQ(curl_get(image_url(unknown)).status, 404);
    {
        pg_test::StoppedServer stopped;
        const HttpAnswer down = curl_get(image_url(ids[0]));
        EXPECT_EQ(down.status, 503) << down.headers << "\n" << down.body;
        EXPECT_NE(down.headers.find("\r\nretry-after: "), std::string::npos) << down.headers;
        EXPECT_NE(down.body.find("cannot be read"), std::string::npos) << down.body;
        EXPECT_EQ(down.body.find("127.0.0.1"), std::string::npos)
            << "the database's address is for the log, not for clients: " << down.body;
        // Asked again during the pool's backoff (the fast failure): still 503.
        EXPECT_EQ(curl_get(image_url(ids[0])).status, 503);
        EXPECT_EQ(curl_get(image_url(unknown)).status, 503) << "unknown cannot be told now";
        stopped.start();
    }
    EXPECT_TRUE(wait_for([&] { return curl_get(image_url(ids[0])).status == 200; }, 30s));
    EXPECT_EQ(curl_get(image_url(unknown)).status, 404);
    EXPECT_TRUE(daemon_running());
}

}  // namespace
}  // namespace imgspool::it
