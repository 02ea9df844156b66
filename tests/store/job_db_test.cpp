#include "store/sqlite_job_db.hpp"
#include "tests/store/job_db_reads.hpp"

#include <gtest/gtest.h>

#include <sqlite3.h>
#include "tests/common/markdown_sql.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "store/sqlite_job_db_schema.hpp"
#include "store/variant_json.hpp"
#include "tests/store/temp_dir.hpp"

namespace imgspool {
namespace {

namespace stdfs = std::filesystem;
using Rows = std::vector<std::vector<std::string>>;

// A second, independent connection, as any other reader of the file would have.
class RawDb {
  public:
    explicit RawDb(const stdfs::path& file) {
        if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << "cannot open " << file;
        }
        sqlite3_busy_timeout(db_, 5000);
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    // Runs one statement; errors are test failures and return no rows.
    Rows query(const std::string& sql) {
        sqlite3_stmt* stmt = nullptr;
        Rows rows;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
            return rows;
        }
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            auto& row = rows.emplace_back();
            for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
                auto* text = sqlite3_column_text(stmt, c);
                row.push_back(text ? reinterpret_cast<const char*>(text) : "NULL");
            }
        }
        if (rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
        sqlite3_finalize(stmt);
        return rows;
    }
    std::string one(const std::string& sql) {
        auto rows = query(sql);
        return rows.empty() || rows[0].empty() ? "<no row>" : rows[0][0];
    }

  private:
    sqlite3* db_ = nullptr;
};

struct CliResult {
    int status = -1;
    std::string output;
};

// Runs the plain sqlite3 binary (read-only) on the file, the SQL given on its stdin.
CliResult sqlite3_cli(const stdfs::path& db, const std::string& sql) {
    auto script = db.parent_path() / "query.sql";
    std::ofstream(script) << sql << "\n";
    std::string command =
        "sqlite3 -bail -batch -readonly '" + db.string() + "' < '" + script.string() + "' 2>&1";
    CliResult result;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return result;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
    result.status = ::pclose(pipe);
    return result;
}

// The ```sql blocks of docs/queries.md (for the sqlite3 CLI).
std::vector<std::string> documented_queries() {
    return test_support::markdown_sql_blocks(IMGSPOOL_QUERIES_DOC);
}

StoredVariant variant(std::string name, std::string format, std::string key, int width,
                      std::uint64_t bytes) {
    return {name, format, key, "https://cdn.example.com/" + key, width, width * 2 / 3, bytes};
}

std::vector<StoredVariant> outputs_for(const std::string& id) {
    return {variant("small", "jpeg", "images/" + id + "/small.jpg", 320, 2000),
            variant("large", "webp", "images/" + id + "/large.webp", 1600, 90000)};
}

const std::regex kTimestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

class JobDbTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = SqliteJobDb::open(file_);
        ASSERT_TRUE(opened.ok()) << opened.error().message();
        db_ = std::move(*opened);
    }

    // A job taken through the pipeline's calls up to (not including) complete or fail.
    void start(const std::string& id, const std::string& hash, const std::string& name = "a.jpg") {
        ASSERT_TRUE(db_->insert_job(id, "photos", name, "web").ok());
        ASSERT_TRUE(db_->start_attempt(id).ok());
        ASSERT_TRUE(db_->set_source(id, hash, 123456, 4000, 3000, "jpeg").ok());
        ASSERT_TRUE(db_->set_progress(id, 50).ok());
    }

    test::TempDir tmp_;
    stdfs::path file_ = tmp_.path() / "state/imgspool.db";
    std::unique_ptr<JobDb> db_;
};

TEST_F(JobDbTest, CreatesSchemaInWalModeWithAVersion) {
    RawDb raw(file_);
    EXPECT_EQ(raw.one("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(raw.one("PRAGMA user_version"), std::to_string(JobDb::schema_version));
    auto names = raw.query(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "ORDER BY name");
    std::vector<std::string> flat;
    for (auto& r : names) flat.push_back(r[0]);
    EXPECT_EQ(flat, (std::vector<std::string>{
                        "cache_hit_rate", "derivative_cache", "failures_today", "images",
                        "jobs_deferred", "jobs_in_flight", "node_status", "nodes", "status_counts",
                        "throughput_per_hour", "upload_jobs", "waiting_files"}));
    // Opening again (daemon restart) keeps everything.
    ASSERT_TRUE(db_->insert_job("u1", "photos", "a.jpg", "web").ok());
    db_.reset();
    auto again = SqliteJobDb::open(file_);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_TRUE(find_job(**again, "u1").has_value());
}

TEST_F(JobDbTest, RefusesADatabaseFromANewerVersion) {
    db_.reset();
    {
        RawDb raw(file_);
        raw.query("PRAGMA user_version = 99");
    }
    auto opened = SqliteJobDb::open(file_);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().stage, Stage::commit);
    EXPECT_NE(opened.error().reason.find("schema version 99 is newer"), std::string::npos)
        << opened.error().reason;
}

TEST_F(JobDbTest, ReportsAnUnopenableFile) {
    auto opened = SqliteJobDb::open(tmp_.path());  // a directory
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().stage, Stage::commit);
    EXPECT_EQ(opened.error().file, tmp_.path().string());
}

TEST_F(JobDbTest, FullLifecycle) {
    ASSERT_TRUE(db_->insert_job("u1", "photos", "trips/a.jpg", "web").ok());
    auto pending = find_job(*db_, "u1");
    ASSERT_TRUE(pending);
    EXPECT_EQ(pending->status, "pending");
    EXPECT_EQ(pending->spool, "photos");
    EXPECT_EQ(pending->source_name, "trips/a.jpg");
    EXPECT_EQ(pending->profile, "web");
    EXPECT_TRUE(std::regex_match(pending->created_at, kTimestamp)) << pending->created_at;
    EXPECT_TRUE(pending->completed_at.empty());

    start("u1", "hash1");
    auto working = find_job(*db_, "u1");
    EXPECT_EQ(working->status, "processing");
    EXPECT_EQ(working->progress, 50);
    EXPECT_EQ(working->source_hash, "hash1");
    EXPECT_EQ(working->original_size, 123456u);
    EXPECT_EQ(working->width, 4000);
    EXPECT_EQ(working->height, 3000);
    EXPECT_EQ(working->format, "jpeg");
    EXPECT_TRUE(working->outputs.empty());

    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1", false, 1234).ok());
    auto done = find_job(*db_, "u1");
    EXPECT_EQ(done->status, "complete");
    EXPECT_EQ(done->progress, 100);
    EXPECT_EQ(done->duration_ms, 1234);
    EXPECT_FALSE(done->cache_hit);
    EXPECT_TRUE(std::regex_match(done->completed_at, kTimestamp)) << done->completed_at;
    EXPECT_GE(done->updated_at, done->created_at);
    EXPECT_EQ(done->outputs, outputs_for("u1"));

    RawDb raw(file_);
    EXPECT_EQ(raw.one("SELECT urls FROM images WHERE upload_id = 'u1'"),
              R"({"large.webp":"https://cdn.example.com/images/u1/large.webp",)"
              R"("small.jpg":"https://cdn.example.com/images/u1/small.jpg"})");
    EXPECT_EQ(raw.one("SELECT total_bytes FROM images WHERE upload_id = 'u1'"), "92000");
    EXPECT_FALSE(find_job(*db_, "nope").has_value());
}

TEST_F(JobDbTest, InsertingAnExistingJobAgainChangesNothing) {
    start("u1", "hash1", "first.jpg");
    ASSERT_TRUE(db_->insert_job("u1", "other", "second.jpg", "thumb").ok());
    auto job = find_job(*db_, "u1");
    EXPECT_EQ(job->status, "processing");
    EXPECT_EQ(job->source_name, "first.jpg");
    EXPECT_EQ(job->spool, "photos");
}

TEST_F(JobDbTest, CompleteWritesTheCacheRowAndCacheLookupMatchesHashAndFingerprint) {
    start("u1", "hash1");
    EXPECT_FALSE(lookup_cache(*db_, "hash1", "fp1").has_value());
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1", false, 10).ok());

    auto hit = lookup_cache(*db_, "hash1", "fp1");
    ASSERT_TRUE(hit.has_value());
    EXPECT_EQ(*hit, outputs_for("u1"));
    EXPECT_FALSE(lookup_cache(*db_, "hash1", "fp2").has_value());
    EXPECT_FALSE(lookup_cache(*db_, "hash2", "fp1").has_value());

    RawDb raw(file_);
    EXPECT_EQ(raw.one("SELECT upload_id FROM derivative_cache WHERE source_hash = 'hash1'"), "u1");
}

TEST_F(JobDbTest, NoCacheRowWithoutAFingerprint) {
    start("u1", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "").ok());
    RawDb raw(file_);
    EXPECT_EQ(raw.one("SELECT count(*) FROM derivative_cache"), "0");
}

TEST_F(JobDbTest, ACacheHitKeepsTheRenderingJobInTheCache) {
    start("u1", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1", false, 900).ok());
    start("u2", "hash1");
    auto cached = lookup_cache(*db_, "hash1", "fp1");
    ASSERT_TRUE(cached);
    ASSERT_TRUE(db_->complete("u2", *cached, "fp1", true, 5).ok());

    EXPECT_TRUE(find_job(*db_, "u2")->cache_hit);
    EXPECT_EQ(find_job(*db_, "u2")->outputs, outputs_for("u1"));
    RawDb raw(file_);
    EXPECT_EQ(raw.one("SELECT upload_id FROM derivative_cache"), "u1");
}

TEST_F(JobDbTest, CompleteIsAllOrNothing) {
    // A cache row needs the source hash: without it the whole completion is rolled back.
    ASSERT_TRUE(db_->insert_job("u1", "photos", "a.jpg", "web").ok());
    ASSERT_TRUE(db_->start_attempt("u1").ok());
    auto st = db_->complete("u1", outputs_for("u1"), "fp1");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::commit);
    EXPECT_NE(st.error().reason.find("source hash was never recorded"), std::string::npos)
        << st.error().reason;

    auto job = find_job(*db_, "u1");
    EXPECT_EQ(job->status, "processing");
    EXPECT_TRUE(job->completed_at.empty());
    RawDb raw(file_);
    EXPECT_EQ(raw.one("SELECT count(*) FROM images"), "0");
    EXPECT_EQ(raw.one("SELECT count(*) FROM derivative_cache"), "0");

    // The connection is usable afterwards and the retry succeeds.
    ASSERT_TRUE(db_->set_source("u1", "hash1", 1, 2, 3, "png").ok());
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1").ok());
    EXPECT_EQ(raw.one("SELECT count(*) FROM images"), "1");
}

TEST_F(JobDbTest, ACompleteJobStaysComplete) {
    start("u1", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1").ok());

    auto failed = db_->fail("u1", make_error(Stage::move, "disk full"));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().stage, Stage::commit);
    EXPECT_NE(failed.error().reason.find("already complete"), std::string::npos)
        << failed.error().reason;
    EXPECT_FALSE(db_->start_attempt("u1").ok());
    EXPECT_FALSE(db_->set_progress("u1", 10).ok());
    EXPECT_FALSE(db_->set_source("u1", "other", 1, 1, 1, "png").ok());
    EXPECT_FALSE(db_->complete("u1", {}, "").ok());

    auto job = find_job(*db_, "u1");
    EXPECT_EQ(job->status, "complete");
    EXPECT_EQ(job->progress, 100);
    EXPECT_EQ(job->source_hash, "hash1");
    EXPECT_TRUE(job->error.empty());
    EXPECT_EQ(job->outputs, outputs_for("u1"));
}

TEST_F(JobDbTest, FailRecordsReasonAndStage) {
    start("u1", "hash1");
    ASSERT_TRUE(
        db_->fail("u1", make_error(Stage::validate,
                                   "image is 90x90, smaller than the minimum 100x100", "a.jpg"))
            .ok());
    auto job = find_job(*db_, "u1");
    EXPECT_EQ(job->status, "failed");
    EXPECT_EQ(job->error, "image is 90x90, smaller than the minimum 100x100");
    EXPECT_EQ(job->error_stage, "validate");
    EXPECT_TRUE(job->completed_at.empty());
}

TEST_F(JobDbTest, UpdatesOfAnUnknownJobAreErrors) {
    auto st = db_->start_attempt("ghost");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::commit);
    EXPECT_NE(st.error().reason.find("ghost: no such job"), std::string::npos) << st.error().reason;
    EXPECT_FALSE(db_->fail("ghost", make_error(Stage::render, "x")).ok());
    EXPECT_FALSE(db_->complete("ghost", outputs_for("ghost"), "").ok());
    RawDb raw(file_);
    EXPECT_EQ(raw.one("SELECT count(*) FROM images"), "0");
}

TEST_F(JobDbTest, ProgressOutsideZeroToHundredIsRefused) {
    start("u1", "hash1");
    EXPECT_FALSE(db_->set_progress("u1", 101).ok());
    EXPECT_FALSE(db_->set_progress("u1", -1).ok());
    EXPECT_TRUE(db_->set_progress("u1", 100).ok());
    EXPECT_EQ(find_job(*db_, "u1")->progress, 100);
}

TEST_F(JobDbTest, CountsByStatusListsAllFourAndTheWaitingFiles) {
    using Counts = std::map<std::string, std::int64_t>;
    EXPECT_EQ(
        counts_of(*db_),
        (Counts{
            {"waiting", 0}, {"pending", 0}, {"processing", 0}, {"complete", 0}, {"failed", 0}}));
    ASSERT_TRUE(db_->replace_waiting_files({{"photos", "slow.jpg", 1000, "incomplete JPEG",
                                             "2026-11-30T00:00:00.000Z"}})
                    .ok());
    ASSERT_TRUE(db_->insert_job("p1", "photos", "p1.jpg", "web").ok());
    ASSERT_TRUE(db_->insert_job("p2", "photos", "p2.jpg", "web").ok());
    start("w1", "h1");
    start("c1", "h2");
    ASSERT_TRUE(db_->complete("c1", outputs_for("c1"), "fp").ok());
    EXPECT_EQ(
        counts_of(*db_),
        (Counts{
            {"waiting", 1}, {"pending", 2}, {"processing", 1}, {"complete", 1}, {"failed", 0}}));
}

TEST_F(JobDbTest, UnfinishedListsPendingAndProcessingOldestFirst) {
    for (std::string id : {"j1", "j2", "j3", "j4"}) {
        ASSERT_TRUE(db_->insert_job(id, "photos", id + ".jpg", "web").ok());
    }
    ASSERT_TRUE(db_->start_attempt("j3").ok());
    start("j2", "h2");
    ASSERT_TRUE(db_->complete("j2", outputs_for("j2"), "").ok());
    ASSERT_TRUE(db_->fail("j4", make_error(Stage::render, "broken")).ok());
    auto jobs = unfinished_of(*db_);
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].upload_id, "j1");
    EXPECT_EQ(jobs[0].status, "pending");
    EXPECT_EQ(jobs[1].upload_id, "j3");
    EXPECT_EQ(jobs[1].status, "processing");
}

TEST_F(JobDbTest, FourWorkerThreadsWriteConcurrently) {
    constexpr int kThreads = 4;
    constexpr int kJobs = 40;
    std::vector<std::thread> workers;
    std::atomic<int> errors{0};
    for (int t = 0; t < kThreads; ++t) {
        workers.emplace_back([&, t] {
            for (int j = 0; j < kJobs; ++j) {
                std::string id = "t" + std::to_string(t) + "-" + std::to_string(j);
                bool ok = db_->insert_job(id, "photos", id + ".jpg", "web").ok() &&
                          db_->start_attempt(id).ok() &&
                          db_->set_source(id, "hash-" + id, 1000, 10, 10, "png").ok() &&
                          db_->set_progress(id, 60).ok() &&
                          (j % 4 == 0 ? db_->fail(id, make_error(Stage::render, "bad")).ok()
                                      : db_->complete(id, outputs_for(id), "fp", false, j).ok());
                if (!ok) ++errors;
                (void)counts_of(*db_);
                (void)lookup_cache(*db_, "hash-" + id, "fp");
            }
        });
    }
    for (auto& w : workers) w.join();
    EXPECT_EQ(errors, 0);
    auto counts = counts_of(*db_);
    EXPECT_EQ(counts["complete"], kThreads * kJobs * 3 / 4);
    EXPECT_EQ(counts["failed"], kThreads * kJobs / 4);
    EXPECT_TRUE(unfinished_of(*db_).empty());
    RawDb raw(file_);
    EXPECT_EQ(raw.one("SELECT count(*) FROM derivative_cache"),
              std::to_string(kThreads * kJobs * 3 / 4));
}

TEST_F(JobDbTest, TheSqlite3CliReadsWhileTheDatabaseIsOpen) {
    start("u1", "hash1");
    auto read = sqlite3_cli(file_, "select id, status, progress from upload_jobs;");
    EXPECT_EQ(read.status, 0) << read.output;
    EXPECT_EQ(read.output, "u1|processing|50\n");

    // The daemon keeps writing after (and while) others read.
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1").ok());
    read = sqlite3_cli(file_, "select status from upload_jobs where id = 'u1';");
    EXPECT_EQ(read.output, "complete\n");
}

// Every ```sql block of docs/queries.md runs, in the CLI and through the C API, on a
// database holding a bit of everything, and returns rows.
TEST_F(JobDbTest, EveryDocumentedQueryRunsAndAnswers) {
    start("done1", "h1", "photo.jpg");
    ASSERT_TRUE(db_->complete("done1", outputs_for("done1"), "fp", false, 1000,
                              {"L00000fQfQfQfQfQfQfQfQfQfQfQ", "data:image/webp;base64,AAAA"})
                    .ok());
    start("done2", "h2", "b.job.json");
    JobRequest manifest;
    manifest.origin = "manifest";
    manifest.source_url = "https://images.example.com/b.jpg";
    manifest.user_id = "u1";
    manifest.tool = "dall-e";
    manifest.metadata_json = R"({"prompt":"a lighthouse at dusk"})";
    ASSERT_TRUE(db_->set_request("done2", manifest).ok());
    ASSERT_TRUE(db_->complete("done2", outputs_for("done2"), "fp", false, 3000).ok());
    start("hit", "h1", "photo-again.jpg");
    ASSERT_TRUE(db_->complete("hit", *lookup_cache(*db_, "h1", "fp"), "fp", true, 20).ok());
    start("bad", "h3", "small.jpg");
    ASSERT_TRUE(db_->fail("bad", make_error(Stage::validate, "image is 90x90")).ok());
    start("working", "h4", "c.jpg");
    ASSERT_TRUE(db_->insert_job("stuck", "photos", "d.jpg", "web").ok());
    start("later", "h5", "e.jpg");
    ASSERT_TRUE(db_->defer("later", make_transient(Stage::store, "HTTP 503 SlowDown"),
                           std::chrono::system_clock::now() + std::chrono::minutes(1))
                    .ok());
    ASSERT_TRUE(db_->replace_waiting_files(
                       {{"photos", "slow.jpg", 3420141, "incomplete JPEG: no end-of-image marker",
                         "2026-11-30T01:00:00.000Z"}})
                    .ok());
    NodeRegistration me;
    me.host = "h1";
    me.instance = "i1";
    me.state_dir = "/var/lib/imgspool";
    me.pid = 4242;
    me.version = "1.0";
    ASSERT_TRUE(db_->register_node(me).ok());
    RawDb raw(file_);
    raw.query(
        "UPDATE upload_jobs SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', "
        "'-1 hour') WHERE id = 'stuck'");

    auto queries = documented_queries();
    ASSERT_GE(queries.size(), 10u);
    EXPECT_NE(std::find(queries.begin(), queries.end(),
                        "select status, count(*) from upload_jobs group by 1;\n"),
              queries.end());
    for (const auto& sql : queries) {
        EXPECT_FALSE(raw.query(sql).empty()) << "no rows from: " << sql;
        auto cli = sqlite3_cli(file_, sql);
        EXPECT_EQ(cli.status, 0) << sql << cli.output;
        EXPECT_FALSE(cli.output.empty()) << sql;
    }

    // The views' answers for this data.
    EXPECT_EQ(raw.query("select * from status_counts"), (Rows{{"waiting", "1"},
                                                              {"pending", "2"},
                                                              {"processing", "1"},
                                                              {"complete", "3"},
                                                              {"failed", "1"}}));
    EXPECT_EQ(raw.query("select hits, misses, hit_rate_pct from cache_hit_rate"),
              (Rows{{"1", "2", "33.3"}}));
    EXPECT_EQ(raw.query("select id, stage, reason from failures_today"),
              (Rows{{"bad", "validate", "image is 90x90"}}));
    EXPECT_EQ(raw.query("select sum(completed), sum(failed) from throughput_per_hour"),
              (Rows{{"3", "1"}}));
    auto hours = raw.query("select avg_duration_ms from throughput_per_hour");
    if (hours.size() == 1) {  // unless the test spanned the turn of an hour
        EXPECT_EQ(hours[0][0], "1340");
    }
    auto flight = raw.query("select id, status, age_s >= 3599 from jobs_in_flight order by id");
    EXPECT_EQ(flight, (Rows{{"later", "pending", "0"},
                            {"stuck", "pending", "1"},
                            {"working", "processing", "0"}}));
    EXPECT_EQ(raw.query("select id, attempts, last_error from jobs_deferred"),
              (Rows{{"later", "1", "store: HTTP 503 SlowDown"}}));
    const std::string node = db_->node();
    EXPECT_EQ(raw.query("select node, host, state, in_flight, done_last_hour, failed_last_hour "
                        "from node_status"),
              (Rows{{node, "h1", "alive", "3", "3", "1"}}));
}

// docs/queries.md gives each question in both CLIs' words: every ```sql block is followed by its
// ```psql block (run by pg_job_db_test), and no psql block stands alone.
TEST(DocumentedQueries, EverySqliteQueryHasItsPsqlFormNextToIt) {
    const auto blocks = test_support::markdown_code_blocks(IMGSPOOL_QUERIES_DOC);
    std::size_t pairs = 0;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        const bool sql = blocks[i].info == "sql", psql = blocks[i].info == "psql";
        const bool after_sql = i > 0 && blocks[i - 1].info == "sql";
        const bool before_psql = i + 1 < blocks.size() && blocks[i + 1].info == "psql";
        EXPECT_TRUE(!sql || before_psql) << "no psql form right after:\n" << blocks[i].text;
        EXPECT_TRUE(!psql || after_sql) << "no sql form right before:\n" << blocks[i].text;
        EXPECT_TRUE(!psql || !blocks[i].text.empty()) << "empty psql block " << i;
        if (psql && after_sql) ++pairs;
    }
    EXPECT_EQ(pairs, documented_queries().size());
    EXPECT_GE(pairs, 10u);
}

// The view readers give what the views give the sqlite3 CLI.
TEST_F(JobDbTest, ViewReadersAnswerLikeTheViews) {
    start("done1", "h1", "photo.jpg");
    ASSERT_TRUE(db_->complete("done1", outputs_for("done1"), "fp", false, 1000).ok());
    start("hit", "h1", "photo-again.jpg");
    ASSERT_TRUE(db_->complete("hit", *lookup_cache(*db_, "h1", "fp"), "fp", true, 20).ok());
    start("bad", "h3", "small.jpg");
    ASSERT_TRUE(db_->fail("bad", make_error(Stage::validate, "image is 90x90")).ok());
    start("working", "h4", "c.jpg");
    ASSERT_TRUE(db_->insert_job("stuck", "photos", "d.jpg", "web").ok());
    RawDb raw(file_);
    raw.query(
        "UPDATE upload_jobs SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', "
        "'-1 hour') WHERE id = 'stuck'");

    auto flight = db_->jobs_in_flight();
    ASSERT_TRUE(flight.ok()) << flight.error().message();
    ASSERT_EQ(flight->size(), 2u);
    EXPECT_EQ((*flight)[0].upload_id, "stuck");
    EXPECT_EQ((*flight)[0].status, "pending");
    EXPECT_EQ((*flight)[0].source_name, "d.jpg");
    EXPECT_GE((*flight)[0].age_s, 3599);
    EXPECT_EQ((*flight)[1].upload_id, "working");
    EXPECT_EQ((*flight)[1].status, "processing");
    EXPECT_EQ((*flight)[1].progress, 50);
    EXPECT_EQ((*flight)[1].spool, "photos");
    EXPECT_TRUE(std::regex_match((*flight)[1].created_at, kTimestamp));

    auto failures = db_->failures_today();
    ASSERT_TRUE(failures.ok()) << failures.error().message();
    ASSERT_EQ(failures->size(), 1u);
    EXPECT_EQ((*failures)[0].upload_id, "bad");
    EXPECT_EQ((*failures)[0].source_name, "small.jpg");
    EXPECT_EQ((*failures)[0].stage, "validate");
    EXPECT_EQ((*failures)[0].reason, "image is 90x90");
    EXPECT_TRUE(std::regex_match((*failures)[0].failed_at, kTimestamp));

    auto hours = db_->throughput_per_hour(24);
    ASSERT_TRUE(hours.ok()) << hours.error().message();
    std::int64_t completed = 0, failed = 0;
    for (const HourThroughput& h : *hours) {
        completed += h.completed;
        failed += h.failed;
        EXPECT_TRUE(std::regex_match(h.hour, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:00Z)"))) << h.hour;
    }
    EXPECT_EQ(completed, 2);
    EXPECT_EQ(failed, 1);
    if (hours->size() == 1) {  // unless the test spanned the turn of an hour
        EXPECT_EQ((*hours)[0].avg_duration_ms, std::optional<std::int64_t>(510));
    }
    EXPECT_EQ(raw.one("select count(*) from throughput_per_hour"), std::to_string(hours->size()));

    auto rate = db_->cache_hit_rate();
    ASSERT_TRUE(rate.ok()) << rate.error().message();
    EXPECT_EQ(rate->hits, 1);
    EXPECT_EQ(rate->misses, 1);
    EXPECT_DOUBLE_EQ(rate->hit_rate_pct, 50.0);
}

TEST_F(JobDbTest, ViewReadersOnAnEmptyDatabase) {
    EXPECT_TRUE(db_->jobs_in_flight()->empty());
    EXPECT_TRUE(db_->failures_today()->empty());
    EXPECT_TRUE(db_->throughput_per_hour(24)->empty());
    auto rate = db_->cache_hit_rate();
    ASSERT_TRUE(rate.ok());
    EXPECT_EQ(rate->hits, 0);
    EXPECT_EQ(rate->misses, 0);
    EXPECT_DOUBLE_EQ(rate->hit_rate_pct, 0.0);
}

TEST_F(JobDbTest, ThroughputKeepsTheNewestHoursAndNoAverageWithoutCompletedJobs) {
    for (int i = 0; i < 3; ++i) {
        const std::string id = "f" + std::to_string(i);
        start(id, "h" + id);
        ASSERT_TRUE(db_->fail(id, make_error(Stage::render, "broken")).ok());
    }
    RawDb raw(file_);
    raw.query(
        "UPDATE upload_jobs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || "
        "substr(id, 2) || ' hours')");
    auto all = db_->throughput_per_hour(24);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 3u);
    EXPECT_GT((*all)[0].hour, (*all)[1].hour);
    EXPECT_EQ((*all)[0].failed, 1);
    EXPECT_EQ((*all)[0].avg_duration_ms, std::nullopt);
    auto two = db_->throughput_per_hour(2);
    ASSERT_TRUE(two.ok());
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0].hour, (*all)[0].hour);
}

TEST_F(JobDbTest, ADeferredJobIsPendingWithItsReasonAttemptsAndNextTime) {
    ASSERT_TRUE(db_->insert_job("d1", "photos", "d1.jpg", "web").ok());
    ASSERT_TRUE(db_->start_attempt("d1").ok());
    const auto next = std::chrono::system_clock::now() + std::chrono::seconds(30);
    ASSERT_TRUE(db_->defer("d1", make_transient(Stage::store, "HTTP 503 SlowDown"), next).ok());
    ASSERT_TRUE(db_->start_attempt("d1").ok());
    ASSERT_TRUE(db_->defer("d1", make_transient(Stage::store, "connection refused"), next).ok());
    auto job = find_job(*db_, "d1");
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->status, "pending");
    EXPECT_EQ(job->attempts, 2);
    EXPECT_EQ(job->last_error, "store: connection refused");
    EXPECT_FALSE(job->next_attempt_at.empty());
    auto deferred = db_->jobs_deferred();
    ASSERT_TRUE(deferred.ok());
    ASSERT_EQ(deferred->size(), 1u);
    EXPECT_EQ((*deferred)[0].upload_id, "d1");
    EXPECT_EQ((*deferred)[0].attempts, 2);
    RawDb raw(file_);
    EXPECT_EQ(raw.one("select count(*) from jobs_in_flight where next_attempt_at is not null"),
              "1");
    // The next start clears next_attempt_at: the job is no longer waiting for a retry.
    ASSERT_TRUE(db_->start_attempt("d1").ok());
    EXPECT_TRUE(db_->jobs_deferred()->empty());
}

TEST_F(JobDbTest, CrashesAreCountedOnlyForRunsCutShort) {
    ASSERT_TRUE(db_->insert_job("c1", "photos", "c1.jpg", "web").ok());
    EXPECT_FALSE(db_->record_crash("c1").ok());  // pending, never started: no crash
    ASSERT_TRUE(db_->start_attempt("c1").ok());
    auto first = db_->record_crash("c1");
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(*first, 1);
    EXPECT_EQ(find_job(*db_, "c1")->status, "pending");
    ASSERT_TRUE(db_->start_attempt("c1").ok());
    EXPECT_EQ(*db_->record_crash("c1"), 2);
    EXPECT_EQ(find_job(*db_, "c1")->attempts, 2);
}

TEST_F(JobDbTest, ForgettingAnUnclaimedJobRemovesOnlyAJobNeverStarted) {
    ASSERT_TRUE(db_->insert_job("u1", "photos", "u1.jpg", "web").ok());
    ASSERT_TRUE(db_->insert_job("u2", "photos", "u2.jpg", "web").ok());
    ASSERT_TRUE(db_->start_attempt("u2").ok());
    ASSERT_TRUE(db_->forget_unclaimed("u1").ok());
    ASSERT_TRUE(db_->forget_unclaimed("u2").ok());
    EXPECT_FALSE(find_job(*db_, "u1").has_value());
    EXPECT_TRUE(find_job(*db_, "u2").has_value());
}

TEST_F(JobDbTest, WaitingFilesAreReplacedAsAWhole) {
    ASSERT_TRUE(db_->replace_waiting_files(
                       {{"photos", "a.jpg", 10, "incomplete JPEG", "2026-11-30T00:00:01.000Z"},
                        {"photos", "b.png", 20, "incomplete PNG", "2026-11-30T00:00:00.000Z"}})
                    .ok());
    auto files = db_->waiting_files();
    ASSERT_TRUE(files.ok());
    ASSERT_EQ(files->size(), 2u);
    EXPECT_EQ((*files)[0].source_name, "b.png");
    ASSERT_TRUE(db_->replace_waiting_files({}).ok());
    EXPECT_TRUE(db_->waiting_files()->empty());
}

TEST_F(JobDbTest, ALockedDatabaseIsATransientError) {
    ASSERT_TRUE(db_->insert_job("l1", "photos", "l1.jpg", "web").ok());
    RawDb raw(file_);
    raw.query("BEGIN EXCLUSIVE");
    auto st = db_->insert_job("l2", "photos", "l2.jpg", "web");
    raw.query("ROLLBACK");
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(st.error().transient) << st.error().message();
    EXPECT_TRUE(db_->insert_job("l2", "photos", "l2.jpg", "web").ok());
}

TEST_F(JobDbTest, AVersionOneDatabaseIsMigratedKeepingItsJobs) {
    db_.reset();
    stdfs::remove(file_);
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(file_.c_str(), &raw), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(raw, sqlite_job_db_migrations()[0], nullptr, nullptr, nullptr),
                  SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(raw,
                               "PRAGMA user_version = 1; INSERT INTO upload_jobs (id, spool, "
                               "source_name, profile) VALUES ('old', 'photos', 'o.jpg', 'web')",
                               nullptr, nullptr, nullptr),
                  SQLITE_OK);
        sqlite3_close(raw);
    }
    auto db = SqliteJobDb::open(file_);
    ASSERT_TRUE(db.ok()) << db.error().message();
    auto job = find_job(**db, "old");
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->attempts, 0);
    EXPECT_EQ(job->status, "pending");
}

// A database file as version 2 of imgspool left it: migrations 1 and 2 only, and a job.
void write_version_two_file(const stdfs::path& file) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &raw), SQLITE_OK);
    for (int v = 0; v < 2; ++v) {
        ASSERT_EQ(sqlite3_exec(raw, sqlite_job_db_migrations()[v], nullptr, nullptr, nullptr),
                  SQLITE_OK);
    }
    ASSERT_EQ(sqlite3_exec(raw,
                           "PRAGMA user_version = 2; INSERT INTO upload_jobs (id, spool, "
                           "source_name, profile, attempts, last_error) VALUES ('old', 'photos', "
                           "'o.jpg', 'web', 2, 'store: HTTP 503')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
}

TEST_F(JobDbTest, AVersionTwoDatabaseIsMigratedToThreeKeepingItsRowsAsDrops) {
    db_.reset();
    stdfs::remove(file_);
    write_version_two_file(file_);
    auto db = SqliteJobDb::open(file_);
    ASSERT_TRUE(db.ok()) << db.error().message();
    auto job = find_job(**db, "old");
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->source_name, "o.jpg");
    EXPECT_EQ(job->attempts, 2);
    EXPECT_EQ(job->last_error, "store: HTTP 503");
    JobRequest drop;
    drop.profile = "web";
    EXPECT_EQ(job->request, drop);

    RawDb raw(file_);
    EXPECT_EQ(raw.one("PRAGMA user_version"), std::to_string(JobDb::schema_version));
    EXPECT_EQ(raw.query("select origin, source_url, user_id, tool, ref, metadata, client_name "
                        "from upload_jobs"),
              (Rows{{"drop", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"}}));
    EXPECT_EQ(raw.query("select name from sqlite_master where type = 'index' and name in "
                        "('upload_jobs_user_id', 'upload_jobs_ref') order by name"),
              (Rows{{"upload_jobs_ref"}, {"upload_jobs_user_id"}}));
}

// A database file as version 3 of imgspool left it: a job finished, one still pending, a file
// waiting in an inbox.
void write_version_three_file(const stdfs::path& file) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &raw), SQLITE_OK);
    for (int v = 0; v < 3; ++v) {
        ASSERT_EQ(sqlite3_exec(raw, sqlite_job_db_migrations()[v], nullptr, nullptr, nullptr),
                  SQLITE_OK);
    }
    ASSERT_EQ(sqlite3_exec(raw,
                           "PRAGMA user_version = 3;"
                           "INSERT INTO upload_jobs (id, spool, source_name, profile, status) "
                           "VALUES ('done', 'photos', 'd.jpg', 'web', 'complete'), "
                           "('queued', 'photos', 'q.jpg', 'web', 'pending');"
                           "INSERT INTO waiting_files (spool, source_name, size, reason, since) "
                           "VALUES ('photos', 'slow.jpg', 1234, 'incomplete JPEG', "
                           "'2026-11-30T01:00:00.000Z')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
}

TEST_F(JobDbTest, AVersionThreeDatabaseIsMigratedToFourOwnedByTheOpeningNode) {
    db_.reset();
    stdfs::remove(file_);
    write_version_three_file(file_);
    auto db = SqliteJobDb::open(file_, "n1");
    ASSERT_TRUE(db.ok()) << db.error().message();
    EXPECT_EQ((*db)->node(), "n1");

    RawDb raw(file_);
    EXPECT_EQ(raw.one("PRAGMA user_version"), std::to_string(JobDb::schema_version));
    EXPECT_EQ(raw.query("select id, node, claim_key, adopted_from from upload_jobs order by id"),
              (Rows{{"done", "n1", "NULL", "NULL"}, {"queued", "n1", "NULL", "NULL"}}));
    EXPECT_EQ(raw.query("select spool, source_name, size, reason, since, node from waiting_files"),
              (Rows{{"photos", "slow.jpg", "1234", "incomplete JPEG", "2026-11-30T01:00:00.000Z",
                     "n1"}}));
    EXPECT_EQ(raw.query("select name from pragma_index_list('waiting_files') where origin = 'pk'"),
              (Rows{{"sqlite_autoindex_waiting_files_1"}}));
    EXPECT_EQ(raw.query("select name from pragma_index_info('sqlite_autoindex_waiting_files_1') "
                        "order by seqno"),
              (Rows{{"node"}, {"spool"}, {"source_name"}}));
    EXPECT_EQ(raw.query("select * from status_counts where status = 'waiting'"),
              (Rows{{"waiting", "1"}}));
    auto jobs = (*db)->unfinished();
    ASSERT_TRUE(jobs.ok()) << jobs.error().message();
    ASSERT_EQ(jobs->size(), 1u);
    EXPECT_EQ((*jobs)[0].upload_id, "queued");
    EXPECT_EQ((*jobs)[0].node, "n1");
}

// A database file as version 4 of imgspool left it: a finished job with its cached set.
void write_version_four_file(const stdfs::path& file, const std::string& outputs_json) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &raw), SQLITE_OK);
    for (int v = 0; v < 4; ++v) {
        ASSERT_EQ(sqlite3_exec(raw, sqlite_job_db_migrations()[v], nullptr, nullptr, nullptr),
                  SQLITE_OK);
    }
    const std::string rows =
        "PRAGMA user_version = 4;"
        "INSERT INTO upload_jobs (id, spool, source_name, profile, status, source_hash, node) "
        "VALUES ('done', 'photos', 'd.jpg', 'web', 'complete', 'h1', 'n1');"
        "INSERT INTO images (upload_id, urls, outputs) VALUES ('done', '{}', '" +
        outputs_json +
        "');"
        "INSERT INTO derivative_cache (source_hash, profile_fingerprint, outputs, upload_id) "
        "VALUES ('h1', 'fp', '" +
        outputs_json + "', 'done')";
    ASSERT_EQ(sqlite3_exec(raw, rows.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(raw);
    sqlite3_close(raw);
}

TEST_F(JobDbTest, AVersionFourDatabaseIsMigratedToFiveKeepingItsImages) {
    db_.reset();
    stdfs::remove(file_);
    write_version_four_file(file_, variants_to_json(outputs_for("done")));
    auto db = SqliteJobDb::open(file_, "n1");
    ASSERT_TRUE(db.ok()) << db.error().message();
    RawDb raw(file_);
    EXPECT_EQ(raw.one("PRAGMA user_version"), "5");
    auto done = find_job(**db, "done");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->outputs, outputs_for("done"));
    EXPECT_EQ(done->placeholders, Placeholders{});
    auto cached = cache_set(**db, "h1", "fp");
    ASSERT_TRUE(cached);
    EXPECT_EQ(cached->outputs, outputs_for("done"));
    EXPECT_EQ(cached->placeholders, Placeholders{});

    const Placeholders made{"L00000fQfQfQfQfQfQfQfQfQfQfQ", "data:image/webp;base64,AAAA"};
    ASSERT_TRUE((*db)->insert_job("new", "photos", "n.jpg", "web").ok());
    ASSERT_TRUE((*db)->start_attempt("new").ok());
    ASSERT_TRUE((*db)->set_source("new", "h2", 1, 1, 1, "png").ok());
    ASSERT_TRUE((*db)->complete("new", outputs_for("new"), "fp", false, 1, made).ok());
    EXPECT_EQ(find_job(**db, "new")->placeholders, made);
    EXPECT_EQ(raw.query("select upload_id, blurhash, lqip from images order by upload_id"),
              (Rows{{"done", "NULL", "NULL"}, {"new", made.blurhash, made.lqip}}));
}

// One daemon per SQLite file: a host renamed between two runs keeps its queued jobs when it
// registers, and the finished ones keep the name they were done under. Opening alone (status,
// process) takes nothing.
TEST_F(JobDbTest, RegisteringUnderAnotherNameTakesTheUnfinishedJobs) {
    db_.reset();
    {
        auto old = SqliteJobDb::open(file_, "old-name");
        ASSERT_TRUE(old.ok()) << old.error().message();
        ASSERT_TRUE((*old)->insert_job("queued", "photos", "q.jpg", "web").ok());
        ASSERT_TRUE((*old)->insert_job("running", "photos", "r.jpg", "web").ok());
        ASSERT_TRUE((*old)->start_attempt("running").ok());
        ASSERT_TRUE((*old)->insert_job("done", "photos", "d.jpg", "web").ok());
        ASSERT_TRUE((*old)->start_attempt("done").ok());
        ASSERT_TRUE((*old)->complete("done", outputs_for("done"), "").ok());
        ASSERT_TRUE((*old)
                        ->replace_waiting_files({{"photos", "slow.jpg", 1, "incomplete JPEG",
                                                  "2026-11-30T01:00:00.000Z"}})
                        .ok());
    }
    auto db = SqliteJobDb::open(file_, "new-name");
    ASSERT_TRUE(db.ok()) << db.error().message();
    RawDb raw(file_);
    EXPECT_EQ(raw.query("select id, node from upload_jobs order by id"),
              (Rows{{"done", "old-name"}, {"queued", "old-name"}, {"running", "old-name"}}));
    EXPECT_EQ(unfinished_of(**db).size(), 0u);
    NodeRegistration me;
    me.host = "h";
    me.instance = "i-new";
    me.state_dir = "/var/lib/imgspool";
    me.pid = 1;
    me.version = "test";
    ASSERT_TRUE((*db)->register_node(me).ok());
    EXPECT_EQ(raw.query("select id, node from upload_jobs order by id"),
              (Rows{{"done", "old-name"}, {"queued", "new-name"}, {"running", "new-name"}}));
    EXPECT_EQ(raw.one("select count(*) from waiting_files"), "0");
    EXPECT_EQ(unfinished_of(**db).size(), 2u);
    EXPECT_TRUE((*db)->record_crash("running").ok());
}

TEST_F(JobDbTest, TheNodeIsTheHostNameUnlessNamed) {
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    EXPECT_EQ(db_->node(), host);
    ASSERT_TRUE(db_->insert_job("j1", "photos", "a.jpg", "web").ok());
    EXPECT_EQ(find_job(*db_, "j1")->node, host);
}

JobRequest manifest_request() {
    JobRequest r;
    r.origin = "manifest";
    r.source_url = "https://images.example.com/cat.png";
    r.user_id = "user-42";
    r.tool = "dall-e";
    r.ref = "client-7";
    r.metadata_json = R"({"prompt":"a cat in a hat","seed":7})";
    r.profile = "dall-e";
    return r;
}

TEST_F(JobDbTest, ANewJobIsADropWithNoRequest) {
    ASSERT_TRUE(db_->insert_job("d1", "photos", "a.jpg", "web").ok());
    auto job = find_job(*db_, "d1");
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->request.origin, "drop");
    EXPECT_EQ(job->request.profile, "web");
    EXPECT_TRUE(job->request.source_url.empty());
    EXPECT_TRUE(job->request.metadata_json.empty());
}

TEST_F(JobDbTest, SetRequestRoundTripsThroughFindAndUnfinished) {
    ASSERT_TRUE(db_->insert_job("m1", "photos", "cat.job.json", "web").ok());
    ASSERT_TRUE(db_->start_attempt("m1").ok());
    const JobRequest request = manifest_request();
    ASSERT_TRUE(db_->set_request("m1", request).ok());

    auto job = find_job(*db_, "m1");
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->request, request);
    EXPECT_EQ(job->profile, "dall-e");  // the manifest's profile replaces the spool's
    EXPECT_EQ(job->status, "processing");
    auto unfinished = unfinished_of(*db_);
    ASSERT_EQ(unfinished.size(), 1u);
    EXPECT_EQ(unfinished[0].request, request);

    // Without a profile, set_request keeps the job's; empty fields are NULL again.
    JobRequest plain;
    plain.origin = "manifest";
    plain.source_url = "s3://bucket/key.jpg";
    ASSERT_TRUE(db_->set_request("m1", plain).ok());
    job = find_job(*db_, "m1");
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->profile, "dall-e");
    EXPECT_EQ(job->request.source_url, "s3://bucket/key.jpg");
    RawDb raw(file_);
    EXPECT_EQ(raw.query("select user_id, tool, ref, metadata from upload_jobs where id = 'm1'"),
              (Rows{{"NULL", "NULL", "NULL", "NULL"}}));
}

TEST_F(JobDbTest, InsertJobRecordsAnUploadsRequest) {
    JobRequest upload;
    upload.origin = "http";
    upload.user_id = "u9";
    upload.client_name = "holiday.jpg";
    upload.metadata_json = R"({"album":"summer"})";
    ASSERT_TRUE(db_->insert_job("h1", "photos", "h1.jpg", "web", upload).ok());
    auto job = find_job(*db_, "h1");
    ASSERT_TRUE(job.has_value());
    upload.profile = "web";  // none asked for: the spool's
    EXPECT_EQ(job->request, upload);

    JobRequest with_profile = upload;
    with_profile.profile = "thumbs";
    ASSERT_TRUE(db_->insert_job("h2", "photos", "h2.jpg", "web", with_profile).ok());
    EXPECT_EQ(find_job(*db_, "h2")->profile, "thumbs");
}

TEST_F(JobDbTest, SetRequestIsRefusedForACompleteOrUnknownJob) {
    start("c1", "hash1");
    ASSERT_TRUE(db_->complete("c1", outputs_for("c1"), "fp").ok());
    auto st = db_->set_request("c1", manifest_request());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::commit);
    EXPECT_NE(st.error().reason.find("already complete"), std::string::npos) << st.error().reason;
    EXPECT_EQ(find_job(*db_, "c1")->request.origin, "drop");

    st = db_->set_request("nope", manifest_request());
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().reason.find("no such job"), std::string::npos) << st.error().reason;
}

TEST_F(JobDbTest, MetadataThatIsNotAJsonObjectIsRefused) {
    ASSERT_TRUE(db_->insert_job("m2", "photos", "x.job.json", "web").ok());
    for (const char* bad : {"{\"prompt\": ", "not json", "[1, 2]", "\"text\"", "42"}) {
        JobRequest r = manifest_request();
        r.metadata_json = bad;
        auto st = db_->set_request("m2", r);
        ASSERT_FALSE(st.ok()) << bad;
        EXPECT_EQ(st.error().stage, Stage::validate) << bad;
        EXPECT_FALSE(st.error().transient) << bad;
        EXPECT_FALSE(db_->insert_job("m3", "photos", "y.job.json", "web", r).ok()) << bad;
    }
    EXPECT_EQ(find_job(*db_, "m2")->request.origin, "drop");
    EXPECT_FALSE(find_job(*db_, "m3").has_value());
}

TEST_F(JobDbTest, TheSchemaItselfRefusesBadMetadataAndUnknownOrigins) {
    ASSERT_TRUE(db_->insert_job("s1", "photos", "s.jpg", "web").ok());
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(file_.c_str(), &raw), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(raw, "UPDATE upload_jobs SET metadata = '{oops' WHERE id = 's1'",
                           nullptr, nullptr, nullptr),
              SQLITE_CONSTRAINT);
    EXPECT_EQ(sqlite3_exec(raw, "UPDATE upload_jobs SET origin = 'ftp' WHERE id = 's1'", nullptr,
                           nullptr, nullptr),
              SQLITE_CONSTRAINT);
    sqlite3_close(raw);

    JobRequest r;
    r.origin = "carrier-pigeon";
    EXPECT_FALSE(db_->set_request("s1", r).ok());
    EXPECT_EQ(find_job(*db_, "s1")->request.origin, "drop");
}

TEST_F(JobDbTest, MetadataIsQueryableWithJsonExtract) {
    ASSERT_TRUE(db_->insert_job("p1", "photos", "p1.job.json", "web").ok());
    ASSERT_TRUE(db_->set_request("p1", manifest_request()).ok());
    JobRequest other = manifest_request();
    other.tool = "midjourney";
    other.metadata_json = R"({"prompt":"a dog"})";
    ASSERT_TRUE(db_->insert_job("p2", "photos", "p2.job.json", "web").ok());
    ASSERT_TRUE(db_->set_request("p2", other).ok());

    RawDb raw(file_);
    EXPECT_EQ(raw.query("select id, user_id, json_extract(metadata, '$.prompt'), "
                        "json_extract(metadata, '$.seed') from upload_jobs where tool = 'dall-e'"),
              (Rows{{"p1", "user-42", "a cat in a hat", "7"}}));
    auto cli = sqlite3_cli(file_,
                           "select id from upload_jobs where json_extract(metadata, '$.prompt') "
                           "like '%dog%';");
    EXPECT_EQ(cli.status, 0) << cli.output;
    EXPECT_EQ(cli.output, "p2\n");
}

}  // namespace
}  // namespace imgspool
