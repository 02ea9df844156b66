// The daemon with its job record on PostgreSQL (the pg_server fixture's real server): drops
// complete and are recorded there, status and check-config read it without showing the
// password, a second daemon under the same node name is refused, and a server restart mid-run
// defers jobs that then complete exactly once.
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/pg/pg_test_server.hpp"

namespace imgspool::it {
namespace {

class PostgresTest : public SpoolFixture {
  protected:
    void SetUp() override {
        SpoolFixture::SetUp();
        url_ = pg_test::fresh_database("daemon");
        write_config(config());
    }

    DaemonConfig config() const {
        DaemonConfig c;
        c.extra_toml = "\n[database]\nurl = \"" + url_ + "\"\n";
        return c;
    }

    // status of every job of source_name, by query on the server (empty while it is down).
    std::vector<std::string> statuses(const std::string& source_name) {
        std::vector<std::string> out;
        for (Row& r :
             pg_rows(url_, "SELECT status FROM upload_jobs WHERE source_name = ?1", {source_name}))
            out.push_back(r["status"]);
        return out;
    }

    bool completed_once(const std::string& name) {
        return stdfs::exists(done() / name) &&
               statuses(name) == std::vector<std::string>{"complete"};
    }

    std::string url_;
};

TEST_F(PostgresTest, DropsAreRecordedInPostgresAndStatusReadsThem) {
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    for (int i = 0; i < 3; ++i) {
        write_file(inbox() / ("p" + std::to_string(i) + ".jpg"),
                   make_jpeg({.width = 640, .height = 480, .seed = 40u + i}));
    }
    for (int i = 0; i < 3; ++i) {
        const std::string name = "p" + std::to_string(i) + ".jpg";
        EXPECT_TRUE(wait_for([&] { return completed_once(name); }, 60s)) << name;
    }
    EXPECT_FALSE(stdfs::exists(db_path())) << "no SQLite file beside a PostgreSQL job record";
    const auto images = pg_rows(url_, "SELECT jsonb_typeof(urls) AS t FROM images");
    ASSERT_EQ(images.size(), 3u);
    EXPECT_EQ(images[0].at("t"), "object");

    const CommandResult json =
        run_imgspool({"status", "-c", config_path().string(), "--json"}, root());
    ASSERT_EQ(json.status.code, 0) << json.status.describe() << json.err;
    const nlohmann::json status = nlohmann::json::parse(json.out);
    EXPECT_EQ(status.value("complete", -1), 3) << json.out;

    const std::string password = pg_test::server_facts().password;
    const CommandResult check =
        run_imgspool({"check-config", "-c", config_path().string()}, root());
    EXPECT_EQ(check.status.code, 0) << check.err;
    EXPECT_NE(check.err.find("reachable, schema version"), std::string::npos) << check.err;
    EXPECT_EQ((check.out + check.err).find(password), std::string::npos)
        << "check-config printed the database password";
    EXPECT_EQ(daemon_log().find(password), std::string::npos) << "the log holds the password";
    EXPECT_TRUE(daemon_running());
}

TEST_F(PostgresTest, ASecondDaemonWithTheSameNodeNameIsRefused) {
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    write_file(inbox() / "first.jpg", make_jpeg({.width = 320, .height = 240, .seed = 50}));
    ASSERT_TRUE(wait_for([&] { return completed_once("first.jpg"); }, 60s));

    // Another state_dir and spool, the same database and the same node name (the host name):
    // two live processes cannot be one node.
    const stdfs::path other = root() / "other";
    stdfs::create_directories(other);
    std::string text = config_text(config());
    for (const std::string& dir : {std::string("/spool"), std::string("/state")}) {
        const std::string from = (root().string() + dir);
        for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + 1))
            text.replace(at, from.size(), other.string() + dir);
    }
    write_file(other / "imgspool.toml", text);
    const CommandResult second =
        run_imgspool({"run", "-c", (other / "imgspool.toml").string()}, other, 30s);
    EXPECT_EQ(second.status.code, 1) << second.status.describe();
    EXPECT_NE((second.out + second.err).find("is alive on host"), std::string::npos)
        << second.out << second.err;
    EXPECT_NE((second.out + second.err).find("another [daemon] node"), std::string::npos)
        << second.out << second.err;
    EXPECT_TRUE(daemon_running());
    EXPECT_EQ(statuses("first.jpg"), std::vector<std::string>{"complete"});
}

// RUN_SERIAL (CMakeLists): the restart is seen by every test on the shared server.
TEST_F(PostgresTest, AServerRestartMidRunDefersJobsThatThenCompleteOnce) {
    DaemonConfig c = config();
    c.workers = 1;
    c.daemon = {{"retry_min_s", "1"}, {"retry_max_s", "2"}};
    write_config(c);
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    std::vector<std::string> names;
    for (int i = 0; i < 12; ++i) {
        names.push_back("r" + std::to_string(i) + ".jpg");
        write_file(inbox() / names.back(),
                   make_jpeg({.width = 1600, .height = 1200, .seed = 60u + i}));
    }
    ASSERT_TRUE(wait_for([&] { return stdfs::exists(done() / names[0]); }, 60s));
    pg_test::stop_server();
    std::this_thread::sleep_for(3s);  // jobs run into the outage
    pg_test::start_server();
    for (const std::string& name : names)
        EXPECT_TRUE(wait_for([&] { return completed_once(name); }, 90s)) << name;
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});
    EXPECT_NE(daemon_log().find("job deferred"), std::string::npos)
        << "no job met the outage; the test proves nothing";
    EXPECT_TRUE(daemon_running());
}

}  // namespace
}  // namespace imgspool::it
