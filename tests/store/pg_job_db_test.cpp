// The job record's contract, run against every backend (kBackends is the only part that knows
// which one), and what only PostgreSQL has: migrations shared by several nodes, a schema that
// mirrors SQLite's, and a server that goes away and comes back.
#include <gtest/gtest.h>

#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/printable_name.hpp"
#include "store/job_db.hpp"
#include "store/pg/pg_handles.hpp"
#include "store/pg/pg_job_db.hpp"
#include "store/pg/pg_pool.hpp"
#include "store/pg/pg_schema.hpp"
#include "store/sqlite_job_db.hpp"
#include "store/variant_json.hpp"
#include "tests/common/markdown_sql.hpp"
#include "tests/pg/pg_test_server.hpp"
#include "tests/store/temp_dir.hpp"

namespace imgspool {
namespace {

using namespace std::chrono_literals;
using Rows = std::vector<std::vector<std::string>>;

// Another connection to the same database, as a person with sqlite3 or psql has: plain SQL,
// every value as text, NULL as "NULL". Errors are test failures.
class RawDb {
  public:
    virtual ~RawDb() = default;
    virtual Rows query(const std::string& sql) = 0;
    std::string one(const std::string& sql) {
        auto rows = query(sql);
        return rows.empty() || rows[0].empty() ? "<no row>" : rows[0][0];
    }
};

class RawSqlite final : public RawDb {
  public:
    explicit RawSqlite(const std::filesystem::path& file) {
        if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << "cannot open " << file;
        }
        sqlite3_busy_timeout(db_, 5000);
    }
    ~RawSqlite() override { sqlite3_close(db_); }
    RawSqlite(const RawSqlite&) = delete;
    RawSqlite& operator=(const RawSqlite&) = delete;

    Rows query(const std::string& sql) override {
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

  private:
    sqlite3* db_ = nullptr;
};

class RawPostgres final : public RawDb {
  public:
    explicit RawPostgres(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
        if (PQstatus(conn_.get()) != CONNECTION_OK) {
            ADD_FAILURE() << "cannot connect: " << PQerrorMessage(conn_.get());
        }
    }
    Rows query(const std::string& sql) override {
        pg::PgResult res(PQexec(conn_.get(), sql.c_str()));
        Rows rows;
        const auto status = PQresultStatus(res.get());
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
            ADD_FAILURE() << sql << ": " << PQerrorMessage(conn_.get());
            return rows;
        }
        for (int r = 0; r < PQntuples(res.get()); ++r) {
            auto& row = rows.emplace_back();
            for (int c = 0; c < PQnfields(res.get()); ++c) {
                row.push_back(PQgetisnull(res.get(), r, c) ? "NULL" : PQgetvalue(res.get(), r, c));
            }
        }
        return rows;
    }

  private:
    pg::PgConn conn_;
};

// One database of one backend for one test, opened as node "a".
struct Opened {
    std::unique_ptr<JobDb> db;
    std::unique_ptr<RawDb> raw;
    // Another JobDb on the same database, writing as `node` (SQLite: opening it makes every
    // unfinished job that node's, as a daemon starting on the file does).
    std::function<std::unique_ptr<JobDb>(const std::string& node)> open_node;
};

struct Backend {
    std::string name;
    std::function<Opened(const test::TempDir&)> open;
    // SQL for "n hours before now" in the column type of created_at/updated_at.
    std::function<std::string(int)> hours_ago;
    // The same for n seconds.
    std::function<std::string(int)> seconds_ago;
};

void PrintTo(const Backend& backend, std::ostream* os) {
    *os << backend.name;
}

Opened open_sqlite(const test::TempDir& tmp) {
    const auto file = tmp.path() / "imgspool.db";
    auto open_node = [file](const std::string& node) -> std::unique_ptr<JobDb> {
        auto db = SqliteJobDb::open(file, node);
        if (!db) ADD_FAILURE() << db.error().message();
        return db ? std::move(*db) : nullptr;
    };
    return {open_node("a"), std::make_unique<RawSqlite>(file), open_node};
}

Opened open_postgres(const test::TempDir&) {
    const std::string url = pg_test::fresh_database("jobdb");
    auto open_node = [url](const std::string& node) -> std::unique_ptr<JobDb> {
        auto db = pg::PgJobDb::open(pg::DatabaseSettings{url}, 4, node);
        if (!db) ADD_FAILURE() << db.error().message();
        return db ? std::move(*db) : nullptr;
    };
    return {open_node("a"), std::make_unique<RawPostgres>(url), open_node};
}

const Backend kBackends[] = {
    {"sqlite", open_sqlite,
     [](int n) {
         return "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-" + std::to_string(n) + " hours')";
     },
     [](int n) {
         return "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-" + std::to_string(n) + " seconds')";
     }},
    {"postgresql", open_postgres,
     [](int n) { return "now() - interval '" + std::to_string(n) + " hours'"; },
     [](int n) { return "now() - interval '" + std::to_string(n) + " seconds'"; }},
};

StoredVariant variant(std::string name, std::string format, std::string key, int width,
                      std::uint64_t bytes) {
    return {name, format, key, "https://cdn.example.com/" + key, width, width * 2 / 3, bytes};
}

std::vector<StoredVariant> outputs_for(const std::string& id) {
    return {variant("small", "jpeg", "images/" + id + "/small.jpg", 320, 2000),
            variant("large", "webp", "images/" + id + "/large.webp", 1600, 90000)};
}

const std::regex kTimestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

nlohmann::json json_of(const std::string& text) {
    return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

class JobDbConformance : public ::testing::TestWithParam<Backend> {
  protected:
    void SetUp() override {
        auto opened = GetParam().open(tmp_);
        db_ = std::move(opened.db);
        raw_ = std::move(opened.raw);
        open_node_ = std::move(opened.open_node);
        ASSERT_NE(db_, nullptr);
    }

    // A job taken through the pipeline's calls up to (not including) complete or fail.
    void start(const std::string& id, const std::string& hash, const std::string& name = "a.jpg") {
        ASSERT_TRUE(db_->insert_job(id, "photos", name, "web").ok());
        ASSERT_TRUE(db_->start_attempt(id).ok());
        ASSERT_TRUE(db_->set_source(id, hash, 123456, 4000, 3000, "jpeg").ok());
        ASSERT_TRUE(db_->set_progress(id, 50).ok());
    }

    std::optional<JobRecord> find(const std::string& id) {
        auto found = db_->find(id);
        EXPECT_TRUE(found.ok()) << found.error().message();
        return found ? *found : std::nullopt;
    }

    std::optional<CachedSet> cached_set(const std::string& hash, const std::string& fingerprint) {
        auto found = db_->cache_lookup(hash, fingerprint);
        EXPECT_TRUE(found.ok()) << found.error().message();
        return found ? *found : std::nullopt;
    }

    std::optional<std::vector<StoredVariant>> lookup(const std::string& hash,
                                                     const std::string& fingerprint) {
        std::optional<CachedSet> set = cached_set(hash, fingerprint);
        return set ? std::optional(std::move(set->outputs)) : std::nullopt;
    }

    std::vector<JobRecord> unfinished() {
        auto jobs = db_->unfinished();
        EXPECT_TRUE(jobs.ok()) << jobs.error().message();
        return jobs ? *jobs : std::vector<JobRecord>{};
    }

    std::map<std::string, std::int64_t> counts() {
        auto c = db_->counts_by_status();
        EXPECT_TRUE(c.ok()) << c.error().message();
        return c ? *c : std::map<std::string, std::int64_t>{};
    }

    // created_at (or another timestamp column) of a job moved n hours into the past.
    void backdate(const std::string& column, const std::string& id, int hours) {
        raw_->query("UPDATE upload_jobs SET " + column + " = " + GetParam().hours_ago(hours) +
                    " WHERE id = '" + id + "'");
    }

    test::TempDir tmp_;
    std::unique_ptr<JobDb> db_;
    std::unique_ptr<RawDb> raw_;
    std::function<std::unique_ptr<JobDb>(const std::string&)> open_node_;
};

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
    return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Backends, JobDbConformance, ::testing::ValuesIn(kBackends), backend_name);

TEST_P(JobDbConformance, DescribesItselfWithoutSecrets) {
    const std::string d = db_->describe();
    EXPECT_TRUE(d.starts_with(GetParam().name + " ")) << d;
    EXPECT_EQ(d.find("password"), std::string::npos) << d;
}

TEST_P(JobDbConformance, FullLifecycle) {
    ASSERT_TRUE(db_->insert_job("u1", "photos", "trips/a.jpg", "web").ok());
    auto pending = find("u1");
    ASSERT_TRUE(pending);
    EXPECT_EQ(pending->status, "pending");
    EXPECT_EQ(pending->spool, "photos");
    EXPECT_EQ(pending->source_name, "trips/a.jpg");
    EXPECT_EQ(pending->profile, "web");
    EXPECT_EQ(pending->attempts, 0);
    EXPECT_TRUE(std::regex_match(pending->created_at, kTimestamp)) << pending->created_at;
    EXPECT_TRUE(pending->completed_at.empty());
    EXPECT_TRUE(pending->next_attempt_at.empty());

    start("u1", "hash1");
    auto working = find("u1");
    ASSERT_TRUE(working);
    EXPECT_EQ(working->status, "processing");
    EXPECT_EQ(working->attempts, 1);
    EXPECT_EQ(working->progress, 50);
    EXPECT_EQ(working->source_hash, "hash1");
    EXPECT_EQ(working->original_size, 123456u);
    EXPECT_EQ(working->width, 4000);
    EXPECT_EQ(working->height, 3000);
    EXPECT_EQ(working->format, "jpeg");
    EXPECT_TRUE(working->outputs.empty());

    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1", false, 1234).ok());
    auto done = find("u1");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, "complete");
    EXPECT_EQ(done->progress, 100);
    EXPECT_EQ(done->duration_ms, 1234);
    EXPECT_FALSE(done->cache_hit);
    EXPECT_TRUE(std::regex_match(done->completed_at, kTimestamp)) << done->completed_at;
    EXPECT_TRUE(std::regex_match(done->updated_at, kTimestamp)) << done->updated_at;
    EXPECT_GE(done->updated_at, done->created_at);
    EXPECT_EQ(done->outputs, outputs_for("u1"));

    EXPECT_EQ(json_of(raw_->one("SELECT urls FROM images WHERE upload_id = 'u1'")),
              json_of(R"({"large.webp":"https://cdn.example.com/images/u1/large.webp",)"
                      R"("small.jpg":"https://cdn.example.com/images/u1/small.jpg"})"));
    EXPECT_EQ(raw_->one("SELECT total_bytes FROM images WHERE upload_id = 'u1'"), "92000");
    auto none = db_->find("nope");
    ASSERT_TRUE(none.ok()) << none.error().message();
    EXPECT_FALSE(none->has_value());
}

TEST_P(JobDbConformance, InsertingAnExistingJobAgainChangesNothing) {
    start("u1", "hash1", "first.jpg");
    ASSERT_TRUE(db_->insert_job("u1", "other", "second.jpg", "thumb").ok());
    auto job = find("u1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "processing");
    EXPECT_EQ(job->source_name, "first.jpg");
    EXPECT_EQ(job->spool, "photos");
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

TEST_P(JobDbConformance, ARequestRoundTripsThroughFindAndUnfinished) {
    ASSERT_TRUE(db_->insert_job("m1", "photos", "cat.job.json", "web").ok());
    auto drop = find("m1");
    ASSERT_TRUE(drop);
    EXPECT_EQ(drop->request.origin, "drop");
    EXPECT_EQ(drop->request.profile, "web");
    EXPECT_TRUE(drop->request.metadata_json.empty());

    ASSERT_TRUE(db_->start_attempt("m1").ok());
    const JobRequest request = manifest_request();
    ASSERT_TRUE(db_->set_request("m1", request).ok());
    auto job = find("m1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->request, request);  // compact JSON with sorted keys reads back as written
    EXPECT_EQ(job->profile, "dall-e");
    EXPECT_EQ(job->status, "processing");
    auto jobs = unfinished();
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs[0].request, request);

    // Without a profile set_request keeps the job's; empty fields are NULL again.
    JobRequest plain;
    plain.origin = "manifest";
    plain.source_url = "s3://bucket/key.jpg";
    ASSERT_TRUE(db_->set_request("m1", plain).ok());
    job = find("m1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->profile, "dall-e");
    EXPECT_EQ(job->request.source_url, "s3://bucket/key.jpg");
    EXPECT_EQ(raw_->query("SELECT user_id, tool, ref, metadata FROM upload_jobs WHERE id = 'm1'"),
              (Rows{{"NULL", "NULL", "NULL", "NULL"}}));
}

TEST_P(JobDbConformance, MetadataReadsBackAsTheSameJsonObject) {
    JobRequest upload;
    upload.origin = "http";
    upload.user_id = "u9";
    upload.client_name = "holiday.jpg";
    // Neither sorted nor compact: jsonb keeps neither, so only the value is compared.
    upload.metadata_json =
        R"({"zeta": 1, "album":"summer", "nested":{"b":[1,2.5,"x"],"a":null}, "t":true})";
    ASSERT_TRUE(db_->insert_job("h1", "photos", "h1.jpg", "web", upload).ok());
    auto job = find("h1");
    ASSERT_TRUE(job);
    EXPECT_EQ(json_of(job->request.metadata_json), json_of(upload.metadata_json))
        << job->request.metadata_json;
    EXPECT_EQ(job->request.client_name, "holiday.jpg");
    EXPECT_EQ(job->request.origin, "http");
    EXPECT_EQ(job->profile, "web");

    JobRequest with_profile = upload;
    with_profile.profile = "thumbs";
    ASSERT_TRUE(db_->insert_job("h2", "photos", "h2.jpg", "web", with_profile).ok());
    auto h2 = find("h2");
    ASSERT_TRUE(h2);
    EXPECT_EQ(h2->profile, "thumbs");
}

TEST_P(JobDbConformance, MetadataThatIsNotAJsonObjectIsRefused) {
    ASSERT_TRUE(db_->insert_job("m2", "photos", "x.job.json", "web").ok());
    for (const char* bad : {"{\"prompt\": ", "not json", "[1, 2]", "\"text\"", "42"}) {
        JobRequest r = manifest_request();
        r.metadata_json = bad;
        auto st = db_->set_request("m2", r);
        ASSERT_FALSE(st.ok()) << bad;
        EXPECT_EQ(st.error().stage, Stage::validate) << bad;
        EXPECT_EQ(st.error().reason, "metadata of upload m2 must be a JSON object");
        EXPECT_FALSE(st.error().transient) << bad;
        EXPECT_FALSE(db_->insert_job("m3", "photos", "y.job.json", "web", r).ok()) << bad;
    }
    JobRequest pigeon;
    pigeon.origin = "carrier-pigeon";  // the schema's CHECK refuses it
    auto st = db_->set_request("m2", pigeon);
    ASSERT_FALSE(st.ok());
    EXPECT_FALSE(st.error().transient) << st.error().message();
    EXPECT_EQ(find("m2")->request.origin, "drop");
    auto m3 = db_->find("m3");
    ASSERT_TRUE(m3.ok());
    EXPECT_FALSE(m3->has_value());
}

// Each guarded update says why it changed nothing, in the same words on every backend.
TEST_P(JobDbConformance, EveryGuardedUpdateIsRefusedForAnUnknownJob) {
    const auto next = std::chrono::system_clock::now() + 1min;
    const std::vector<std::pair<std::string, Status>> refused = {
        {"mark the job processing", db_->start_attempt("ghost")},
        {"defer the job", db_->defer("ghost", make_transient(Stage::store, "503"), next)},
        {"record progress", db_->set_progress("ghost", 10)},
        {"record the request", db_->set_request("ghost", manifest_request())},
        {"record the source", db_->set_source("ghost", "h", 1, 1, 1, "png")},
        {"record the job complete", db_->complete("ghost", outputs_for("ghost"), "")},
        {"record the failure", db_->fail("ghost", make_error(Stage::render, "x"))},
    };
    for (const auto& [what, st] : refused) {
        ASSERT_FALSE(st.ok()) << what;
        EXPECT_EQ(st.error().stage, Stage::commit) << what;
        EXPECT_FALSE(st.error().transient) << what;
        EXPECT_EQ(st.error().reason,
                  "cannot " + what + " for upload ghost: no such job in the database");
    }
    auto crash = db_->record_crash("ghost");
    ASSERT_FALSE(crash.ok());
    EXPECT_EQ(crash.error().reason,
              "cannot count the crash for upload ghost: no such job in the database");
    EXPECT_EQ(raw_->one("SELECT count(*) FROM images"), "0");
    EXPECT_EQ(raw_->one("SELECT count(*) FROM upload_jobs"), "0");
}

TEST_P(JobDbConformance, ACompleteJobStaysComplete) {
    start("u1", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1").ok());
    const auto next = std::chrono::system_clock::now() + 1min;
    const std::vector<std::pair<std::string, Status>> refused = {
        {"mark the job processing", db_->start_attempt("u1")},
        {"defer the job", db_->defer("u1", make_transient(Stage::store, "503"), next)},
        {"record progress", db_->set_progress("u1", 10)},
        {"record the request", db_->set_request("u1", manifest_request())},
        {"record the source", db_->set_source("u1", "other", 1, 1, 1, "png")},
        {"record the job complete", db_->complete("u1", {}, "")},
        {"record the failure", db_->fail("u1", make_error(Stage::move, "disk full"))},
    };
    for (const auto& [what, st] : refused) {
        ASSERT_FALSE(st.ok()) << what;
        EXPECT_EQ(st.error().stage, Stage::commit) << what;
        EXPECT_FALSE(st.error().transient) << what;
        EXPECT_EQ(st.error().reason,
                  "cannot " + what + " for upload u1: the job is already complete");
    }
    auto job = find("u1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "complete");
    EXPECT_EQ(job->progress, 100);
    EXPECT_EQ(job->source_hash, "hash1");
    EXPECT_EQ(job->request.origin, "drop");
    EXPECT_TRUE(job->error.empty());
    EXPECT_EQ(job->outputs, outputs_for("u1"));
    EXPECT_EQ(raw_->one("SELECT count(*) FROM images"), "1");
}

TEST_P(JobDbConformance, ProgressOutsideZeroToHundredIsRefused) {
    start("u1", "hash1");
    EXPECT_FALSE(db_->set_progress("u1", 101).ok());
    EXPECT_FALSE(db_->set_progress("u1", -1).ok());
    EXPECT_TRUE(db_->set_progress("u1", 100).ok());
    EXPECT_EQ(find("u1")->progress, 100);
}

TEST_P(JobDbConformance, CompleteWritesTheCacheRowAndCacheLookupMatchesHashAndFingerprint) {
    start("u1", "hash1");
    EXPECT_FALSE(lookup("hash1", "fp1").has_value());
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1", false, 10).ok());
    auto hit = lookup("hash1", "fp1");
    ASSERT_TRUE(hit.has_value());
    EXPECT_EQ(*hit, outputs_for("u1"));
    EXPECT_FALSE(lookup("hash1", "fp2").has_value());
    EXPECT_FALSE(lookup("hash2", "fp1").has_value());
    EXPECT_EQ(raw_->one("SELECT upload_id FROM derivative_cache WHERE source_hash = 'hash1'"),
              "u1");
}

TEST_P(JobDbConformance, NoCacheRowWithoutAFingerprint) {
    start("u1", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "").ok());
    EXPECT_EQ(raw_->one("SELECT count(*) FROM derivative_cache"), "0");
}

TEST_P(JobDbConformance, ACacheHitKeepsTheRenderingJobInTheCache) {
    start("u1", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1", false, 900).ok());
    start("u2", "hash1");
    auto cached = lookup("hash1", "fp1");
    ASSERT_TRUE(cached);
    ASSERT_TRUE(db_->complete("u2", *cached, "fp1", true, 5).ok());
    auto u2 = find("u2");
    ASSERT_TRUE(u2);
    EXPECT_TRUE(u2->cache_hit);
    EXPECT_EQ(u2->outputs, outputs_for("u1"));
    EXPECT_EQ(raw_->one("SELECT upload_id FROM derivative_cache"), "u1");
}

// What the placeholders look like to the store: two strings, one of them may be absent.
const Placeholders kPlaceholders{"LEHV6nWB2yk8pyo0adR*.7kCMdnj",
                                 "data:image/webp;base64,UklGRh4AAABXRUJQVlA4TBEAAAAvAAAAAAfQ//"
                                 "73v/+BiOh/AAA="};

TEST_P(JobDbConformance, PlaceholdersAreRecordedWithTheImageAndTheCachedSet) {
    start("u1", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1", false, 900, kPlaceholders).ok());
    EXPECT_EQ(find("u1")->placeholders, kPlaceholders);
    auto cached = cached_set("hash1", "fp1");
    ASSERT_TRUE(cached);
    EXPECT_EQ(cached->outputs, outputs_for("u1"));
    EXPECT_EQ(cached->placeholders, kPlaceholders);
    // The columns a person queries (docs/queries.md).
    EXPECT_EQ(raw_->query("SELECT upload_id, blurhash, lqip FROM images"),
              (Rows{{"u1", kPlaceholders.blurhash, kPlaceholders.lqip}}));
    EXPECT_EQ(raw_->query("SELECT blurhash, lqip FROM derivative_cache"),
              (Rows{{kPlaceholders.blurhash, kPlaceholders.lqip}}));

    // A cache hit records what the cached set carries.
    start("u2", "hash1");
    ASSERT_TRUE(db_->complete("u2", cached->outputs, "fp1", true, 5, cached->placeholders).ok());
    EXPECT_EQ(find("u2")->placeholders, kPlaceholders);
}

TEST_P(JobDbConformance, PlaceholdersNotAskedForAreNull) {
    start("u1", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1").ok());
    start("u2", "hash2");
    ASSERT_TRUE(db_->complete("u2", outputs_for("u2"), "fp1", false, 5,
                              Placeholders{kPlaceholders.blurhash, ""})
                    .ok());
    EXPECT_EQ(find("u1")->placeholders, Placeholders{});
    EXPECT_EQ(cached_set("hash1", "fp1")->placeholders, Placeholders{});
    EXPECT_EQ(find("u2")->placeholders, (Placeholders{kPlaceholders.blurhash, ""}));
    EXPECT_EQ(raw_->query("SELECT upload_id, blurhash, lqip FROM images ORDER BY upload_id"),
              (Rows{{"u1", "NULL", "NULL"}, {"u2", kPlaceholders.blurhash, "NULL"}}));
}

TEST_P(JobDbConformance, TheFirstRenderOfTheSameBytesStaysInTheCache) {
    start("u1", "hash1");
    start("u2", "hash1");
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1").ok());
    ASSERT_TRUE(db_->complete("u2", outputs_for("u2"), "fp1").ok());
    EXPECT_EQ(lookup("hash1", "fp1"), outputs_for("u1"));
    EXPECT_EQ(raw_->one("SELECT upload_id FROM derivative_cache"), "u1");
    EXPECT_EQ(find("u2")->outputs, outputs_for("u2"));  // still valid under its own keys
}

TEST_P(JobDbConformance, CompleteIsAllOrNothing) {
    // A cache row needs the source hash: without it the whole completion is rolled back.
    ASSERT_TRUE(db_->insert_job("u1", "photos", "a.jpg", "web").ok());
    ASSERT_TRUE(db_->start_attempt("u1").ok());
    auto st = db_->complete("u1", outputs_for("u1"), "fp1");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::commit);
    EXPECT_EQ(st.error().reason,
              "cannot cache the outputs of upload u1: its source hash was never recorded");
    auto job = find("u1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "processing");
    EXPECT_TRUE(job->completed_at.empty());
    EXPECT_EQ(raw_->one("SELECT count(*) FROM images"), "0");
    EXPECT_EQ(raw_->one("SELECT count(*) FROM derivative_cache"), "0");

    // The connection is usable afterwards and the retry succeeds.
    ASSERT_TRUE(db_->set_source("u1", "hash1", 1, 2, 3, "png").ok());
    ASSERT_TRUE(db_->complete("u1", outputs_for("u1"), "fp1").ok());
    EXPECT_EQ(raw_->one("SELECT count(*) FROM images"), "1");
}

TEST_P(JobDbConformance, FailRecordsReasonAndStage) {
    start("u1", "hash1");
    ASSERT_TRUE(
        db_->fail("u1", make_error(Stage::validate,
                                   "image is 90x90, smaller than the minimum 100x100", "a.jpg"))
            .ok());
    auto job = find("u1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "failed");
    EXPECT_EQ(job->error, "image is 90x90, smaller than the minimum 100x100");
    EXPECT_EQ(job->error_stage, "validate");
    EXPECT_TRUE(job->completed_at.empty());
    // A failed job may run again (a retry after an operator fixed the cause).
    EXPECT_TRUE(db_->start_attempt("u1").ok());
}

TEST_P(JobDbConformance, ADeferredJobIsPendingWithItsReasonAttemptsAndNextTime) {
    ASSERT_TRUE(db_->insert_job("d1", "photos", "d1.jpg", "web").ok());
    ASSERT_TRUE(db_->start_attempt("d1").ok());
    const auto next = std::chrono::system_clock::now() + 30s;
    ASSERT_TRUE(db_->defer("d1", make_transient(Stage::store, "HTTP 503 SlowDown"), next).ok());
    ASSERT_TRUE(db_->start_attempt("d1").ok());
    ASSERT_TRUE(
        db_->defer("d1", make_transient(Stage::store, "connection\xff refused"), next).ok());
    auto job = find("d1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "pending");
    EXPECT_EQ(job->attempts, 2);
    EXPECT_EQ(job->last_error, "store: connection\\xff refused");
    ASSERT_TRUE(std::regex_match(job->next_attempt_at, kTimestamp)) << job->next_attempt_at;
    const auto when = parse_iso_utc(job->next_attempt_at);
    ASSERT_TRUE(when);
    EXPECT_LT(std::chrono::abs(*when - next), 2s) << job->next_attempt_at;

    auto deferred = db_->jobs_deferred();
    ASSERT_TRUE(deferred.ok()) << deferred.error().message();
    ASSERT_EQ(deferred->size(), 1u);
    EXPECT_EQ((*deferred)[0].upload_id, "d1");
    EXPECT_EQ((*deferred)[0].spool, "photos");
    EXPECT_EQ((*deferred)[0].source_name, "d1.jpg");
    EXPECT_EQ((*deferred)[0].attempts, 2);
    EXPECT_EQ((*deferred)[0].next_attempt_at, job->next_attempt_at);
    EXPECT_EQ((*deferred)[0].last_error, "store: connection\\xff refused");
    EXPECT_EQ(raw_->one("select count(*) from jobs_in_flight where next_attempt_at is not null"),
              "1");
    // The next start clears next_attempt_at: the job is no longer waiting for a retry.
    ASSERT_TRUE(db_->start_attempt("d1").ok());
    auto after = db_->jobs_deferred();
    ASSERT_TRUE(after.ok());
    EXPECT_TRUE(after->empty());
    EXPECT_TRUE(find("d1")->next_attempt_at.empty());
}

TEST_P(JobDbConformance, CrashesAreCountedOnlyForRunsCutShort) {
    ASSERT_TRUE(db_->insert_job("c1", "photos", "c1.jpg", "web").ok());
    auto never = db_->record_crash("c1");  // pending, never started: no crash
    ASSERT_FALSE(never.ok());
    EXPECT_EQ(never.error().reason,
              "cannot count the crash for upload c1: the job is already pending");
    ASSERT_TRUE(db_->start_attempt("c1").ok());
    auto first = db_->record_crash("c1");
    ASSERT_TRUE(first.ok()) << first.error().message();
    EXPECT_EQ(*first, 1);
    EXPECT_EQ(find("c1")->status, "pending");
    ASSERT_TRUE(db_->start_attempt("c1").ok());
    auto second = db_->record_crash("c1");
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(*second, 2);
    EXPECT_EQ(find("c1")->attempts, 2);
    EXPECT_EQ(find("c1")->crashes, 2);
}

TEST_P(JobDbConformance, ForgettingAnUnclaimedJobRemovesOnlyAJobNeverStarted) {
    ASSERT_TRUE(db_->insert_job("u1", "photos", "u1.jpg", "web").ok());
    ASSERT_TRUE(db_->insert_job("u2", "photos", "u2.jpg", "web").ok());
    ASSERT_TRUE(db_->start_attempt("u2").ok());
    ASSERT_TRUE(db_->forget_unclaimed("u1").ok());
    ASSERT_TRUE(db_->forget_unclaimed("u2").ok());
    ASSERT_TRUE(db_->forget_unclaimed("never-there").ok());
    EXPECT_FALSE(find("u1").has_value());
    EXPECT_TRUE(find("u2").has_value());
}

TEST_P(JobDbConformance, UnfinishedListsPendingAndProcessingOldestFirst) {
    for (std::string id : {"j1", "j2", "j3", "j4", "j5"}) {
        ASSERT_TRUE(db_->insert_job(id, "photos", id + ".jpg", "web").ok());
    }
    ASSERT_TRUE(db_->start_attempt("j3").ok());
    start("j2", "h2");
    ASSERT_TRUE(db_->complete("j2", outputs_for("j2"), "").ok());
    ASSERT_TRUE(db_->fail("j4", make_error(Stage::render, "broken")).ok());
    backdate("created_at", "j5", 1);  // oldest of all
    auto jobs = unfinished();
    ASSERT_EQ(jobs.size(), 3u);
    EXPECT_EQ(jobs[0].upload_id, "j5");
    EXPECT_EQ(jobs[1].upload_id, "j1");
    EXPECT_EQ(jobs[1].status, "pending");
    EXPECT_EQ(jobs[2].upload_id, "j3");
    EXPECT_EQ(jobs[2].status, "processing");
}

TEST_P(JobDbConformance, CountsByStatusListsAllFourAndTheWaitingFiles) {
    using Counts = std::map<std::string, std::int64_t>;
    EXPECT_EQ(
        counts(),
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
    start("f1", "h3");
    ASSERT_TRUE(db_->fail("f1", make_error(Stage::render, "broken")).ok());
    EXPECT_EQ(
        counts(),
        (Counts{
            {"waiting", 1}, {"pending", 2}, {"processing", 1}, {"complete", 1}, {"failed", 1}}));
    EXPECT_EQ(raw_->query("select * from status_counts"), (Rows{{"waiting", "1"},
                                                                {"pending", "2"},
                                                                {"processing", "1"},
                                                                {"complete", "1"},
                                                                {"failed", "1"}}));
}

// Every view reader on a database holding a bit of everything, and the views as a person
// querying them sees them.
TEST_P(JobDbConformance, ViewReadersAnswerLikeTheViews) {
    start("done1", "h1", "photo.jpg");
    ASSERT_TRUE(db_->complete("done1", outputs_for("done1"), "fp", false, 1000).ok());
    start("hit", "h1", "photo-again.jpg");
    auto cached = lookup("h1", "fp");
    ASSERT_TRUE(cached);
    ASSERT_TRUE(db_->complete("hit", *cached, "fp", true, 21).ok());
    start("bad", "h3", "small.jpg");
    ASSERT_TRUE(db_->fail("bad", make_error(Stage::validate, "image is 90x90")).ok());
    start("working", "h4", "c.jpg");
    ASSERT_TRUE(db_->insert_job("stuck", "photos", "d.jpg", "web").ok());
    backdate("created_at", "stuck", 1);

    auto flight = db_->jobs_in_flight();
    ASSERT_TRUE(flight.ok()) << flight.error().message();
    ASSERT_EQ(flight->size(), 2u);
    EXPECT_EQ((*flight)[0].upload_id, "stuck");
    EXPECT_EQ((*flight)[0].status, "pending");
    EXPECT_EQ((*flight)[0].source_name, "d.jpg");
    EXPECT_GE((*flight)[0].age_s, 3599);
    EXPECT_LE((*flight)[0].age_s, 3700);
    EXPECT_EQ((*flight)[1].upload_id, "working");
    EXPECT_EQ((*flight)[1].status, "processing");
    EXPECT_EQ((*flight)[1].progress, 50);
    EXPECT_EQ((*flight)[1].spool, "photos");
    EXPECT_LE((*flight)[1].age_s, 60);
    EXPECT_TRUE(std::regex_match((*flight)[1].created_at, kTimestamp));
    EXPECT_TRUE(std::regex_match((*flight)[1].updated_at, kTimestamp));
    EXPECT_EQ(raw_->query("select id from jobs_in_flight where age_s > 600"), (Rows{{"stuck"}}));

    auto failures = db_->failures_today();
    ASSERT_TRUE(failures.ok()) << failures.error().message();
    ASSERT_EQ(failures->size(), 1u);
    EXPECT_EQ((*failures)[0].upload_id, "bad");
    EXPECT_EQ((*failures)[0].spool, "photos");
    EXPECT_EQ((*failures)[0].source_name, "small.jpg");
    EXPECT_EQ((*failures)[0].stage, "validate");
    EXPECT_EQ((*failures)[0].reason, "image is 90x90");
    EXPECT_TRUE(std::regex_match((*failures)[0].failed_at, kTimestamp));
    EXPECT_EQ(raw_->query("select id, stage, reason from failures_today"),
              (Rows{{"bad", "validate", "image is 90x90"}}));

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
        EXPECT_EQ((*hours)[0].avg_duration_ms, std::optional<std::int64_t>(511));  // 510.5 up
    }

    auto rate = db_->cache_hit_rate();
    ASSERT_TRUE(rate.ok()) << rate.error().message();
    EXPECT_EQ(rate->hits, 1);
    EXPECT_EQ(rate->misses, 1);
    EXPECT_DOUBLE_EQ(rate->hit_rate_pct, 50.0);
    EXPECT_EQ(raw_->query("select hits, misses, hit_rate_pct from cache_hit_rate"),
              (Rows{{"1", "1", "50.0"}}));
}

TEST_P(JobDbConformance, ViewReadersOnAnEmptyDatabase) {
    auto flight = db_->jobs_in_flight();
    ASSERT_TRUE(flight.ok()) << flight.error().message();
    EXPECT_TRUE(flight->empty());
    auto failures = db_->failures_today();
    ASSERT_TRUE(failures.ok());
    EXPECT_TRUE(failures->empty());
    auto hours = db_->throughput_per_hour(24);
    ASSERT_TRUE(hours.ok());
    EXPECT_TRUE(hours->empty());
    auto deferred = db_->jobs_deferred();
    ASSERT_TRUE(deferred.ok());
    EXPECT_TRUE(deferred->empty());
    auto waiting = db_->waiting_files();
    ASSERT_TRUE(waiting.ok());
    EXPECT_TRUE(waiting->empty());
    auto rate = db_->cache_hit_rate();
    ASSERT_TRUE(rate.ok()) << rate.error().message();
    EXPECT_EQ(rate->hits, 0);
    EXPECT_EQ(rate->misses, 0);
    EXPECT_DOUBLE_EQ(rate->hit_rate_pct, 0.0);
}

TEST_P(JobDbConformance, ThroughputKeepsTheNewestHoursAndNoAverageWithoutCompletedJobs) {
    for (int i = 0; i < 3; ++i) {
        const std::string id = "f" + std::to_string(i);
        start(id, "h" + id);
        ASSERT_TRUE(db_->fail(id, make_error(Stage::render, "broken")).ok());
        backdate("updated_at", id, i);
    }
    auto all = db_->throughput_per_hour(24);
    ASSERT_TRUE(all.ok()) << all.error().message();
    ASSERT_EQ(all->size(), 3u);
    EXPECT_GT((*all)[0].hour, (*all)[1].hour);
    EXPECT_GT((*all)[1].hour, (*all)[2].hour);
    EXPECT_EQ((*all)[0].failed, 1);
    EXPECT_EQ((*all)[0].completed, 0);
    EXPECT_EQ((*all)[0].avg_duration_ms, std::nullopt);
    auto two = db_->throughput_per_hour(2);
    ASSERT_TRUE(two.ok());
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0].hour, (*all)[0].hour);
    auto none = db_->throughput_per_hour(-1);
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->empty());
}

TEST_P(JobDbConformance, WaitingFilesAreReplacedAsAWhole) {
    ASSERT_TRUE(db_->replace_waiting_files(
                       {{"photos", "a.jpg", 10, "incomplete JPEG", "2026-11-30T00:00:01.000Z"},
                        {"photos", "b.png", 20, "incomplete PNG", "2026-11-30T00:00:00.000Z"}})
                    .ok());
    auto files = db_->waiting_files();
    ASSERT_TRUE(files.ok()) << files.error().message();
    ASSERT_EQ(files->size(), 2u);
    EXPECT_EQ((*files)[0].spool, "photos");
    EXPECT_EQ((*files)[0].source_name, "b.png");
    EXPECT_EQ((*files)[0].size, 20u);
    EXPECT_EQ((*files)[0].reason, "incomplete PNG");
    EXPECT_EQ((*files)[0].since, "2026-11-30T00:00:00.000Z");
    EXPECT_EQ((*files)[1].since, "2026-11-30T00:00:01.000Z");

    // The same file twice in one list: the last entry stands, as INSERT OR REPLACE does.
    ASSERT_TRUE(db_->replace_waiting_files(
                       {{"photos", "c.jpg", 1, "open for writing", "2026-11-30T00:00:02.123Z"},
                        {"photos", "c.jpg", 5, "incomplete JPEG", "2026-11-30T00:00:03.456Z"}})
                    .ok());
    files = db_->waiting_files();
    ASSERT_TRUE(files.ok());
    ASSERT_EQ(files->size(), 1u);
    EXPECT_EQ((*files)[0].size, 5u);
    EXPECT_EQ((*files)[0].since, "2026-11-30T00:00:03.456Z");

    ASSERT_TRUE(db_->replace_waiting_files({}).ok());
    files = db_->waiting_files();
    ASSERT_TRUE(files.ok());
    EXPECT_TRUE(files->empty());
}

// upload_jobs.source_name holds printable_name() of the file's bytes and reads back exactly as
// written, also through the views.
TEST_P(JobDbConformance, RoundTripsPrintableNames) {
    const std::vector<std::string> names = {"\xff\xfe.jpg",
                                            "caf\xe9.jpg",
                                            "sub \xff/new\nline.jpg",
                                            std::string("ctl\x01\x1b.png"),
                                            "-rf.jpg",
                                            "quote'\"; drop table images; --.jpg",
                                            "\xe6\x97\xa5\xe6\x9c\xac.jpg",
                                            std::string(251, 'L') + ".jpg"};
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string id = "job" + std::to_string(i);
        const std::string stored = printable_name(names[i]);
        ASSERT_TRUE(is_valid_utf8(stored));
        ASSERT_TRUE(db_->insert_job(id, "s", stored, "web").ok()) << hex_bytes(names[i]);
        const auto rec = find(id);
        ASSERT_TRUE(rec) << id;
        EXPECT_EQ(rec->source_name, stored) << hex_bytes(names[i]);
    }
    EXPECT_EQ(find("job0")->source_name, "\\xff\\xfe.jpg");
    EXPECT_EQ(find("job1")->source_name, "caf\\xe9.jpg");

    auto in_flight = db_->jobs_in_flight();
    ASSERT_TRUE(in_flight.ok());
    ASSERT_EQ(in_flight->size(), names.size());
    ASSERT_TRUE(db_->fail("job2", make_error(Stage::validate, "not an image")).ok());
    auto failures = db_->failures_today();
    ASSERT_TRUE(failures.ok());
    ASSERT_EQ(failures->size(), 1u);
    EXPECT_EQ(failures->front().source_name, "sub \\xff/new\nline.jpg");
    ASSERT_TRUE(db_->replace_waiting_files({{"s", printable_name(names[3]), 1, "incomplete PNG",
                                             "2026-11-30T00:00:00.000Z"}})
                    .ok());
    auto waiting = db_->waiting_files();
    ASSERT_TRUE(waiting.ok());
    ASSERT_EQ(waiting->size(), 1u);
    EXPECT_EQ(waiting->front().source_name, names[3]);
}

TEST_P(JobDbConformance, FourWorkerThreadsWriteConcurrently) {
    constexpr int kThreads = 4;
    constexpr int kJobs = 40;  // every fourth fails
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
                                      : db_->complete(id, outputs_for(id), "fp", false, j).ok()) &&
                          db_->counts_by_status().ok() &&
                          db_->cache_lookup("hash-" + id, "fp").ok();
                if (!ok) ++errors;
            }
        });
    }
    for (auto& w : workers) w.join();
    EXPECT_EQ(errors, 0);
    auto c = counts();
    EXPECT_EQ(c["complete"], kThreads * kJobs * 3 / 4);
    EXPECT_EQ(c["failed"], kThreads * kJobs / 4);
    EXPECT_TRUE(unfinished().empty());
    EXPECT_EQ(raw_->one("SELECT count(*) FROM derivative_cache"),
              std::to_string(kThreads * kJobs * 3 / 4));
}

// Two workers (or two nodes) render the same bytes at once: both jobs complete, and the cache
// holds one set, whole, naming the job that rendered it.
TEST_P(JobDbConformance, TwoCompletesOfTheSameBytesAtOnceLeaveOneWholeCacheRow) {
    constexpr int kRounds = 10;
    for (int round = 0; round < kRounds; ++round) {
        const std::string hash = "same-" + std::to_string(round);
        const std::string a = "a" + std::to_string(round), b = "b" + std::to_string(round);
        start(a, hash);
        start(b, hash);
        std::atomic<bool> go{false};
        Status done_a = ok_status(), done_b = ok_status();
        std::thread ta([&] {
            while (!go) std::this_thread::yield();
            done_a = db_->complete(a, outputs_for(a), "fp");
        });
        std::thread tb([&] {
            while (!go) std::this_thread::yield();
            done_b = db_->complete(b, outputs_for(b), "fp");
        });
        go = true;
        ta.join();
        tb.join();
        ASSERT_TRUE(done_a.ok()) << done_a.error().message();
        ASSERT_TRUE(done_b.ok()) << done_b.error().message();
        const std::string owner =
            raw_->one("SELECT upload_id FROM derivative_cache WHERE source_hash = '" + hash + "'");
        ASSERT_TRUE(owner == a || owner == b) << owner;
        EXPECT_EQ(lookup(hash, "fp"), outputs_for(owner));
        EXPECT_EQ(find(a)->status, "complete");
        EXPECT_EQ(find(b)->status, "complete");
    }
    EXPECT_EQ(raw_->one("SELECT count(*) FROM derivative_cache"), std::to_string(kRounds));
    EXPECT_EQ(raw_->one("SELECT count(*) FROM images"), std::to_string(2 * kRounds));
}

// ---- several nodes on one database ----

// Who a test process registers as: host h1 unless told, this process's pid.
NodeRegistration registration(const std::string& instance, const std::string& host = "h1",
                              const std::string& state_dir = "/var/lib/imgspool") {
    NodeRegistration me;
    me.host = host;
    me.instance = instance;
    me.state_dir = state_dir;
    me.pid = ::getpid();
    me.version = "1.2.3";
    me.workers = 2;
    me.lease_s = 30;
    me.cache_scope = "c0ffee";
    return me;
}

// A pid no process has: a child that exited and was reaped.
std::int64_t dead_pid() {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    int status = 0;
    ::waitpid(child, &status, 0);
    return child;
}

TEST_P(JobDbConformance, AClaimKeyIsTakenOncePerSpoolUntilForgotten) {
    const std::string key = "1234:42:1700000000123456789:0123456789abcdef";
    auto first = db_->insert_claim("c1", "photos", "a.jpg", "web", key);
    ASSERT_TRUE(first.ok()) << first.error().message();
    EXPECT_TRUE(*first);
    auto again = db_->insert_claim("c2", "photos", "a.jpg", "web", key);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_FALSE(*again);
    auto lost = db_->find("c2");
    ASSERT_TRUE(lost.ok());
    EXPECT_FALSE(lost->has_value());
    auto other_spool = db_->insert_claim("c3", "scans", "a.jpg", "web", key);
    ASSERT_TRUE(other_spool.ok());
    EXPECT_TRUE(*other_spool);

    auto job = find("c1");
    ASSERT_TRUE(job);
    EXPECT_EQ(job->status, "pending");
    EXPECT_EQ(job->profile, "web");
    EXPECT_EQ(job->node, "a");
    EXPECT_EQ(job->adopted_from, "");
    EXPECT_EQ(job->request.origin, "drop");
    EXPECT_EQ(raw_->one("SELECT claim_key FROM upload_jobs WHERE id = 'c1'"), key);
    // Rows without a key (uploads, process) never conflict.
    ASSERT_TRUE(db_->insert_job("k1", "photos", "a.jpg", "web").ok());
    ASSERT_TRUE(db_->insert_job("k2", "photos", "a.jpg", "web").ok());
    EXPECT_EQ(raw_->one("SELECT count(*) FROM upload_jobs WHERE claim_key IS NULL"), "2");

    // A claim whose rename failed is forgotten, and the file can be claimed again.
    ASSERT_TRUE(db_->forget_unclaimed("c1").ok());
    auto freed = db_->insert_claim("c4", "photos", "a.jpg", "web", key);
    ASSERT_TRUE(freed.ok()) << freed.error().message();
    EXPECT_TRUE(*freed);
}

// A job that passed to node b refuses node a's writes before anything else is judged, so a
// paused node cannot finish (or fail, or move) what its adopter now runs.
TEST_P(JobDbConformance, AJobOfAnotherNodeRefusesEveryUpdateWhateverItsStatus) {
    const auto next = std::chrono::system_clock::now() + 1min;
    for (const std::string status : {"pending", "processing", "complete", "failed"}) {
        const std::string id = "theirs-" + status;
        ASSERT_TRUE(db_->insert_job(id, "photos", id + ".jpg", "web").ok());
        raw_->query("UPDATE upload_jobs SET node = 'b', adopted_from = 'a', status = '" + status +
                    "' WHERE id = '" + id + "'");
        const std::vector<std::pair<std::string, Status>> refused = {
            {"mark the job processing", db_->start_attempt(id)},
            {"defer the job", db_->defer(id, make_transient(Stage::store, "503"), next)},
            {"record progress", db_->set_progress(id, 10)},
            {"record the request", db_->set_request(id, manifest_request())},
            {"record the source", db_->set_source(id, "h", 1, 1, 1, "png")},
            {"record the job complete", db_->complete(id, outputs_for(id), "")},
            {"record the failure", db_->fail(id, make_error(Stage::render, "x"))},
        };
        const std::string why = "the job now belongs to node b (adopted from a)";
        for (const auto& [what, st] : refused) {
            ASSERT_FALSE(st.ok()) << status << ": " << what;
            EXPECT_EQ(st.error().stage, Stage::lease) << status << ": " << st.error().message();
            EXPECT_FALSE(st.error().transient) << status << ": " << what;
            EXPECT_EQ(st.error().reason, "cannot " + what + " for upload " + id + ": " + why);
        }
        auto crash = db_->record_crash(id);
        ASSERT_FALSE(crash.ok()) << status;
        EXPECT_EQ(crash.error().stage, Stage::lease) << crash.error().message();
        EXPECT_EQ(crash.error().reason, "cannot count the crash for upload " + id + ": " + why);
        auto forget = db_->forget_unclaimed(id);
        ASSERT_FALSE(forget.ok()) << status;
        EXPECT_EQ(forget.error().stage, Stage::lease);
        EXPECT_FALSE(forget.error().transient);
        EXPECT_EQ(forget.error().reason, "cannot forget the unclaimed job " + id + ": " + why);

        auto job = find(id);
        ASSERT_TRUE(job) << status;
        EXPECT_EQ(job->status, status);
        EXPECT_EQ(job->node, "b");
        EXPECT_EQ(job->adopted_from, "a");
        EXPECT_EQ(job->attempts, 0);
        EXPECT_EQ(job->progress, 0);
        EXPECT_EQ(job->source_hash, "");
    }
    EXPECT_EQ(raw_->one("SELECT count(*) FROM images"), "0");

    // Never adopted: the reason names only the owner.
    ASSERT_TRUE(db_->insert_job("b-own", "photos", "b.jpg", "web").ok());
    raw_->query("UPDATE upload_jobs SET node = 'b' WHERE id = 'b-own'");
    auto st = db_->start_attempt("b-own");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().reason,
              "cannot mark the job processing for upload b-own: the job now belongs to node b");
}

TEST_P(JobDbConformance, UnfinishedListsOnlyThisNodesJobsAndTheViewsNameTheOwner) {
    ASSERT_TRUE(db_->insert_job("mine", "photos", "m.jpg", "web").ok());
    ASSERT_TRUE(db_->insert_job("theirs", "photos", "t.jpg", "web").ok());
    start("later", "h1", "l.jpg");
    ASSERT_TRUE(db_->defer("later", make_transient(Stage::store, "503"),
                           std::chrono::system_clock::now() + 1min)
                    .ok());
    start("bad", "h2", "b.jpg");
    ASSERT_TRUE(db_->fail("bad", make_error(Stage::validate, "tiny")).ok());
    raw_->query("UPDATE upload_jobs SET node = 'b' WHERE id = 'theirs'");

    auto jobs = unfinished();
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].upload_id, "mine");
    EXPECT_EQ(jobs[0].node, "a");
    EXPECT_EQ(jobs[1].upload_id, "later");
    EXPECT_EQ(find("theirs")->node, "b");

    auto flight = db_->jobs_in_flight();
    ASSERT_TRUE(flight.ok()) << flight.error().message();
    std::map<std::string, std::string> owners;
    for (const auto& j : *flight) owners[j.upload_id] = j.node;
    EXPECT_EQ(owners,
              (std::map<std::string, std::string>{{"later", "a"}, {"mine", "a"}, {"theirs", "b"}}));
    auto deferred = db_->jobs_deferred();
    ASSERT_TRUE(deferred.ok());
    ASSERT_EQ(deferred->size(), 1u);
    EXPECT_EQ((*deferred)[0].node, "a");
    auto failed = db_->failures_today();
    ASSERT_TRUE(failed.ok());
    ASSERT_EQ(failed->size(), 1u);
    EXPECT_EQ((*failed)[0].node, "a");
}

TEST_P(JobDbConformance, WaitingFilesAreReplacedPerNodeAndCountedOnce) {
    ASSERT_TRUE(db_->replace_waiting_files(
                       {{"photos", "x.jpg", 10, "incomplete JPEG", "2026-11-30T00:00:01.000Z"},
                        {"photos", "y.jpg", 20, "incomplete JPEG", "2026-11-30T00:00:02.000Z"}})
                    .ok());
    raw_->query(
        "INSERT INTO waiting_files (spool, source_name, size, reason, since, node) VALUES "
        "('photos', 'x.jpg', 10, 'incomplete JPEG', '2026-11-30T00:00:03.000Z', 'b'), "
        "('photos', 'z.jpg', 30, 'open for writing', '2026-11-30T00:00:04.000Z', 'b')");
    EXPECT_EQ(raw_->one("SELECT count(*) FROM waiting_files"), "4");
    EXPECT_EQ(counts()["waiting"], 3);  // x.jpg seen by both nodes is one file

    ASSERT_TRUE(db_->replace_waiting_files(
                       {{"photos", "y.jpg", 25, "incomplete JPEG", "2026-11-30T00:00:02.000Z"}})
                    .ok());
    EXPECT_EQ(raw_->query("SELECT node, source_name, size FROM waiting_files "
                          "ORDER BY node, source_name"),
              (Rows{{"a", "y.jpg", "25"}, {"b", "x.jpg", "10"}, {"b", "z.jpg", "30"}}));
    EXPECT_EQ(counts()["waiting"], 3);
    ASSERT_TRUE(db_->replace_waiting_files({}).ok());
    EXPECT_EQ(raw_->one("SELECT count(*) FROM waiting_files WHERE node = 'b'"), "2");
}

TEST_P(JobDbConformance, NodeStatusShowsEachNodesStateAndJobs) {
    ASSERT_TRUE(db_->register_node(registration("i1")).ok());
    start("d1", "h1");
    ASSERT_TRUE(db_->complete("d1", outputs_for("d1"), "").ok());
    start("d2", "h2");
    ASSERT_TRUE(db_->complete("d2", outputs_for("d2"), "").ok());
    start("f1", "h3");
    ASSERT_TRUE(db_->fail("f1", make_error(Stage::render, "x")).ok());
    ASSERT_TRUE(db_->insert_job("p1", "photos", "p.jpg", "web").ok());
    start("old", "h4");
    ASSERT_TRUE(db_->complete("old", outputs_for("old"), "").ok());
    backdate("updated_at", "old", 2);  // done before the last hour
    ASSERT_TRUE(db_->heartbeat({5, 7}).ok());
    EXPECT_EQ(raw_->query("SELECT in_flight, queue_depth, state FROM nodes"),
              (Rows{{"5", "7", "alive"}}));

    auto nodes = db_->nodes();
    ASSERT_TRUE(nodes.ok()) << nodes.error().message();
    ASSERT_EQ(nodes->size(), 1u);
    const NodeStatus& n = (*nodes)[0];
    EXPECT_EQ(n.node, "a");
    EXPECT_EQ(n.host, "h1");
    EXPECT_EQ(n.state, "alive");
    EXPECT_TRUE(std::regex_match(n.started_at, kTimestamp)) << n.started_at;
    EXPECT_TRUE(std::regex_match(n.heartbeat_at, kTimestamp)) << n.heartbeat_at;
    EXPECT_GE(n.heartbeat_at, n.started_at);
    EXPECT_EQ(n.heartbeat_age_s, 0);
    EXPECT_EQ(n.lease_s, 30);
    EXPECT_EQ(n.workers, 2);
    EXPECT_EQ(n.in_flight, 1);  // counted from upload_jobs, not the heartbeat's 5
    EXPECT_EQ(n.done_last_hour, 2);
    EXPECT_EQ(n.failed_last_hour, 1);
    EXPECT_NEAR(n.jobs_per_s, 2.0 / 300, 0.0006);  // rounded to 0.001
    EXPECT_EQ(n.version, "1.2.3");
    EXPECT_EQ(n.cache_scope, "c0ffee");
    EXPECT_EQ(raw_->query("SELECT node, pid = " + std::to_string(::getpid()) +
                          ", queue_depth FROM node_status"),
              (Rows{{"a", GetParam().name == "sqlite" ? "1" : "t", "7"}}));

    raw_->query("UPDATE nodes SET heartbeat_at = " + GetParam().seconds_ago(120));
    nodes = db_->nodes();
    ASSERT_TRUE(nodes.ok());
    EXPECT_EQ((*nodes)[0].state, "lost");
    EXPECT_NEAR(static_cast<double>((*nodes)[0].heartbeat_age_s), 120, 2);

    ASSERT_TRUE(db_->leave().ok());
    nodes = db_->nodes();
    ASSERT_TRUE(nodes.ok());
    EXPECT_EQ((*nodes)[0].state, "stopped");
    EXPECT_EQ(raw_->query("SELECT in_flight, queue_depth FROM nodes"), (Rows{{"0", "0"}}));
}

// The holder of the name "a" as another process left it: host, state_dir, pid, state and how
// long ago it last heart-beat.
void hold_name(RawDb& raw, const Backend& backend, const std::string& host,
               const std::string& state_dir, std::int64_t pid, const std::string& state,
               int silent_s) {
    raw.query("DELETE FROM nodes");
    raw.query(
        "INSERT INTO nodes (node, host, state_dir, instance, pid, version, workers, lease_s, "
        "state, started_at, heartbeat_at) VALUES ('a', '" +
        host + "', '" + state_dir + "', 'i-old', " + std::to_string(pid) + ", '1.0', 1, 30, '" +
        state + "', " + backend.hours_ago(1) + ", " + backend.seconds_ago(silent_s) + ")");
}

TEST_P(JobDbConformance, ALiveHolderOnAnotherHostKeepsTheName) {
    hold_name(*raw_, GetParam(), "h2", "/var/lib/imgspool", 812, "alive", 3);
    auto st = db_->register_node(registration("i1"));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::config);
    EXPECT_FALSE(st.error().transient);
    EXPECT_EQ(st.error().reason,
              "node \"a\" is alive on host h2 (pid 812, heartbeat 3 s ago); give this host "
              "another [daemon] node");
    EXPECT_EQ(raw_->query("SELECT host, instance, state FROM nodes"),
              (Rows{{"h2", "i-old", "alive"}}));
    // Without the name this process has no heartbeat either.
    auto beat = db_->heartbeat({});
    ASSERT_FALSE(beat.ok());
    EXPECT_EQ(beat.error().stage, Stage::lease);

    // Another daemon on this very host (another state_dir) that still runs keeps it too.
    hold_name(*raw_, GetParam(), "h1", "/srv/other", ::getpid(), "alive", 0);
    st = db_->register_node(registration("i1"));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::config);
    EXPECT_NE(st.error().reason.find("is alive on host h1 (pid " + std::to_string(::getpid())),
              std::string::npos)
        << st.error().reason;
}

TEST_P(JobDbConformance, TheNameIsTakenFromAStoppedSilentRestartedOrDeadHolder) {
    struct Case {
        const char* why;
        std::string host, state_dir;
        std::int64_t pid;
        std::string state;
        int silent_s;
    };
    const std::vector<Case> cases = {
        {"stopped", "h2", "/var/lib/imgspool", 812, "stopped", 0},
        {"silent past its lease", "h2", "/var/lib/imgspool", 812, "alive", 31},
        {"the same daemon restarted", "h1", "/var/lib/imgspool", ::getpid(), "alive", 0},
        {"its pid is gone", "h1", "/srv/other", dead_pid(), "alive", 0},
    };
    int n = 0;
    for (const Case& c : cases) {
        hold_name(*raw_, GetParam(), c.host, c.state_dir, c.pid, c.state, c.silent_s);
        const std::string instance = "i" + std::to_string(++n);
        auto st = db_->register_node(registration(instance));
        ASSERT_TRUE(st.ok()) << c.why << ": " << st.error().message();
        EXPECT_EQ(
            raw_->query("SELECT host, state_dir, instance, state, workers, lease_s, "
                        "version, cache_scope FROM nodes"),
            (Rows{{"h1", "/var/lib/imgspool", instance, "alive", "2", "30", "1.2.3", "c0ffee"}}))
            << c.why;
        auto nodes = db_->nodes();
        ASSERT_TRUE(nodes.ok());
        ASSERT_EQ(nodes->size(), 1u);
        EXPECT_EQ((*nodes)[0].heartbeat_age_s, 0) << c.why;
        EXPECT_EQ((*nodes)[0].state, "alive") << c.why;
        EXPECT_TRUE(db_->heartbeat({1, 0}).ok()) << c.why;
    }
}

TEST_P(JobDbConformance, AHeartbeatAfterATakeoverIsALeaseError) {
    ASSERT_TRUE(db_->register_node(registration("first")).ok());
    ASSERT_TRUE(db_->heartbeat({3, 4}).ok());
    EXPECT_EQ(raw_->query("SELECT in_flight, queue_depth FROM nodes"), (Rows{{"3", "4"}}));

    // The same daemon started again (same host and state_dir) while this one still ran.
    auto second = open_node_("a");
    ASSERT_NE(second, nullptr);
    ASSERT_TRUE(second->register_node(registration("second")).ok());

    auto beat = db_->heartbeat({1, 1});
    ASSERT_FALSE(beat.ok());
    EXPECT_EQ(beat.error().stage, Stage::lease);
    EXPECT_FALSE(beat.error().transient);
    EXPECT_EQ(beat.error().reason,
              "cannot record the heartbeat of node \"a\": instance second "
              "on host h1 (pid " +
                  std::to_string(::getpid()) + ") took it over");
    auto left = db_->leave();
    ASSERT_FALSE(left.ok());
    EXPECT_EQ(left.error().stage, Stage::lease);
    EXPECT_EQ(raw_->query("SELECT instance, state, in_flight FROM nodes"),
              (Rows{{"second", "alive", "0"}}));
    EXPECT_TRUE(second->heartbeat({2, 0}).ok());
    EXPECT_TRUE(second->leave().ok());

    auto never = open_node_("c");
    ASSERT_NE(never, nullptr);
    auto unregistered = never->heartbeat({});
    ASSERT_FALSE(unregistered.ok());
    EXPECT_EQ(unregistered.error().stage, Stage::lease);
    EXPECT_EQ(unregistered.error().reason,
              "cannot record the heartbeat of node \"c\": this process never registered it");
}

// PostgreSQL declares no node silent until the server has been up for that node's lease plus the
// longest a pool waits to reconnect: waits (a second more) for that when the test server was
// restarted lately.
void server_up_for_lease(RawDb& raw, const std::string& backend, int lease_s) {
    if (backend != "postgresql") return;
    const int seconds = lease_s + 1 +
                        static_cast<int>(std::chrono::ceil<std::chrono::seconds>(
                                             pg::ConnectionPool::kLongestReconnectWait)
                                             .count());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds + 30);
    while (raw.one("SELECT pg_postmaster_start_time() < now() - interval '" +
                   std::to_string(seconds) + " seconds'") != "t") {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the server keeps restarting";
        std::this_thread::sleep_for(100ms);
    }
}

TEST_P(JobDbConformance, AStoppedNodesUnfinishedJobsAreAdoptedOnce) {
    ASSERT_TRUE(db_->register_node(registration("a1")).ok());
    auto b = open_node_("b");
    ASSERT_NE(b, nullptr);
    ASSERT_TRUE(b->register_node(registration("b1", "h2")).ok());
    ASSERT_TRUE(b->insert_job("queued", "photos", "q.jpg", "web").ok());
    ASSERT_TRUE(b->insert_job("running", "photos", "r.jpg", "web").ok());
    ASSERT_TRUE(b->start_attempt("running").ok());
    ASSERT_TRUE(b->insert_job("done", "photos", "d.jpg", "web").ok());
    ASSERT_TRUE(b->start_attempt("done").ok());
    ASSERT_TRUE(b->complete("done", outputs_for("done"), "").ok());
    ASSERT_TRUE(b->insert_job("bad", "photos", "f.jpg", "web").ok());
    ASSERT_TRUE(b->start_attempt("bad").ok());
    ASSERT_TRUE(b->fail("bad", make_error(Stage::render, "x")).ok());
    ASSERT_TRUE(b->insert_job("later", "photos", "l.jpg", "web").ok());
    ASSERT_TRUE(b->start_attempt("later").ok());
    ASSERT_TRUE(b->defer("later", make_transient(Stage::store, "503"),
                         std::chrono::system_clock::now() + 1h)
                    .ok());

    auto none = db_->adopt_orphans(10, {"photos"});  // b is alive
    ASSERT_TRUE(none.ok()) << none.error().message();
    EXPECT_TRUE(none->empty());

    ASSERT_TRUE(b->leave().ok());
    auto first = db_->adopt_orphans(2, {"photos"});
    ASSERT_TRUE(first.ok()) << first.error().message();
    auto rest = db_->adopt_orphans(10, {"photos"});
    ASSERT_TRUE(rest.ok()) << rest.error().message();
    ASSERT_EQ(first->size(), 2u);
    ASSERT_EQ(rest->size(), 1u);
    std::vector<AdoptedJob> adopted = *first;
    adopted.push_back(rest->front());
    const std::vector<std::string> order = {"queued", "running", "later"};  // oldest first
    for (std::size_t i = 0; i < adopted.size(); ++i) {
        const AdoptedJob& job = adopted[i];
        EXPECT_EQ(job.record.upload_id, order[i]);
        EXPECT_EQ(job.from_node, "b");
        EXPECT_EQ(job.record.node, "a");
        EXPECT_EQ(job.record.adopted_from, "b");
        EXPECT_EQ(job.record.status, "pending");
        EXPECT_TRUE(job.record.outputs.empty());
        auto now = find(job.record.upload_id);  // the record returned is the row as it is now
        ASSERT_TRUE(now);
        EXPECT_EQ(job.record.updated_at, now->updated_at);
        EXPECT_EQ(job.record.crashes, now->crashes);
        EXPECT_EQ(job.record.node, now->node);
        EXPECT_EQ(job.record.adopted_from, now->adopted_from);
        EXPECT_EQ(job.record.source_name, now->source_name);
    }
    EXPECT_EQ(adopted[0].record.crashes, 0);
    EXPECT_EQ(adopted[0].record.attempts, 0);
    EXPECT_EQ(adopted[1].record.crashes, 1);  // cut short by b's death
    EXPECT_EQ(adopted[1].record.attempts, 1);
    EXPECT_EQ(adopted[2].record.crashes, 0);
    EXPECT_EQ(adopted[2].record.last_error, "store: 503");
    EXPECT_FALSE(adopted[2].record.next_attempt_at.empty());
    EXPECT_EQ(find("done")->node, "b");
    EXPECT_EQ(find("done")->status, "complete");
    EXPECT_EQ(find("bad")->node, "b");

    auto again = db_->adopt_orphans(10, {"photos"});
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->empty());
    EXPECT_EQ(unfinished().size(), 3u);
    auto late = b->start_attempt("queued");
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().stage, Stage::lease);
    EXPECT_EQ(late.error().reason,
              "cannot mark the job processing for upload queued: the job "
              "now belongs to node a (adopted from b)");
    EXPECT_TRUE(db_->start_attempt("queued").ok());
    auto zero = db_->adopt_orphans(0, {"photos"});
    ASSERT_TRUE(zero.ok());
    EXPECT_TRUE(zero->empty());
}

TEST_P(JobDbConformance, ASilentNodesJobsAreAdoptedAfterItsLease) {
    server_up_for_lease(*raw_, GetParam().name, 1);
    ASSERT_TRUE(db_->register_node(registration("a1")).ok());
    auto b = open_node_("b");
    ASSERT_NE(b, nullptr);
    NodeRegistration short_lease = registration("b1", "h2");
    short_lease.lease_s = 1;
    ASSERT_TRUE(b->register_node(short_lease).ok());
    ASSERT_TRUE(b->insert_job("s1", "photos", "s.jpg", "web").ok());
    ASSERT_TRUE(b->start_attempt("s1").ok());
    raw_->query("UPDATE nodes SET heartbeat_at = " + GetParam().seconds_ago(60) +
                " WHERE node = 'b'");

    auto adopted = db_->adopt_orphans(5, {"photos"});
    ASSERT_TRUE(adopted.ok()) << adopted.error().message();
    ASSERT_EQ(adopted->size(), 1u);
    EXPECT_EQ((*adopted)[0].record.upload_id, "s1");
    EXPECT_EQ((*adopted)[0].record.crashes, 1);
    // b wakes up: its name is still its own, its job is not.
    EXPECT_TRUE(b->heartbeat({1, 0}).ok());
    auto done = b->complete("s1", outputs_for("s1"), "");
    ASSERT_FALSE(done.ok());
    EXPECT_EQ(done.error().stage, Stage::lease);
    EXPECT_EQ(raw_->one("SELECT count(*) FROM images"), "0");
}

// A job of a spool the adopter does not take files from stays with the dead node until a node
// that has the spool adopts it: only that node can find its file.
TEST_P(JobDbConformance, OnlyJobsOfTheAdoptersSpoolsAreAdopted) {
    ASSERT_TRUE(db_->register_node(registration("a1")).ok());
    auto b = open_node_("b");
    ASSERT_NE(b, nullptr);
    ASSERT_TRUE(b->register_node(registration("b1", "h2")).ok());
    ASSERT_TRUE(b->insert_job("mine", "photos", "m.jpg", "web").ok());
    ASSERT_TRUE(b->insert_job("theirs", "scans", "t.png", "web").ok());
    ASSERT_TRUE(b->leave().ok());

    auto none = db_->adopt_orphans(10, {});
    ASSERT_TRUE(none.ok()) << none.error().message();
    EXPECT_TRUE(none->empty());
    auto adopted = db_->adopt_orphans(10, {"photos", "other"});
    ASSERT_TRUE(adopted.ok()) << adopted.error().message();
    ASSERT_EQ(adopted->size(), 1u);
    EXPECT_EQ((*adopted)[0].record.upload_id, "mine");
    EXPECT_EQ(find("theirs")->node, "b");
    adopted = db_->adopt_orphans(10, {"scans"});
    ASSERT_TRUE(adopted.ok()) << adopted.error().message();
    ASSERT_EQ(adopted->size(), 1u);
    EXPECT_EQ((*adopted)[0].record.upload_id, "theirs");
}

// Every node of a shared spool reports the files it sees waiting; each is listed once, as the
// node that has watched it longest saw it.
TEST_P(JobDbConformance, AFileSeveralNodesSeeWaitingIsListedOnce) {
    ASSERT_TRUE(db_->register_node(registration("a1")).ok());
    auto b = open_node_("b");
    ASSERT_NE(b, nullptr);
    ASSERT_TRUE(b->register_node(registration("b1", "h2")).ok());
    ASSERT_TRUE(db_->replace_waiting_files(
                       {{"photos", "slow.jpg", 10, "incomplete JPEG", "2026-11-30T00:00:05.000Z"},
                        {"photos", "a-only.png", 1, "incomplete PNG", "2026-11-30T00:00:09.000Z"}})
                    .ok());
    ASSERT_TRUE(b->replace_waiting_files(
                     {{"photos", "slow.jpg", 12, "open for writing", "2026-11-30T00:00:02.000Z"}})
                    .ok());
    auto files = db_->waiting_files();
    ASSERT_TRUE(files.ok()) << files.error().message();
    ASSERT_EQ(files->size(), 2u);
    EXPECT_EQ((*files)[0].source_name, "slow.jpg");
    EXPECT_EQ((*files)[0].size, 12u);
    EXPECT_EQ((*files)[0].reason, "open for writing");
    EXPECT_EQ((*files)[0].since, "2026-11-30T00:00:02.000Z");
    EXPECT_EQ((*files)[1].source_name, "a-only.png");
}

// ---- PostgreSQL only ----

class PgJobDbTest : public ::testing::Test {
  protected:
    Result<std::unique_ptr<pg::PgJobDb>> open() {
        return pg::PgJobDb::open(pg::DatabaseSettings{url_}, 2, "test");
    }

    std::string url_ = pg_test::fresh_database("pgdb");
    RawPostgres raw_{url_};
};

struct CliResult {
    int status = -1;
    std::string output;  // stdout and stderr
};

// Runs a shell command line: exit status, stdout and stderr.
CliResult shell(const std::string& command) {
    CliResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return result;
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
    result.status = ::pclose(pipe);
    return result;
}

// The plain psql binary as docs/queries.md connects it (read-only, without ~/.psqlrc), stopping
// at the first error, one row a line ("a|b"). The
// fixture's URLs are quote-free (hex password, generated database names).
constexpr const char* kReadOnlyPsql =
    "PGOPTIONS='-c default_transaction_read_only=on' psql -X -q -A -t -v ON_ERROR_STOP=1 ";

// The SQL from a file, on the URL.
CliResult psql_cli(const std::string& url, const std::filesystem::path& dir,
                   const std::string& sql) {
    const auto script = dir / "query.sql";
    std::ofstream(script) << sql;
    return shell(kReadOnlyPsql + ("'" + url + "' -f '" + script.string() + "'"));
}

const std::regex kUuid(R"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})");

// Tables, views, columns (in order) and indexes are SQLite's version 3, name for name, so every
// documented query has a psql twin; imgspool_meta holds what PRAGMA user_version holds there.
TEST_F(PgJobDbTest, TheSchemaMirrorsSqlite) {
    ASSERT_TRUE(open().ok());
    test::TempDir tmp;
    ASSERT_TRUE(SqliteJobDb::open(tmp.path() / "imgspool.db").ok());
    RawSqlite sqlite(tmp.path() / "imgspool.db");

    std::map<std::string, std::vector<std::string>> lite, pg;
    for (const auto& t : sqlite.query("SELECT name FROM sqlite_master WHERE type IN "
                                      "('table', 'view') ORDER BY name")) {
        for (const auto& col : sqlite.query("PRAGMA table_info(" + t[0] + ")")) {
            lite[t[0]].push_back(col[1]);
        }
    }
    for (const auto& col :
         raw_.query("SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name <> 'imgspool_meta' "
                    "ORDER BY table_name, ordinal_position")) {
        pg[col[0]].push_back(col[1]);
    }
    EXPECT_EQ(pg, lite);
    EXPECT_EQ(lite.size(), 12u);

    Rows lite_indexes = sqlite.query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name");
    Rows pg_indexes = raw_.query(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
        "AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key' ORDER BY indexname");
    EXPECT_EQ(pg_indexes, lite_indexes);

    EXPECT_EQ(raw_.query("SELECT table_name, column_name, data_type FROM "
                         "information_schema.columns WHERE table_schema = 'public' AND "
                         "(data_type IN ('jsonb', 'boolean') OR column_name = 'created_at') "
                         "ORDER BY 1, 2"),
              (Rows{{"derivative_cache", "created_at", "timestamp with time zone"},
                    {"derivative_cache", "outputs", "jsonb"},
                    {"images", "created_at", "timestamp with time zone"},
                    {"images", "outputs", "jsonb"},
                    {"images", "urls", "jsonb"},
                    {"jobs_in_flight", "created_at", "timestamp with time zone"},
                    {"upload_jobs", "cache_hit", "boolean"},
                    {"upload_jobs", "created_at", "timestamp with time zone"},
                    {"upload_jobs", "metadata", "jsonb"}}));
}

TEST_F(PgJobDbTest, TheSchemaItselfRefusesMetadataThatIsNoObjectAndUnknownOrigins) {
    auto db = open();
    ASSERT_TRUE(db.ok()) << db.error().message();
    ASSERT_TRUE((*db)->insert_job("s1", "photos", "s.jpg", "web").ok());
    pg::PgConn conn(PQconnectdb(url_.c_str()));
    for (const char* bad : {"UPDATE upload_jobs SET metadata = '[1]' WHERE id = 's1'",
                            "UPDATE upload_jobs SET origin = 'ftp' WHERE id = 's1'"}) {
        pg::PgResult res(PQexec(conn.get(), bad));
        EXPECT_STREQ(PQresultErrorField(res.get(), PG_DIAG_SQLSTATE), "23514") << bad;
    }
}

// jsonb has no U+0000; the refusal says so before the job could fail at the database.
TEST_F(PgJobDbTest, MetadataWithANulCharacterIsRefusedAndAnEscapedBackslashIsNot) {
    auto db = open();
    ASSERT_TRUE(db.ok()) << db.error().message();
    JobRequest r;
    r.origin = "http";
    r.metadata_json = R"({"a":{"b":["x\u0000y"]}})";
    auto st = (*db)->insert_job("n1", "photos", "n.jpg", "web", r);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::validate);
    EXPECT_EQ(st.error().reason,
              "metadata of upload n1 must not contain \\u0000 (PostgreSQL cannot store it)");
    r.metadata_json = R"({"path":"C:\\u0000.txt"})";  // a backslash, then "u0000"
    ASSERT_TRUE((*db)->insert_job("n2", "photos", "n.jpg", "web", r).ok());
    auto job = (*db)->find("n2");
    ASSERT_TRUE(job.ok() && job->has_value());
    EXPECT_EQ((*job)->request.metadata_json, r.metadata_json);
}

TEST_F(PgJobDbTest, ImgspoolIsoFormatsLikeSqlite) {
    ASSERT_TRUE(open().ok());
    EXPECT_EQ(raw_.one("SET TimeZone = 'America/New_York'; "
                       "SELECT imgspool_iso('2026-11-22 03:04:05.1239+00')"),
              "2026-11-22T03:04:05.123Z");
    EXPECT_EQ(raw_.one("SELECT imgspool_iso(NULL)"), "NULL");
}

TEST_F(PgJobDbTest, MetaHoldsTheVersionAndADatabaseIdThatOpeningAgainKeeps) {
    auto db = open();
    ASSERT_TRUE(db.ok()) << db.error().message();
    EXPECT_EQ(raw_.one("SELECT value FROM imgspool_meta WHERE key = 'schema_version'"),
              std::to_string(JobDb::schema_version));
    const std::string id = raw_.one("SELECT value FROM imgspool_meta WHERE key = 'database_id'");
    EXPECT_TRUE(std::regex_match(id, kUuid)) << id;
    ASSERT_TRUE((*db)->insert_job("u1", "photos", "a.jpg", "web").ok());
    db->reset();

    auto again = open();
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(raw_.one("SELECT value FROM imgspool_meta WHERE key = 'database_id'"), id);
    EXPECT_EQ(raw_.one("SELECT count(*) FROM imgspool_meta"), "2");
    auto job = (*again)->find("u1");
    ASSERT_TRUE(job.ok());
    EXPECT_TRUE(job->has_value());

    auto conn = pg::Connection::open(pg::DatabaseSettings{url_}, "test");
    ASSERT_TRUE(conn.ok()) << conn.error().message();
    auto info = pg::read_schema_info(*conn);
    ASSERT_TRUE(info.ok()) << info.error().message();
    EXPECT_EQ(info->version, pg::pg_schema_version());
    EXPECT_EQ(info->database_id, id);
}

TEST_F(PgJobDbTest, SeveralNodesStartingAtOnceMigrateOnce) {
    constexpr int kNodes = 4;
    std::vector<std::thread> nodes;
    std::vector<Status> opened(kNodes, ok_status());
    std::atomic<bool> go{false};
    for (int n = 0; n < kNodes; ++n) {
        nodes.emplace_back([&, n] {
            while (!go) std::this_thread::yield();
            auto db = pg::PgJobDb::open(pg::DatabaseSettings{url_}, 1, "node" + std::to_string(n));
            if (!db) opened[n] = db.error();
        });
    }
    go = true;
    for (auto& t : nodes) t.join();
    for (int n = 0; n < kNodes; ++n) {
        EXPECT_TRUE(opened[n].ok()) << "node" << n << ": " << opened[n].error().message();
    }
    EXPECT_EQ(raw_.query("SELECT key FROM imgspool_meta ORDER BY key"),
              (Rows{{"database_id"}, {"schema_version"}}));
}

TEST_F(PgJobDbTest, ADatabaseFromANewerVersionIsRefused) {
    ASSERT_TRUE(open().ok());
    raw_.query("UPDATE imgspool_meta SET value = '99' WHERE key = 'schema_version'");
    auto db = open();
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.error().stage, Stage::commit);
    EXPECT_FALSE(db.error().transient);
    EXPECT_EQ(db.error().reason,
              "database schema version 99 is newer than this imgspool understands (" +
                  std::to_string(JobDb::schema_version) + "); upgrade imgspool");
    EXPECT_TRUE(db.error().file.starts_with("postgresql ")) << db.error().file;
    EXPECT_EQ(raw_.one("SELECT value FROM imgspool_meta WHERE key = 'schema_version'"), "99");
}

TEST_F(PgJobDbTest, AFailedMigrationLeavesNothingBehind) {
    raw_.query("CREATE TABLE upload_jobs (x integer)");  // someone else's table of that name
    auto db = open();
    ASSERT_FALSE(db.ok());
    EXPECT_FALSE(db.error().transient) << db.error().message();
    EXPECT_NE(db.error().reason.find("upload_jobs"), std::string::npos) << db.error().reason;
    EXPECT_EQ(raw_.query("SELECT to_regclass('imgspool_meta'), to_regclass('images'), "
                         "to_regproc('imgspool_iso')"),
              (Rows{{"NULL", "NULL", "NULL"}}));
}

// pg_stat_activity tells the nodes' sessions apart.
TEST_F(PgJobDbTest, SessionsCarryTheNodeName) {
    auto db = pg::PgJobDb::open(pg::DatabaseSettings{url_}, 2, "node-a");
    ASSERT_TRUE(db.ok()) << db.error().message();
    EXPECT_EQ(raw_.one("SELECT count(*) > 0 FROM pg_stat_activity "
                       "WHERE application_name = 'imgspool/node-a'"),
              "t");
}

// ---- nodes a and b on one database ----

std::unique_ptr<pg::PgJobDb> open_as(const std::string& url, const std::string& node) {
    auto db = pg::PgJobDb::open(pg::DatabaseSettings{url}, 4, node);
    if (!db) ADD_FAILURE() << node << ": " << db.error().message();
    return db ? std::move(*db) : nullptr;
}

// The unique (spool, claim_key) index decides: of the nodes' threads claiming the same files at
// once, exactly one gets each.
TEST_F(PgJobDbTest, TwoNodesClaimingTheSameFilesAtOnceGetEachClaimOnce) {
    auto a = open_as(url_, "a");
    auto b = open_as(url_, "b");
    ASSERT_TRUE(a && b);
    constexpr int kFiles = 40;
    constexpr int kThreadsPerNode = 3;
    std::array<std::atomic<int>, kFiles> wins{};
    std::atomic<int> errors{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (JobDb* db : {static_cast<JobDb*>(a.get()), static_cast<JobDb*>(b.get())}) {
        for (int t = 0; t < kThreadsPerNode; ++t) {
            threads.emplace_back([&, db, t] {
                while (!go) std::this_thread::yield();
                for (int f = 0; f < kFiles; ++f) {
                    const std::string n = std::to_string(f);
                    auto claimed = db->insert_claim(db->node() + std::to_string(t) + "-" + n,
                                                    "photos", n + ".jpg", "web", "key-" + n);
                    if (!claimed)
                        ++errors;
                    else if (*claimed)
                        ++wins[f];
                }
            });
        }
    }
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(errors, 0);
    for (int f = 0; f < kFiles; ++f) EXPECT_EQ(wins[f], 1) << "file " << f;
    EXPECT_EQ(raw_.one("SELECT count(*) FROM upload_jobs"), std::to_string(kFiles));
    EXPECT_EQ(raw_.one("SELECT count(DISTINCT claim_key) FROM upload_jobs"),
              std::to_string(kFiles));
}

// FOR UPDATE SKIP LOCKED: two survivors adopting at once split a dead node's jobs, none twice,
// none left behind.
TEST_F(PgJobDbTest, TwoAdoptersShareADeadNodesJobsWithoutOverlap) {
    server_up_for_lease(raw_, "postgresql", 1);
    auto a = open_as(url_, "a");
    auto b = open_as(url_, "b");
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(a->register_node(registration("a1")).ok());
    ASSERT_TRUE(b->register_node(registration("b1", "h2")).ok());
    for (int round = 0; round < 4; ++round) {
        const std::string dead = "c" + std::to_string(round);
        auto c = open_as(url_, dead);
        ASSERT_TRUE(c);
        NodeRegistration short_lease = registration(dead + "-1", "h3");
        short_lease.lease_s = 1;
        ASSERT_TRUE(c->register_node(short_lease).ok());
        std::set<std::string> orphans;
        for (int j = 0; j < 8; ++j) {
            const std::string id = dead + "-job" + std::to_string(j);
            ASSERT_TRUE(c->insert_job(id, "photos", id + ".jpg", "web").ok());
            if (j % 2 == 1) {
                ASSERT_TRUE(c->start_attempt(id).ok());
            }
            orphans.insert(id);
        }
        raw_.query("UPDATE nodes SET heartbeat_at = now() - interval '1 hour' WHERE node = '" +
                   dead + "'");

        std::vector<AdoptedJob> got_a, got_b;
        Status err_a = ok_status(), err_b = ok_status();
        std::atomic<bool> go{false};
        auto adopt = [&](pg::PgJobDb& db, std::vector<AdoptedJob>& got, Status& err) {
            while (!go) std::this_thread::yield();
            auto adopted = db.adopt_orphans(5, {"photos"});
            if (!adopted)
                err = adopted.error();
            else
                got = std::move(*adopted);
        };
        std::thread ta(adopt, std::ref(*a), std::ref(got_a), std::ref(err_a));
        std::thread tb(adopt, std::ref(*b), std::ref(got_b), std::ref(err_b));
        go = true;
        ta.join();
        tb.join();
        ASSERT_TRUE(err_a.ok()) << err_a.error().message();
        ASSERT_TRUE(err_b.ok()) << err_b.error().message();
        EXPECT_LE(got_a.size(), 5u);
        EXPECT_LE(got_b.size(), 5u);
        std::set<std::string> all;
        for (const auto* got : {&got_a, &got_b}) {
            const std::string adopter = got == &got_a ? "a" : "b";
            for (const AdoptedJob& job : *got) {
                EXPECT_TRUE(all.insert(job.record.upload_id).second)
                    << job.record.upload_id << " adopted twice";
                EXPECT_EQ(job.from_node, dead);
                EXPECT_EQ(job.record.node, adopter);
                EXPECT_EQ(job.record.status, "pending");
                EXPECT_EQ(job.record.crashes, job.record.attempts);  // processing ones crashed
            }
        }
        EXPECT_EQ(all, orphans) << "round " << round;
        EXPECT_EQ(raw_.one("SELECT count(*) FROM upload_jobs WHERE node = '" + dead + "'"), "0");
    }
}

// After a server restart every heartbeat is old; no node is declared silent (its jobs adopted)
// until the server has been up for that node's lease and the longest reconnect wait, time in
// which live nodes heart-beat again.
TEST_F(PgJobDbTest, NoNodeIsSilentBeforeTheServerHasBeenUpForItsLease) {
    ASSERT_EQ(raw_.one("SELECT pg_postmaster_start_time() > now() - interval '1 day'"), "t")
        << "the test server runs for a test run, not for a day";
    auto a = open_as(url_, "a");
    auto c = open_as(url_, "c");
    ASSERT_TRUE(a && c);
    ASSERT_TRUE(a->register_node(registration("a1")).ok());
    NodeRegistration day_lease = registration("c1", "h3");
    day_lease.lease_s = 86400;
    ASSERT_TRUE(c->register_node(day_lease).ok());
    ASSERT_TRUE(c->insert_job("kept", "photos", "k.jpg", "web").ok());
    raw_.query("UPDATE nodes SET heartbeat_at = now() - interval '2 days' WHERE node = 'c'");

    auto adopted = a->adopt_orphans(10, {"photos"});
    ASSERT_TRUE(adopted.ok()) << adopted.error().message();
    EXPECT_TRUE(adopted->empty());
    EXPECT_EQ(raw_.one("SELECT state FROM node_status WHERE node = 'c'"), "lost");
    EXPECT_EQ(raw_.one("SELECT node FROM upload_jobs WHERE id = 'kept'"), "c");

    raw_.query("UPDATE nodes SET lease_s = 1 WHERE node = 'c'");
    server_up_for_lease(raw_, "postgresql", 1);
    adopted = a->adopt_orphans(10, {"photos"});
    ASSERT_TRUE(adopted.ok()) << adopted.error().message();
    ASSERT_EQ(adopted->size(), 1u);
    EXPECT_EQ((*adopted)[0].record.upload_id, "kept");
}

// A database version 3 of imgspool made (one daemon per database) becomes version 4 with its
// rows owned by the node that migrates it.
TEST_F(PgJobDbTest, AVersionThreeDatabaseIsMigratedToFourOwnedByTheOpeningNode) {
    for (const char* sql : pg::pg_migrations()[0].statements) raw_.query(sql);
    ASSERT_EQ(pg::pg_migrations()[0].version, 3);
    raw_.query("INSERT INTO imgspool_meta (key, value) VALUES ('schema_version', '3')");
    raw_.query(
        "INSERT INTO upload_jobs (id, spool, source_name, profile, status) VALUES "
        "('done', 'photos', 'd.jpg', 'web', 'complete'), "
        "('queued', 'photos', 'q.jpg', 'web', 'pending')");
    raw_.query(
        "INSERT INTO waiting_files (spool, source_name, size, reason, since) VALUES "
        "('photos', 'slow.jpg', 1234, 'incomplete JPEG', '2026-11-30T01:00:00Z')");

    auto db = open_as(url_, "n1");
    ASSERT_TRUE(db);
    EXPECT_EQ(raw_.one("SELECT value FROM imgspool_meta WHERE key = 'schema_version'"),
              std::to_string(JobDb::schema_version));
    EXPECT_EQ(raw_.query("SELECT id, node, claim_key, adopted_from FROM upload_jobs ORDER BY id"),
              (Rows{{"done", "n1", "NULL", "NULL"}, {"queued", "n1", "NULL", "NULL"}}));
    EXPECT_EQ(raw_.query("SELECT source_name, node FROM waiting_files"),
              (Rows{{"slow.jpg", "n1"}}));
    EXPECT_EQ(raw_.one("SELECT pg_get_indexdef('waiting_files_pkey'::regclass)"),
              "CREATE UNIQUE INDEX waiting_files_pkey ON public.waiting_files USING btree (node, "
              "spool, source_name)");
    // New rows must say whose they are.
    EXPECT_EQ(raw_.one("SELECT count(*) FROM information_schema.columns WHERE column_name = "
                       "'node' AND column_default IS NOT NULL"),
              "0");
    auto jobs = db->unfinished();
    ASSERT_TRUE(jobs.ok()) << jobs.error().message();
    ASSERT_EQ(jobs->size(), 1u);
    EXPECT_EQ((*jobs)[0].upload_id, "queued");
    // A second node opening it later changes nothing.
    auto b = open_as(url_, "b");
    ASSERT_TRUE(b);
    EXPECT_EQ(raw_.one("SELECT count(*) FROM upload_jobs WHERE node = 'n1'"), "2");
}

// A database version 4 made, with a finished job and its cached set, gains the placeholder
// columns: the old rows read as having none, and new ones record theirs.
TEST_F(PgJobDbTest, AVersionFourDatabaseIsMigratedToFiveKeepingItsImages) {
    raw_.query("SELECT set_config('imgspool.node', 'n1', false)");
    for (const pg::Migration& m : pg::pg_migrations()) {
        if (m.version > 4) break;
        for (const char* sql : m.statements) raw_.query(sql);
    }
    raw_.query("INSERT INTO imgspool_meta (key, value) VALUES ('schema_version', '4')");
    raw_.query(
        "INSERT INTO upload_jobs (id, spool, source_name, profile, status, source_hash, node) "
        "VALUES ('done', 'photos', 'd.jpg', 'web', 'complete', 'h1', 'n1')");
    const std::string outputs = variants_to_json(outputs_for("done"));
    raw_.query("INSERT INTO images (upload_id, urls, outputs) VALUES ('done', '{}', '" + outputs +
               "')");
    raw_.query(
        "INSERT INTO derivative_cache (source_hash, profile_fingerprint, outputs, upload_id) "
        "VALUES ('h1', 'fp', '" +
        outputs + "', 'done')");

    auto db = open_as(url_, "n1");
    ASSERT_TRUE(db);
    EXPECT_EQ(raw_.one("SELECT value FROM imgspool_meta WHERE key = 'schema_version'"), "5");
    auto done = db->find("done");
    ASSERT_TRUE(done.ok() && *done) << (done.ok() ? "no job" : done.error().message());
    EXPECT_EQ((*done)->outputs, outputs_for("done"));
    EXPECT_EQ((*done)->placeholders, Placeholders{});
    auto cached = db->cache_lookup("h1", "fp");
    ASSERT_TRUE(cached.ok() && *cached) << (cached.ok() ? "no row" : cached.error().message());
    EXPECT_EQ((*cached)->outputs, outputs_for("done"));
    EXPECT_EQ((*cached)->placeholders, Placeholders{});

    ASSERT_TRUE(db->insert_job("new", "photos", "n.jpg", "web").ok());
    ASSERT_TRUE(db->start_attempt("new").ok());
    ASSERT_TRUE(db->set_source("new", "h2", 1, 1, 1, "png").ok());
    ASSERT_TRUE(db->complete("new", outputs_for("new"), "fp", false, 1, kPlaceholders).ok());
    EXPECT_EQ(raw_.query("SELECT upload_id, blurhash FROM images ORDER BY upload_id"),
              (Rows{{"done", "NULL"}, {"new", kPlaceholders.blurhash}}));
}

TEST_F(PgJobDbTest, AWrongPasswordIsRefusedAtOpenWithoutShowingIt) {
    const auto facts = pg_test::server_facts();
    const std::string secret = "not-" + facts.password;
    std::string url = url_;
    url.replace(url.find(facts.password), facts.password.size(), secret);
    auto db = pg::PgJobDb::open(pg::DatabaseSettings{url}, 1, "test");
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.error().message().find(secret), std::string::npos) << db.error().message();
    EXPECT_NE(db.error().message().find("password"), std::string::npos) << db.error().message();
}

// A server whose sessions default to SERIALIZABLE makes completes of the same bytes lose races
// (40001): the pool runs them again, and callers see only success.
TEST_F(PgJobDbTest, RacesLostUnderSerializableIsolationAreRunAgain) {
    const std::string name = raw_.one("SELECT quote_ident(current_database())");
    raw_.query("ALTER DATABASE " + name + " SET default_transaction_isolation = 'serializable'");
    auto opened = open();
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    JobDb& db = **opened;
    EXPECT_EQ(RawPostgres(url_).one("SHOW default_transaction_isolation"), "serializable");
    constexpr int kRounds = 20;
    for (int round = 0; round < kRounds; ++round) {
        const std::string hash = "h" + std::to_string(round);
        std::vector<std::string> ids = {"a" + hash, "b" + hash};
        for (const auto& id : ids) {
            ASSERT_TRUE(db.insert_job(id, "photos", id + ".jpg", "web").ok());
            ASSERT_TRUE(db.start_attempt(id).ok());
            ASSERT_TRUE(db.set_source(id, hash, 1, 1, 1, "png").ok());
        }
        std::atomic<bool> go{false};
        std::vector<Status> done(2, ok_status());
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; ++i) {
            threads.emplace_back([&, i] {
                while (!go) std::this_thread::yield();
                done[i] = db.complete(ids[i], outputs_for(ids[i]), "fp");
            });
        }
        go = true;
        for (auto& t : threads) t.join();
        for (int i = 0; i < 2; ++i) ASSERT_TRUE(done[i].ok()) << done[i].error().message();
    }
    EXPECT_EQ(raw_.one("SELECT count(*) FROM derivative_cache"), std::to_string(kRounds));
    EXPECT_EQ(raw_.one("SELECT count(*) FROM upload_jobs WHERE status = 'complete'"),
              std::to_string(2 * kRounds));
}

// Every ```psql block of docs/queries.md runs, in the psql CLI and through libpq, on a database
// PgJobDb wrote holding a bit of everything, and returns rows; those whose answer does not depend
// on the clock give exactly the answer expected for this data.
TEST_F(PgJobDbTest, EveryDocumentedPsqlQueryRunsAndAnswers) {
    auto opened = open();
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    JobDb& db = **opened;
    auto run = [&](const std::string& id, const std::string& hash, const std::string& name) {
        ASSERT_TRUE(db.insert_job(id, "photos", name, "web").ok());
        ASSERT_TRUE(db.start_attempt(id).ok());
        ASSERT_TRUE(db.set_source(id, hash, 1000, 10, 10, "jpeg").ok());
    };
    run("done1", "h1", "photo.jpg");
    ASSERT_TRUE(db.complete("done1", outputs_for("done1"), "fp", false, 1000, kPlaceholders).ok());
    run("done2", "h2", "b.job.json");
    JobRequest manifest;
    manifest.origin = "manifest";
    manifest.tool = "dall-e";
    manifest.user_id = "u1";
    manifest.metadata_json = R"({"prompt":"a lighthouse at dusk"})";
    ASSERT_TRUE(db.set_request("done2", manifest).ok());
    ASSERT_TRUE(db.complete("done2", outputs_for("done2"), "fp", false, 3000).ok());
    run("bad", "h3", "small.jpg");
    ASSERT_TRUE(db.fail("bad", make_error(Stage::validate, "image is 90x90")).ok());
    run("later", "h5", "e.jpg");
    ASSERT_TRUE(db.defer("later", make_transient(Stage::store, "HTTP 503"),
                         std::chrono::system_clock::now() + 1min)
                    .ok());
    ASSERT_TRUE(db.insert_job("stuck", "photos", "d.jpg", "web").ok());
    raw_.query("UPDATE upload_jobs SET created_at = now() - interval '1 hour' WHERE id = 'stuck'");
    ASSERT_TRUE(db.replace_waiting_files({{"photos", "slow.jpg", 3420141, "incomplete JPEG",
                                           "2026-11-30T01:00:00.000Z"}})
                    .ok());
    ASSERT_TRUE(db.register_node(registration("i1")).ok());

    const auto queries = test_support::markdown_blocks(IMGSPOOL_QUERIES_DOC, "psql");
    ASSERT_GE(queries.size(), 10u);
    test::TempDir scratch;
    for (const auto& sql : queries) {
        EXPECT_FALSE(raw_.query(sql).empty()) << "no rows from: " << sql;
        auto cli = psql_cli(url_, scratch.path(), sql);
        EXPECT_EQ(cli.status, 0) << sql << cli.output;
        EXPECT_FALSE(cli.output.empty()) << sql;
    }

    // The answer of the one documented block that contains `fragment`.
    auto answer = [&](const std::string& fragment) {
        auto found = std::find_if(queries.begin(), queries.end(), [&](const std::string& sql) {
            return sql.find(fragment) != std::string::npos;
        });
        EXPECT_TRUE(found != queries.end()) << "no psql block with " << fragment;
        return found == queries.end() ? Rows{} : raw_.query(*found);
    };
    auto by_status = answer("from upload_jobs group by 1");
    std::sort(by_status.begin(), by_status.end());  // group by alone gives no order
    EXPECT_EQ(by_status, (Rows{{"complete", "2"}, {"failed", "1"}, {"pending", "2"}}));
    EXPECT_EQ(answer("from status_counts"), (Rows{{"waiting", "1"},
                                                  {"pending", "2"},
                                                  {"processing", "0"},
                                                  {"complete", "2"},
                                                  {"failed", "1"}}));
    EXPECT_EQ(answer("select error_stage"), (Rows{{"validate", "1"}}));
    EXPECT_EQ(answer("i.blurhash, length(i.lqip)"),
              (Rows{{"done1", "photo.jpg", kPlaceholders.blurhash,
                     std::to_string(kPlaceholders.lqip.size()), kPlaceholders.lqip}}));
    EXPECT_EQ(answer("from cache_hit_rate"), (Rows{{"0", "2", "0.0"}}));
    EXPECT_EQ(
        answer("jsonb_each_text(i.urls)"),
        (Rows{
            {"done2", "b.job.json", "large.webp",
             "https://cdn.example.com/images/done2/large.webp"},
            {"done2", "b.job.json", "small.jpg", "https://cdn.example.com/images/done2/small.jpg"},
            {"done1", "photo.jpg", "large.webp", "https://cdn.example.com/images/done1/large.webp"},
            {"done1", "photo.jpg", "small.jpg",
             "https://cdn.example.com/images/done1/small.jpg"}}));
    EXPECT_EQ(answer("metadata->>'prompt'"),
              (Rows{{"done2", "u1", "dall-e", "a lighthouse at dusk", "complete"}}));
    EXPECT_EQ(answer("order by duration_ms desc"),
              (Rows{{"done2", "b.job.json", "3000", "f"}, {"done1", "photo.jpg", "1000", "f"}}));
    EXPECT_EQ(answer("from jobs_in_flight where age_s > 600").size(), 1u);
    EXPECT_EQ(raw_.query("select id, attempts, last_error from jobs_deferred"),
              (Rows{{"later", "1", "store: HTTP 503"}}));
    EXPECT_EQ(raw_.query("select id, stage, reason from failures_today"),
              (Rows{{"bad", "validate", "image is 90x90"}}));
    EXPECT_EQ(raw_.query("select spool, source_name, size, reason from waiting_files"),
              (Rows{{"photos", "slow.jpg", "3420141", "incomplete JPEG"}}));
    EXPECT_EQ(raw_.query("select sum(completed), sum(failed) from throughput_per_hour"),
              (Rows{{"2", "1"}}));
    auto nodes = answer("from node_status");
    ASSERT_EQ(nodes.size(), 1u);
    ASSERT_EQ(nodes[0].size(), 16u);
    EXPECT_LT(std::stoi(nodes[0][5]), 30) << "heartbeat_age_s";  // the psql runs above take time
    nodes[0].erase(nodes[0].begin() + 5);
    EXPECT_EQ(nodes,
              (Rows{{"test", "h1", "alive", raw_.one("select started_at from nodes"),
                     raw_.one("select heartbeat_at from nodes"), "30", "2",
                     std::to_string(::getpid()), "2", "0", "2", "1", "0.007", "1.2.3", "c0ffee"}}));
}

// docs/queries.md's way in: a password file instead of a password in the URL, and a session
// that reads but cannot write.
TEST_F(PgJobDbTest, PsqlConnectsAsTheQueriesPageSays) {
    ASSERT_TRUE(open().ok());
    const auto facts = pg_test::server_facts();
    const std::string database = url_.substr(url_.rfind('/') + 1);
    test::TempDir scratch;
    const auto passfile = scratch.path() / "pgpass";
    std::ofstream(passfile) << facts.host << ':' << facts.port << ':' << database << ':'
                            << facts.user << ':' << facts.password << '\n';
    std::filesystem::permissions(
        passfile, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    const std::string url_without_password = "postgresql://" + facts.user + "@" + facts.host + ":" +
                                             std::to_string(facts.port) + "/" + database;

    auto count_with = [&](const std::string& file) {
        return shell("PGPASSFILE='" + file + "' " + kReadOnlyPsql + "'" + url_without_password +
                     "' -c 'select count(*) from upload_jobs'");
    };
    auto read = count_with(passfile.string());
    EXPECT_EQ(read.status, 0) << read.output;
    EXPECT_EQ(read.output, "0\n");
    auto refused = count_with("/dev/null");  // the password came from the file
    EXPECT_NE(refused.status, 0) << refused.output;

    auto write = shell(kReadOnlyPsql + ("'" + url_ + "' -c \"delete from upload_jobs\""));
    EXPECT_NE(write.status, 0) << write.output;
    EXPECT_NE(write.output.find("read-only transaction"), std::string::npos) << write.output;
}

// The server goes away mid-use: every call fails with an error that passes (jobs defer, none
// fails), and once it is back the same JobDb works again without being reopened.
class PgServerOutage : public PgJobDbTest {
  protected:
    // Retries `call` until it succeeds; every failure on the way must be transient.
    template <class Call>
    void eventually(Call call, const char* what) {
        const auto deadline = std::chrono::steady_clock::now() + 40s;
        for (;;) {
            auto result = call();
            if (result.ok()) return;
            EXPECT_TRUE(result.error().transient) << what << ": " << result.error().message();
            ASSERT_LT(std::chrono::steady_clock::now(), deadline)
                << what << " never recovered: " << result.error().message();
            std::this_thread::sleep_for(200ms);
        }
    }
};

TEST_F(PgServerOutage, CallsFailTransientlyWhileTheServerIsDownAndWorkAfterwards) {
    auto opened = open();
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    JobDb& db = **opened;
    std::atomic<int> recovered{0};
    (*opened)->on_recovered([&] { ++recovered; });
    ASSERT_TRUE(db.insert_job("before", "photos", "a.jpg", "web").ok());
    ASSERT_TRUE(db.start_attempt("before").ok());

    pg_test::stop_server();
    for (int i = 0; i < 3; ++i) {
        auto st = db.set_progress("before", 10 + i);
        ASSERT_FALSE(st.ok());
        EXPECT_TRUE(st.error().transient) << st.error().message();
        EXPECT_EQ(st.error().stage, Stage::commit);
        auto found = db.find("before");
        ASSERT_FALSE(found.ok());
        EXPECT_TRUE(found.error().transient) << found.error().message();
        auto flight = db.jobs_in_flight();
        ASSERT_FALSE(flight.ok());
        EXPECT_TRUE(flight.error().transient) << flight.error().message();
        auto done = db.complete("before", outputs_for("before"), "");
        ASSERT_FALSE(done.ok());
        EXPECT_TRUE(done.error().transient) << done.error().message();
        EXPECT_EQ(done.error().reason.find("password"), std::string::npos);
    }
    pg_test::start_server();

    eventually([&] { return db.set_source("before", "h1", 1, 2, 3, "png"); }, "set_source");
    eventually([&] { return db.complete("before", outputs_for("before"), "fp"); }, "complete");
    auto job = db.find("before");
    ASSERT_TRUE(job.ok()) << job.error().message();
    ASSERT_TRUE(job->has_value());
    EXPECT_EQ((*job)->status, "complete");
    EXPECT_EQ((*job)->outputs, outputs_for("before"));
    EXPECT_EQ(recovered, 1);
    EXPECT_GE((*opened)->reconnects(), 1u);
}

TEST_F(PgServerOutage, ARestartBetweenCallsIsTransientAndPasses) {
    auto opened = open();
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    JobDb& db = **opened;
    for (int round = 0; round < 2; ++round) {
        const std::string id = "r" + std::to_string(round);
        ASSERT_TRUE(db.insert_job(id, "photos", id + ".jpg", "web").ok());
        pg_test::restart_server();  // every pooled session is gone
        eventually([&] { return db.start_attempt(id); }, "start_attempt");
        eventually([&] { return db.counts_by_status(); }, "counts_by_status");
    }
    auto jobs = db.unfinished();
    ASSERT_TRUE(jobs.ok()) << jobs.error().message();
    ASSERT_EQ(jobs->size(), 2u);
    EXPECT_EQ((*jobs)[0].attempts, 1);
    EXPECT_EQ((*jobs)[1].attempts, 1);
}

}  // namespace
}  // namespace imgspool
