// A test fixture that owns a temp folder with one spool, a config file, the state folder and a
// local object store, and starts the real daemon on it. The daemon is killed in TearDown no
// matter what; on failure its log and the folder tree are printed.
//
// The job record is SQLite under state_dir() unless IMGSPOOL_TEST_DATABASE=postgres: then each
// test gets a fresh database on the pg_server fixture's server, the
// config names it in [database] url, and query() runs the same SQL there through libpq.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/daemon_process.hpp"

namespace imgspool::it {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

struct DaemonConfig {
    int workers = 2;
    int settle_ms = 300;
    int rescan_s = 1;
    int queue_max = 64;
    std::string profile = "web";
    // [limits]; unset keys keep the daemon's defaults.
    std::map<std::string, long long> limits{};
    std::string extra_toml{};  // appended verbatim (e.g. a bad key)
    // More [daemon] keys, e.g. {"abandon_after_s", "3"}; values are TOML, written verbatim.
    std::map<std::string, std::string> daemon{};
    // The [store] table's body; empty: the local store under objects() with kCdn as base URL.
    std::string store_toml{};
};

using Row = std::map<std::string, std::string>;  // column -> text (NULL as "")

// The public base URL every test config uses.
inline constexpr const char* kCdn = "https://cdn.example.test";

class SpoolFixture : public ::testing::Test {
  public:
    // Paths inside the temp folder.
    const stdfs::path& root() const { return root_; }
    stdfs::path spool_root() const { return root_ / "spool"; }
    stdfs::path inbox() const { return spool_root() / "inbox"; }
    stdfs::path work() const { return spool_root() / "work"; }
    stdfs::path done() const { return spool_root() / "done"; }
    stdfs::path failed() const { return spool_root() / "failed"; }
    stdfs::path state_dir() const { return root_ / "state"; }
    stdfs::path db_path() const { return state_dir() / "imgspool.db"; }
    stdfs::path objects() const { return root_ / "objects"; }
    stdfs::path config_path() const { return root_ / "imgspool.toml"; }
    stdfs::path outside() const { return root_ / "outside"; }  // same file system, not a spool
    stdfs::path log_path() const { return root_ / "daemon.log"; }

    // Writes the config file (called with defaults by SetUp).
    void write_config(const DaemonConfig& config);
    std::string config_text(const DaemonConfig& config) const;

    // The daemon (`imgspool run`); its stdout and stderr go to daemon.log (appended across
    // restarts, each start marked).
    void start_daemon();
    // "NAME=VALUE" entries the next start_daemon() sets in the daemon's environment (config
    // overrides such as S3_* are otherwise removed from it, see ChildProcess).
    void set_daemon_env(std::vector<std::string> env) { daemon_env_ = std::move(env); }
    ChildProcess& daemon() { return *daemon_; }
    bool daemon_running() { return daemon_ && daemon_->running(); }
    void kill_daemon();  // SIGKILL and reap
    // Drops a probe image and waits until it is done: the watcher is then surely active.
    void wait_until_watching(const std::string& probe_name = "probe.jpg");

    // Polls `done` every 50 ms until it is true or `timeout` passes.
    static bool wait_for(const std::function<bool()>& done,
                         std::chrono::milliseconds timeout = 30s);

    // Regular files, symlinks and FIFOs under dir, as paths relative to dir (sorted).
    static std::vector<std::string> files_under(const stdfs::path& dir);

    // Whether this run keeps the job record on PostgreSQL (IMGSPOOL_TEST_DATABASE=postgres).
    bool on_postgres() const { return !database_url_.empty(); }
    // The test's database URL on PostgreSQL; "" on SQLite.
    const std::string& database_url() const { return database_url_; }

    // Read-only queries against the daemon's database (empty when it does not exist yet).
    // Parameters are written ?1, ?2 (run as $1, $2 on PostgreSQL); answers read the same on both
    // backends: booleans "0"/"1", timestamps as the ISO text SQLite stores, JSON compact.
    std::vector<Row> query(const std::string& sql, const std::vector<std::string>& params = {});
    std::vector<Row> jobs_for(const std::string& source_name);
    std::optional<Row> job(const std::string& upload_id);
    // The only job of source_name whose status is complete or failed, once there is one.
    std::optional<Row> finished_job(const std::string& source_name);

    // Waits until done/<name> exists and a complete job for it is recorded; returns the job.
    std::optional<Row> wait_complete(const std::string& relative,
                                     std::chrono::milliseconds t = 30s);
    // Waits until failed/<name> and failed/<name>.error.json exist and the job is failed.
    std::optional<Row> wait_failed(const std::string& relative, std::chrono::milliseconds t = 30s);

    std::string daemon_log() const;
    std::string tree() const;  // listing of the temp folder, for failure messages

  protected:
    void SetUp() override;
    void TearDown() override;

  private:
    stdfs::path root_;
    std::unique_ptr<ChildProcess> daemon_;
    std::vector<std::string> daemon_env_;
    int starts_ = 0;
    std::string database_url_;  // "" = SQLite
};

// Runs sql (parameters ?1, ?2) on a PostgreSQL database, answering as SpoolFixture::query()
// does. Empty while the server does not answer or the schema is not created yet (the caller
// polls); any other error is a test failure.
std::vector<Row> pg_rows(const std::string& url, const std::string& sql,
                         const std::vector<std::string>& params = {});

// Writes a file by open/write/close (a "copy" into the spool); throws on failure.
void write_file(const stdfs::path& path, const std::string& bytes);
// Reads a whole file; throws when it cannot be opened.
std::string read_file(const stdfs::path& path);

// Each non-empty line of text parsed as JSON (throws on a line that is not).
std::vector<nlohmann::json> json_lines(const std::string& text);

// Parses a JSON file (throws on bad JSON).
nlohmann::json read_json(const stdfs::path& path);

// Lower-cases and checks whether text contains any of the needles (each lower-case).
bool contains_any(const std::string& text, const std::vector<std::string>& needles);

// SHA-256 of bytes as lower-case hex.
std::string sha256_hex(const std::string& bytes);

}  // namespace imgspool::it
