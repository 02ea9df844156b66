// Faults an operator meets, against the real daemon: the database held (by the sqlite3 CLI, or
// on PostgreSQL by a transaction holding an exclusive lock on the job tables), full
// disks (real tmpfs mounts) under the state, the store and the spool, and a file whose
// processing keeps killing the daemon. Nothing may be lost, nothing may need a person.
#include <sys/mount.h>
#include <sys/stat.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

// The job record held by another program until release() (or destruction).
class DatabaseHold {
  public:
    virtual ~DatabaseHold() = default;
    virtual bool holding() const = 0;
    virtual void release() = 0;
};

// The sqlite3 CLI holding `BEGIN EXCLUSIVE` on the database until release().
class SqliteCliLock final : public DatabaseHold {
  public:
    explicit SqliteCliLock(const stdfs::path& db) {
        cli_ = ::popen(("sqlite3 '" + db.string() + "'").c_str(), "w");
        if (!cli_) return;
        std::fputs("BEGIN EXCLUSIVE;\n", cli_);
        std::fflush(cli_);
        // Held once another connection cannot even read.
        SpoolFixture::wait_for([&] { return !can_read(db); }, 10s);
    }
    ~SqliteCliLock() override { release(); }
    SqliteCliLock(const SqliteCliLock&) = delete;
    SqliteCliLock& operator=(const SqliteCliLock&) = delete;

    bool holding() const override { return cli_ != nullptr; }
    void release() override {
        if (!cli_) return;
        std::fputs("COMMIT;\n.quit\n", cli_);
        ::pclose(cli_);
        cli_ = nullptr;
    }

    static bool can_read(const stdfs::path& db) {
        sqlite3* raw = nullptr;
        bool ok = sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK &&
                  sqlite3_exec(raw, "SELECT count(*) FROM upload_jobs", nullptr, nullptr,
                               nullptr) == SQLITE_OK;
        sqlite3_close(raw);
        return ok;
    }

  private:
    std::FILE* cli_ = nullptr;
};

// PostgreSQL's nearest equal, as an operator's psql session would hold it: an open transaction
// with ACCESS EXCLUSIVE locks on the job tables, so the daemon's reads and writes wait on it.
class PgTableLock final : public DatabaseHold {
  public:
    explicit PgTableLock(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
        if (PQstatus(conn_.get()) != CONNECTION_OK) return;
        PGresult* res = PQexec(conn_.get(),
                               "BEGIN; LOCK TABLE upload_jobs, images, derivative_cache "
                               "IN ACCESS EXCLUSIVE MODE");
        held_ = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
    }
    ~PgTableLock() override { release(); }
    PgTableLock(const PgTableLock&) = delete;
    PgTableLock& operator=(const PgTableLock&) = delete;

    bool holding() const override { return held_; }
    void release() override {
        held_ = false;
        conn_.reset();  // the session ends, and with it the transaction and its locks
    }

  private:
    struct Closer {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    std::unique_ptr<PGconn, Closer> conn_;
    bool held_ = false;
};

std::unique_ptr<DatabaseHold> hold_database(SpoolFixture& fixture) {
    if (fixture.on_postgres()) return std::make_unique<PgTableLock>(fixture.database_url());
    return std::make_unique<SqliteCliLock>(fixture.db_path());
}

// A small tmpfs mounted on a folder for the test's lifetime (needs root); fill() takes every
// free byte with a filler file, free_space() removes it.
class SmallDisk {
  public:
    SmallDisk(const stdfs::path& dir, const std::string& size) : dir_(dir) {
        stdfs::create_directories(dir);
        mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    }
    ~SmallDisk() {
        if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    }
    SmallDisk(const SmallDisk&) = delete;
    SmallDisk& operator=(const SmallDisk&) = delete;

    bool mounted() const { return mounted_; }
    void fill() {
        std::FILE* f = std::fopen(filler().c_str(), "wb");
        if (!f) return;
        const std::string block(64 * 1024, 'f');
        while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
        }
        std::fclose(f);
        // Whatever a partial block left: one byte at a time.
        std::FILE* g = std::fopen(filler2().c_str(), "wb");
        if (g) {
            while (std::fputc('f', g) != EOF && std::fflush(g) == 0) {
            }
            std::fclose(g);
        }
    }
    void free_space() {
        std::error_code ec;
        stdfs::remove(filler(), ec);
        stdfs::remove(filler2(), ec);
    }

  private:
    stdfs::path filler() const { return dir_ / ".filler"; }
    stdfs::path filler2() const { return dir_ / ".filler2"; }
    stdfs::path dir_;
    bool mounted_ = false;
};

class FaultsIt : public SpoolFixture {
  protected:
    void TearDown() override {
        disk_.reset();  // unmounted before the fixture removes the tree
        SpoolFixture::TearDown();
    }

    // Quick retries so a test sees a deferred job come back within seconds.
    static DaemonConfig quick_retries() {
        DaemonConfig c;
        c.daemon = {{"retry_min_s", "1"}, {"retry_max_s", "2"}};
        return c;
    }

    std::vector<std::string> drop_photos(const std::string& prefix, int n, unsigned seed,
                                         int width = 480, int height = 360) {
        std::vector<std::string> names;
        for (int i = 0; i < n; ++i) {
            names.push_back(prefix + std::to_string(i) + ".jpg");
            write_file(inbox() / names.back(),
                       make_jpeg({.width = width, .height = height, .seed = seed + i}));
        }
        return names;
    }

    // Every name complete in done/, nothing in failed/ or work/, no job failed.
    void expect_all_complete(const std::vector<std::string>& names) {
        for (const std::string& name : names) {
            EXPECT_TRUE(wait_complete(name, 90s).has_value()) << name << " not complete";
        }
        EXPECT_TRUE(files_under(failed()).empty()) << tree();
        EXPECT_TRUE(wait_for([&] { return files_under(work()).empty(); }, 10s)) << tree();
        EXPECT_TRUE(query("SELECT id FROM upload_jobs WHERE status = 'failed'").empty());
        EXPECT_TRUE(daemon_running());
    }

    void mount_small_disk(const stdfs::path& dir, const std::string& size) {
        disk_ = std::make_unique<SmallDisk>(dir, size);
        if (!disk_->mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
    }

    std::unique_ptr<SmallDisk> disk_;
};

TEST_F(FaultsIt, FilesDroppedWhileAnotherProgramHoldsTheDatabaseAllComplete) {
    write_config(quick_retries());
    start_daemon();
    wait_until_watching();
    const auto held = hold_database(*this);
    DatabaseHold& lock = *held;
    ASSERT_TRUE(lock.holding());
    const auto names = drop_photos("held-", 20, 100);
    std::this_thread::sleep_for(20s);
    // Nothing was claimed that could not be recorded: the files wait in inbox/.
    EXPECT_TRUE(files_under(failed()).empty()) << tree();
    lock.release();
    expect_all_complete(names);
    EXPECT_TRUE(query("SELECT id FROM upload_jobs WHERE error LIKE '%vanished%'").empty());
}

TEST_F(FaultsIt, ALockTakenMidJobDefersTheJobsWhichThenComplete) {
    write_config(quick_retries());
    start_daemon();
    wait_until_watching();
    const auto names = drop_photos("mid-", 8, 200, 2400, 1800);
    ASSERT_TRUE(wait_for(
        [&] { return !query("SELECT id FROM upload_jobs WHERE status = 'processing'").empty(); }));
    {
        const auto lock = hold_database(*this);
        ASSERT_TRUE(lock->holding());
        std::this_thread::sleep_for(20s);
    }
    expect_all_complete(names);
    EXPECT_TRUE(query("SELECT id FROM upload_jobs WHERE status = 'processing'").empty());
}

TEST_F(FaultsIt, AFullStoreDefersJobsWithTheReasonAndTheyCompleteOnceSpaceIsFreed) {
    mount_small_disk(objects(), "2m");
    if (IsSkipped()) return;
    write_config(quick_retries());
    start_daemon();
    wait_until_watching();
    disk_->fill();
    const auto names = drop_photos("full-store-", 4, 300);
    ASSERT_TRUE(wait_for([&] {
        return query("SELECT id FROM upload_jobs WHERE last_error LIKE '%No space left%'").size() >=
               1;
    })) << tree();
    EXPECT_TRUE(files_under(failed()).empty());
    // Nothing partial under a final key: only whole objects or none (tmp files cleaned).
    for (const std::string& f : files_under(objects())) {
        EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;
    }
    disk_->free_space();
    expect_all_complete(names);
}

TEST_F(FaultsIt, AFullStateFolderKeepsFilesInTheInboxUntilSpaceIsFreed) {
    if (on_postgres()) GTEST_SKIP() << "the job record is not in the state folder on PostgreSQL";
    mount_small_disk(state_dir(), "4m");
    if (IsSkipped()) return;
    write_config(quick_retries());
    start_daemon();
    wait_until_watching();
    disk_->fill();
    const auto names = drop_photos("full-state-", 4, 400);
    std::this_thread::sleep_for(4s);
    EXPECT_TRUE(files_under(failed()).empty()) << tree();
    EXPECT_TRUE(files_under(work()).empty()) << "claimed without a row\n" << tree();
    disk_->free_space();
    expect_all_complete(names);
}

TEST_F(FaultsIt, AFullSpoolDiskLeavesNothingPartialAndEverythingCompletesAfterwards) {
    mount_small_disk(spool_root(), "16m");
    if (IsSkipped()) return;
    write_config(quick_retries());
    start_daemon();
    wait_until_watching();
    const auto names = drop_photos("full-spool-", 4, 500);
    disk_->fill();
    std::this_thread::sleep_for(4s);
    for (const std::string& f : files_under(failed())) {
        EXPECT_GT(stdfs::file_size(failed() / f), 0u) << "an empty file in failed/: " << f;
    }
    disk_->free_space();
    expect_all_complete(names);
}

TEST_F(FaultsIt, AFileThatKeepsKillingTheDaemonEndsInFailedAndOthersComplete) {
    DaemonConfig c = quick_retries();
    c.limits = {{"max_bytes", 64ll * 1024 * 1024}};
    write_config(c);
    start_daemon();
    wait_until_watching();
    write_file(inbox() / "poison.jpg", make_jpeg({.width = 5000, .height = 4000, .seed = 666}));
    std::vector<std::string> others;
    for (int kill = 1; kill <= 3; ++kill) {
        // The daemon dies as soon as this run of the job has started.
        ASSERT_TRUE(wait_for(
            [&] {
                return !query(
                            "SELECT id FROM upload_jobs WHERE source_name = 'poison.jpg' AND "
                            "status = 'processing' AND attempts = ?1",
                            {std::to_string(kill)})
                            .empty();
            },
            60s))
            << "run " << kill << " of the poison job did not start";
        kill_daemon();
        const auto more =
            drop_photos("meanwhile-" + std::to_string(kill) + "-", 2, 700 + kill * 10);
        others.insert(others.end(), more.begin(), more.end());
        start_daemon();
    }
    const auto job = wait_failed("poison.jpg", 60s);
    ASSERT_TRUE(job.has_value()) << tree();
    EXPECT_NE(job->at("error").find("processing this file stopped the daemon 3 times"),
              std::string::npos)
        << job->at("error");
    EXPECT_EQ(job->at("crashes"), "3");
    const nlohmann::json note = read_json(failed() / "poison.jpg.error.json");
    EXPECT_NE(note.at("error").get<std::string>().find("stopped the daemon"), std::string::npos);
    for (const std::string& name : others) {
        EXPECT_TRUE(wait_complete(name, 60s).has_value()) << name;
    }
    EXPECT_TRUE(daemon_running());
}

}  // namespace
}  // namespace imgspool::it
