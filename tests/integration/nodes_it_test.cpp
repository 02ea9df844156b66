// Several hosts on one spool: three daemons (nodes a, b and c, one worker each) share one
// spool folder, one PostgreSQL job record (the pg_server fixture's server) and one S3 bucket
// (the s3_harness fixture's server behind its signature-checking proxy). Every file is done
// exactly once, by whichever node claimed it; the same bytes again are cache hits on any node;
// a node killed with SIGKILL has its jobs adopted by the others within its lease; a PostgreSQL
// restart longer than the lease defers jobs, which then complete on the nodes that claimed them.
#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"
#include "tests/pg/pg_test_server.hpp"
#include "tests/pg/stopped_server.hpp"
#include "tests/s3/s3_harness.hpp"

namespace imgspool::it {
namespace {

using s3_test::S3Harness;

long long pg_count(const std::string& url, const std::string& sql) {
    const auto rows = pg_rows(url, sql);
    return rows.empty() ? -1 : std::stoll(rows.front().begin()->second);
}

constexpr int kLeaseS = 5;
const std::vector<std::string> kNodes = {"a", "b", "c"};

class NodesTest : public SpoolFixture {
  protected:
    void SetUp() override {
        SpoolFixture::SetUp();
        if (HasFatalFailure()) return;
        if (auto why = S3Harness::unavailable()) GTEST_SKIP() << *why;
        harness_ = std::make_unique<S3Harness>();
        url_ = pg_test::fresh_database("nodes");
        for (const std::string& n : kNodes) write_file(node_config(n), node_config_text(n));
    }

    void TearDown() override {
        if (HasFailure()) {
            for (const std::string& n : kNodes) {
                std::error_code ec;
                if (!stdfs::exists(node_log(n), ec)) continue;
                const std::string log = read_file(node_log(n));
                std::cerr << "---- node " << n << " log (last 6000 bytes) ----\n"
                          << log.substr(log.size() > 6000 ? log.size() - 6000 : 0) << "\n";
            }
            if (harness_) std::cerr << "verify proxy: " << harness_->verify_stats().dump() << "\n";
        }
        nodes_.clear();  // SIGKILL whatever still runs
        SpoolFixture::TearDown();
        harness_.reset();
    }

    stdfs::path node_config(const std::string& n) const { return root() / (n + ".toml"); }
    stdfs::path node_log(const std::string& n) const { return root() / (n + ".log"); }

    // One worker, a short lease, one small variant per photo; its own state_dir, everything
    // else shared.
    std::string node_config_text(const std::string& n) const {
        const nlohmann::json& info = harness_->info();
        DaemonConfig c;
        c.workers = 1;
        c.settle_ms = 300;
        c.profile = "tiny";
        c.daemon = {
            {"lease_s", std::to_string(kLeaseS)}, {"retry_min_s", "1"}, {"retry_max_s", "2"}};
        c.store_toml = "kind = \"s3\"\nbucket = " + quoted(info.at("bucket")) +
                       "\nregion = \"us-east-1\"\nendpoint = " + quoted(harness_->fault_url()) +
                       "\naccess_key_id = " + quoted(info.at("access_key_id")) +
                       "\nsecret_access_key = " + quoted(info.at("secret_access_key")) + "\n";
        c.extra_toml =
            "\n[profiles.tiny]\n[[profiles.tiny.variant]]\nname = \"small\"\nwidth = 64\n"
            "height = 64\nfit = \"cover\"\nformats = [\"jpeg\"]\n"
            "\n[database]\nurl = " +
            quoted(url_) + "\n";
        std::string text = config_text(c);
        const std::string state = "state_dir = " + quoted(state_dir().string());
        text.replace(text.find(state), state.size(),
                     "state_dir = " + quoted((root() / ("state-" + n)).string()));
        return text;
    }

    static std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

    void start_node(const std::string& n) {
        nodes_[n] = std::make_unique<ChildProcess>(
            imgspool_binary(), std::vector<std::string>{"run", "-c", node_config(n).string()},
            node_log(n), node_log(n), std::vector<std::string>{"IMGSPOOL_NODE=" + n});
    }

    void start_all() {
        for (const std::string& n : kNodes) start_node(n);
        ASSERT_TRUE(wait_for(
            [&] { return pg_count(url_, "SELECT count(*) FROM nodes WHERE state = 'alive'") == 3; },
            60s))
            << "the three nodes did not all register";
    }

    // Writes `count` distinct photos under temporary names, then renames them all into the
    // inbox at once (one burst, as an rsync with --delay-updates would).
    std::vector<std::string> drop_burst(int count, unsigned seed) {
        const stdfs::path staging = root() / "staging";
        stdfs::create_directories(staging);
        std::vector<std::string> names;
        for (int i = 0; i < count; ++i) {
            names.push_back("n" + std::to_string(i) + ".jpg");
            write_file(staging / names.back(),
                       make_jpeg({.width = 160, .height = 120, .seed = seed + i}));
        }
        for (const std::string& name : names) stdfs::rename(staging / name, inbox() / name);
        return names;
    }

    long long complete_jobs() {
        return pg_count(url_, "SELECT count(*) FROM upload_jobs WHERE status = 'complete'");
    }

    int puts() const { return harness_->verify_stats().at("verified_by_method").value("PUT", 0); }

    std::unique_ptr<S3Harness> harness_;
    std::string url_;
    std::map<std::string, std::unique_ptr<ChildProcess>> nodes_;
};

TEST_F(NodesTest, FiveHundredDropsCompleteExactlyOnceThenHitTheCacheOnAnyNode) {
    constexpr int kPhotos = 500;
    start_all();
    ASSERT_FALSE(HasFatalFailure());
    drop_burst(kPhotos, 7000);
    ASSERT_TRUE(wait_for([&] { return complete_jobs() == kPhotos; }, 300s))
        << complete_jobs() << " of " << kPhotos << " complete";
    EXPECT_TRUE(wait_for([&] { return files_under(done()).size() == kPhotos; }, 30s));

    EXPECT_EQ(pg_count(url_, "SELECT count(*) FROM upload_jobs"), kPhotos) << "a file done twice";
    EXPECT_EQ(pg_count(url_, "SELECT count(DISTINCT claim_key) FROM upload_jobs"), kPhotos);
    EXPECT_EQ(files_under(work()), std::vector<std::string>{});
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});
    EXPECT_EQ(files_under(inbox()), std::vector<std::string>{});
    // One variant per photo: one PUT each, whichever node rendered it.
    EXPECT_EQ(puts(), kPhotos) << harness_->verify_stats().dump();
    EXPECT_EQ(harness_->verify_stats().at("rejected"), 0);
    std::map<std::string, long long> by_node;
    for (Row& r : pg_rows(url_, "SELECT node, count(*) AS n FROM upload_jobs GROUP BY node"))
        by_node[r["node"]] = std::stoll(r["n"]);
    for (const std::string& n : kNodes) EXPECT_GT(by_node[n], 0) << "node " << n << " did nothing";

    // The same bytes again (done/ keeps the first ones under numbered names): cache hits.
    drop_burst(kPhotos, 7000);
    ASSERT_TRUE(wait_for([&] { return complete_jobs() == 2 * kPhotos; }, 300s))
        << complete_jobs() << " of " << 2 * kPhotos << " complete";
    EXPECT_EQ(pg_count(url_, "SELECT count(*) FROM upload_jobs WHERE cache_hit"), kPhotos);
    EXPECT_EQ(puts(), kPhotos) << "a cache hit stored again";
    EXPECT_GE(pg_count(url_, "SELECT count(DISTINCT node) FROM upload_jobs WHERE cache_hit"), 2);
    for (const std::string& n : kNodes) EXPECT_TRUE(nodes_[n]->running()) << n;

    const CommandResult status = run_imgspool({"status", "-c", node_config("a").string(), "--json"},
                                              root(), 60s, {"IMGSPOOL_NODE=a"});
    ASSERT_EQ(status.status.code, 0) << status.err;
    const nlohmann::json s = nlohmann::json::parse(status.out);
    ASSERT_EQ(s.at("nodes").size(), 3u) << status.out;
    for (const auto& node : s.at("nodes")) EXPECT_EQ(node.at("state"), "alive") << node.dump();
}

TEST_F(NodesTest, ANodeKilledMidRunHasItsJobsAdoptedWithinItsLease) {
    constexpr int kPhotos = 150;
    start_all();
    ASSERT_FALSE(HasFatalFailure());
    // The lease is timed from the kill: on a server restarted lately (by another test) no node
    // would be judged lost before the server had been up for lease_s + 12 s (README).
    ASSERT_TRUE(wait_for(
        [&] {
            return pg_count(url_, "SELECT CAST(pg_postmaster_start_time() < now() - interval '" +
                                      std::to_string(kLeaseS + 12) + " seconds' AS integer)") == 1;
        },
        60s));
    drop_burst(kPhotos, 9000);
    // b is killed while it works on a job and has another claimed.
    ASSERT_TRUE(wait_for(
        [&] {
            return pg_count(url_,
                            "SELECT count(*) FROM upload_jobs WHERE node = 'b' AND status IN "
                            "('pending', 'processing')") >= 2 &&
                   pg_count(url_,
                            "SELECT count(*) FROM upload_jobs WHERE node = 'b' AND status = "
                            "'processing'") >= 1;
        },
        120s))
        << "node b never had a job in progress";
    nodes_["b"]->kill_now();
    const auto killed_at = std::chrono::steady_clock::now();
    const long long orphans = pg_count(
        url_, "SELECT count(*) FROM upload_jobs WHERE node = 'b' AND status <> 'complete'");
    ASSERT_GT(orphans, 0);

    // b's jobs are done by the others within its lease plus a margin (a heartbeat and an
    // adoption pass, lease_s / 3 and lease_s / 2, and the render itself).
    const std::string b_left =
        "SELECT count(*) FROM upload_jobs WHERE status <> 'complete' AND (node = 'b' OR "
        "adopted_from = 'b')";
    EXPECT_TRUE(
        wait_for([&] { return pg_count(url_, b_left) == 0; }, std::chrono::seconds(kLeaseS + 15)))
        << pg_count(url_, b_left) << " of b's " << orphans << " jobs not done "
        << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                            killed_at)
               .count()
        << " s after the kill";
    ASSERT_TRUE(wait_for([&] { return complete_jobs() == kPhotos; }, 300s))
        << complete_jobs() << " of " << kPhotos << " complete";
    EXPECT_EQ(pg_count(url_, "SELECT count(*) FROM upload_jobs"), kPhotos);
    EXPECT_TRUE(wait_for([&] { return files_under(done()).size() == kPhotos; }, 30s));
    EXPECT_EQ(files_under(work()), std::vector<std::string>{});
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});
    EXPECT_EQ(pg_count(url_,
                       "SELECT count(*) FROM upload_jobs WHERE adopted_from = 'b' AND node IN "
                       "('a', 'c')"),
              orphans);
    EXPECT_GE(pg_count(url_,
                       "SELECT count(*) FROM upload_jobs WHERE adopted_from = 'b' AND "
                       "crashes = 1"),
              1)
        << "the job b was running is counted as a crash";

    const CommandResult status = run_imgspool({"status", "-c", node_config("a").string(), "--json"},
                                              root(), 60s, {"IMGSPOOL_NODE=a"});
    ASSERT_EQ(status.status.code, 0) << status.err;
    const nlohmann::json s = nlohmann::json::parse(status.out);
    for (const auto& node : s.at("nodes")) {
        EXPECT_EQ(node.at("state"), node.at("node") == "b" ? "lost" : "alive") << node.dump();
    }
}

// The server is down for longer than the lease: every node's heartbeat is older than its lease
// when the server is back. No node may take that for a lost node and adopt the others' jobs
// while they are still reconnecting (after up to their longest reconnect backoff); the jobs
// that met the outage defer and complete where they were claimed, each file exactly once.
TEST_F(NodesTest, APostgresRestartLongerThanTheLeaseDefersJobsThatCompleteWhereClaimed) {
    constexpr int kPhotos = 120;
    start_all();
    ASSERT_FALSE(HasFatalFailure());
    drop_burst(kPhotos, 11000);
    ASSERT_TRUE(wait_for([&] { return complete_jobs() >= 10; }, 120s)) << "no job completed";
    {
        pg_test::StoppedServer stopped;
        std::this_thread::sleep_for(std::chrono::seconds(kLeaseS + 3));
        stopped.start();
    }
    ASSERT_TRUE(wait_for([&] { return complete_jobs() == kPhotos; }, 180s))
        << complete_jobs() << " of " << kPhotos << " complete";
    EXPECT_EQ(pg_count(url_, "SELECT count(*) FROM upload_jobs"), kPhotos) << "a file done twice";
    EXPECT_EQ(pg_count(url_, "SELECT count(*) FROM upload_jobs WHERE adopted_from IS NOT NULL"), 0)
        << "a live node's jobs were adopted after the restart";
    EXPECT_TRUE(wait_for([&] { return files_under(done()).size() == kPhotos; }, 30s));
    EXPECT_EQ(files_under(work()), std::vector<std::string>{});
    EXPECT_EQ(files_under(failed()), std::vector<std::string>{});
    EXPECT_EQ(files_under(inbox()), std::vector<std::string>{});
    bool deferred = false;
    for (const std::string& n : kNodes) {
        EXPECT_TRUE(nodes_[n]->running()) << n;
        deferred = deferred || read_file(node_log(n)).find("\"job deferred\"") != std::string::npos;
    }
    EXPECT_TRUE(deferred) << "no job met the outage; the test proves nothing";
    EXPECT_EQ(pg_count(url_, "SELECT count(*) FROM nodes WHERE state = 'alive'"), 3);
}

}  // namespace
}  // namespace imgspool::it
