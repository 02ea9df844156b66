// End to end: the real `imgspool` binary after real jobs, seen the way an operator sees it —
// /metrics scraped over HTTP and parsed by promtool, /healthz and /readyz, the JSON log lines on
// stderr, every documented sqlite3 query run with the sqlite3 CLI against the database the
// daemon wrote, `imgspool status [--json]`, and `imgspool process` off and on a terminal.
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vips/vips.h>
#include "tests/common/markdown_sql.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/loopback.hpp"
#include "tests/metrics/exposition.hpp"

extern char** environ;

namespace imgspool {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using it::free_port;
using it::http_get;
using it::HttpReply;
using nlohmann::json;

constexpr const char* kSecret = "SECRETVALUE123";
constexpr const char* kAccessKey = "AKIDNOTFORLOGS42";
constexpr const char* kSessionToken = "SESSIONTOKEN789";
constexpr const char* kNode = "obs";  // [daemon] node of every config here

// A series of the daemon's exposition, given as name or name{labels}: every one carries the
// node first, so a series without it is absent (NaN).
double node_sample(const std::string& text, const std::string& series) {
    const std::string node = std::string("node=\"") + kNode + "\"";
    const auto brace = series.find('{');
    return testing::sample_value(
        text, brace == std::string::npos
                  ? series + "{" + node + "}"
                  : series.substr(0, brace + 1) + node + "," + series.substr(brace + 1));
}

// --- small tools ---------------------------------------------------------------------------

class TempDir {
  public:
    TempDir() {
        char name[] = "/tmp/imgspool-obs-XXXXXX";
        if (!::mkdtemp(name)) throw std::runtime_error("mkdtemp failed");
        path_ = name;
    }
    ~TempDir() {
        std::error_code ec;
        stdfs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const stdfs::path& path() const { return path_; }

  private:
    stdfs::path path_;
};

std::string read_text(const stdfs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_text(const stdfs::path& file, const std::string& text) {
    std::ofstream(file, std::ios::binary) << text;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) lines.push_back(line);
    }
    return lines;
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return done();
}

// The test's environment without anything that changes imgspool's config, plus `extra`.
std::vector<std::string> child_env(const std::map<std::string, std::string>& extra) {
    static const char* const kScrubbed[] = {"S3_",      "AWS_",     "CDN_URL", "ENABLE_METRICS",
                                            "METRICS_", "LOG_LEVEL"};
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string var(*e);
        bool keep = true;
        for (const char* prefix : kScrubbed) keep = keep && var.rfind(prefix, 0) != 0;
        if (keep) env.push_back(var);
    }
    for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
    return env;
}

// One child process of the imgspool binary; killed and reaped if the test ends early.
class Child {
  public:
    // stdin from /dev/null, stdout and stderr into the given files.
    Child(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
          const stdfs::path& out, const stdfs::path& err) {
        std::vector<std::string> argv_s{IMGSPOOL_BINARY};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        const std::vector<std::string> env_s = child_env(env);
        std::vector<char*> argv, envp;
        for (const auto& a : argv_s) argv.push_back(const_cast<char*>(a.c_str()));
        for (const auto& e : env_s) envp.push_back(const_cast<char*>(e.c_str()));
        argv.push_back(nullptr);
        envp.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        const int rc =
            posix_spawn(&pid_, IMGSPOOL_BINARY, &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) throw std::runtime_error("cannot start " IMGSPOOL_BINARY);
    }
    ~Child() {
        if (!exit_code_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    bool running() { return !poll_exit(); }
    void signal(int sig) { ::kill(pid_, sig); }

    // The exit code (-1 for a signal), or nullopt if still running after `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout) {
        wait_until([this] { return poll_exit().has_value(); }, timeout);
        return exit_code_;
    }

  private:
    std::optional<int> poll_exit() {
        if (exit_code_) return exit_code_;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        return exit_code_;
    }

    pid_t pid_ = -1;
    std::optional<int> exit_code_;
};

struct Output {
    int code = -1;
    std::string out;
    std::string err;
};

// A one-shot imgspool command, to its end (at most 30 s).
Output run_imgspool(const std::vector<std::string>& args, const stdfs::path& scratch,
                    const std::map<std::string, std::string>& env = {}) {
    const stdfs::path out = scratch / "cmd.out", err = scratch / "cmd.err";
    Output r;
    {
        Child child(args, env, out, err);
        r.code = child.wait(30s).value_or(-2);
    }
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
}

// A shell command's exit code and its stdout+stderr (for sqlite3 and promtool).
Output shell(const std::string& command) {
    Output r;
    if (FILE* p = ::popen((command + " 2>&1").c_str(), "r")) {
        char buf[4096];
        while (size_t n = std::fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
        const int raw = ::pclose(p);
        r.code = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    }
    return r;
}

// A distinct image encoded by libvips: a flat colour (shade) of w x h, format by suffix.
std::string make_image(int width, int height, int shade, const char* suffix) {
    using Image = std::unique_ptr<VipsImage, decltype(&g_object_unref)>;
    VipsImage* raw = nullptr;
    if (vips_black(&raw, width, height, "bands", 3, nullptr) != 0) return {};
    Image black(raw, &g_object_unref);
    if (vips_linear1(black.get(), &raw, 1.0, static_cast<double>(shade), nullptr) != 0) return {};
    Image lit(raw, &g_object_unref);
    if (vips_cast_uchar(lit.get(), &raw, nullptr) != 0) return {};
    Image pixels(raw, &g_object_unref);
    void* buffer = nullptr;
    size_t length = 0;
    if (vips_image_write_to_buffer(pixels.get(), suffix, &buffer, &length, nullptr) != 0) {
        return {};
    }
    std::string bytes(static_cast<const char*>(buffer), length);
    g_free(buffer);
    return bytes;
}

// A JPEG of noise cut in half: its header is fine, its scan data ends early.
std::string truncated_jpeg() {
    VipsImage* raw = nullptr;
    if (vips_gaussnoise(&raw, 400, 300, nullptr) != 0) return {};
    std::unique_ptr<VipsImage, decltype(&g_object_unref)> noise(raw, &g_object_unref);
    void* buffer = nullptr;
    size_t length = 0;
    if (vips_image_write_to_buffer(noise.get(), ".jpg", &buffer, &length, nullptr) != 0) return {};
    std::string bytes(static_cast<const char*>(buffer), length / 2);
    g_free(buffer);
    return bytes;
}

// Drops a file the way an uploader should: written beside, then renamed into inbox/.
void drop(const stdfs::path& inbox, const std::string& name, const std::string& bytes) {
    const stdfs::path part = inbox / (name + ".part");
    write_text(part, bytes);
    stdfs::rename(part, inbox / name);
}

std::size_t count_files(const stdfs::path& dir, const std::string& suffix = "") {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : stdfs::recursive_directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file() && (suffix.empty() || name.ends_with(suffix))) ++n;
    }
    return n;
}

// The ```sql blocks of docs/queries.md.
std::vector<std::string> documented_queries() {
    return test_support::markdown_sql_blocks(IMGSPOOL_QUERIES_DOC);
}

// The plain sqlite3 CLI, read-only, default list mode ("a|b" per row).
Output sqlite3_cli(const stdfs::path& db, const std::string& sql) {
    const stdfs::path script = db.parent_path() / "query.sql";
    write_text(script, sql);
    return shell("sqlite3 -bail -batch -readonly '" + db.string() + "' < '" + script.string() +
                 "'");
}

std::vector<std::string> sql_rows(const stdfs::path& db, const std::string& sql) {
    const Output r = sqlite3_cli(db, sql);
    EXPECT_EQ(r.code, 0) << sql << r.out;
    return lines_of(r.out);
}

// `promtool check metrics` on an exposition: exit code and what it said.
Output promtool_check(const stdfs::path& scratch, const std::string& text) {
    const stdfs::path file = scratch / "metrics.txt";
    write_text(file, text);
    return shell(std::string(PROMTOOL_PATH) + " check metrics < '" + file.string() + "'");
}

// Each stderr line as JSON. Lines that are not JSON objects go to `plain` (when given); more
// than `allowed_plain` of them is a test failure.
std::vector<json> json_log_lines(const std::string& text, std::size_t allowed_plain = 0,
                                 std::vector<std::string>* plain = nullptr) {
    std::vector<json> out;
    std::vector<std::string> others;
    for (const std::string& line : lines_of(text)) {
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            others.push_back(line);
            continue;
        }
        out.push_back(std::move(j));
    }
    EXPECT_LE(others.size(), allowed_plain) << "stderr lines that are not JSON objects in:\n"
                                            << text;
    if (plain) *plain = std::move(others);
    return out;
}

// ts / level / msg on every line; upload_id, spool and source on every line about a job.
void expect_log_shape(const std::vector<json>& lines) {
    static const std::regex kTs(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    static const std::set<std::string> kLevels{"debug", "info", "warn", "error"};
    for (const json& l : lines) {
        ASSERT_TRUE(l.contains("ts") && l["ts"].is_string()) << l.dump();
        EXPECT_TRUE(std::regex_match(l["ts"].get<std::string>(), kTs)) << l.dump();
        ASSERT_TRUE(l.contains("level") && l["level"].is_string()) << l.dump();
        EXPECT_TRUE(kLevels.count(l["level"].get<std::string>())) << l.dump();
        ASSERT_TRUE(l.contains("msg") && l["msg"].is_string()) << l.dump();
        const std::string msg = l["msg"];
        const bool about_job = l.contains("upload_id") || msg.rfind("job ", 0) == 0 ||
                               msg == "claimed" || msg == "resuming job";
        if (about_job) {
            for (const char* key : {"upload_id", "spool", "source"}) {
                EXPECT_TRUE(l.contains(key) && l[key].is_string() &&
                            !l[key].get<std::string>().empty())
                    << key << " missing in " << l.dump();
            }
        }
    }
}

std::vector<json> with_msg(const std::vector<json>& lines, const std::string& msg) {
    std::vector<json> out;
    for (const json& l : lines) {
        if (l.value("msg", "") == msg) out.push_back(l);
    }
    return out;
}

class DaemonObservabilityTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ASSERT_EQ(VIPS_INIT("daemon_observability_it_test"), 0);
        curl_global_init(CURL_GLOBAL_DEFAULT);
    }

    // A config with one spool "photos", the web profile, a local store and metrics off in the
    // file (the environment switches them on); `store` replaces the [store] table.
    stdfs::path write_config(const std::string& store = "") {
        const stdfs::path root = tmp_.path();
        std::ostringstream toml;
        toml << "[daemon]\nnode = \"" << kNode << "\"\nstate_dir = \"" << (root / "state").string()
             << "\"\n"
             << "workers = 2\nsettle_ms = 300\nrescan_s = 30\n\n"
             << "[[spool]]\nname = \"photos\"\nroot = \"" << (root / "spool").string() << "\"\n"
             << "profile = \"web\"\n\n"
             << (store.empty()
                     ? "[store]\nkind = \"local\"\npath = \"" + (root / "objects").string() + "\"\n"
                     : store)
             << "\n[metrics]\nenabled = false\nbind = \"127.0.0.1\"\nport = 9091\n";
        const stdfs::path file = root / "imgspool.toml";
        write_text(file, toml.str());
        return file;
    }

    stdfs::path spool(const char* sub) const { return tmp_.path() / "spool" / sub; }
    stdfs::path db() const { return tmp_.path() / "state/imgspool.db"; }

    TempDir tmp_;
};

// The daemon after 4 good images, one duplicate and two bad files.
TEST_F(DaemonObservabilityTest, AfterRealJobsMetricsLogsDatabaseAndStatusAgree) {
    const stdfs::path config = write_config();
    const int port = free_port();
    ASSERT_GT(port, 0);
    const std::map<std::string, std::string> env{
        {"ENABLE_METRICS", "true"},          {"METRICS_PORT", std::to_string(port)},
        {"METRICS_BIND", "127.0.0.1"},       {"LOG_LEVEL", "debug"},
        {"AWS_ACCESS_KEY_ID", kAccessKey},   {"AWS_SECRET_ACCESS_KEY", kSecret},
        {"AWS_SESSION_TOKEN", kSessionToken}};
    const stdfs::path err_log = tmp_.path() / "daemon.err";
    Child daemon({"run", "-c", config.string()}, env, tmp_.path() / "daemon.out", err_log);

    // Healthy at once, ready once the watchers are armed.
    ASSERT_TRUE(wait_until([&] { return http_get(port, "/healthz").status == 200; }, 10s))
        << read_text(err_log);
    ASSERT_TRUE(wait_until([&] { return http_get(port, "/readyz").status == 200; }, 10s))
        << http_get(port, "/readyz").body;
    EXPECT_EQ(http_get(port, "/readyz").body.substr(0, 5), "ready");
    const std::string before = http_get(port, "/metrics").body;
    ASSERT_FALSE(before.empty());
    EXPECT_EQ(node_sample(before, "generation_success_total"), 0);

    // Four distinct good images (2 JPEG, 2 PNG); the first is photo.jpg.
    std::map<std::string, std::string> good{{"photo.jpg", make_image(320, 240, 40, ".jpg")},
                                            {"beach.jpg", make_image(640, 480, 90, ".jpg")},
                                            {"logo.png", make_image(300, 300, 140, ".png")},
                                            {"sub/chart.png", make_image(500, 200, 200, ".png")}};
    stdfs::create_directories(spool("inbox") / "sub");
    for (const auto& [name, bytes] : good) {
        ASSERT_FALSE(bytes.empty()) << name;
        drop(spool("inbox"), name, bytes);
    }
    // The duplicate comes once the first ones are committed, so it must hit the cache.
    ASSERT_TRUE(wait_until([&] { return count_files(spool("done")) == 4; }, 20s))
        << read_text(err_log);
    const std::string too_small = make_image(50, 40, 10, ".jpg");
    const std::string not_an_image = "this is a text file, not a picture\n";
    drop(spool("inbox"), "photo-again.jpg", good["photo.jpg"]);
    drop(spool("inbox"), "tiny.jpg", too_small);
    drop(spool("inbox"), "notes.jpg", not_an_image);
    // Done when the metrics have seen all seven jobs (the files move just before that).
    std::string after;
    ASSERT_TRUE(wait_until(
        [&] {
            after = http_get(port, "/metrics").body;
            // The imgspool_jobs gauges follow the database within one background check (5 s).
            return node_sample(after, "generation_success_total") +
                           node_sample(after, "generation_failure_total{reason=\"validate\"}") ==
                       7 &&
                   node_sample(after, "imgspool_jobs{state=\"complete\"}") +
                           node_sample(after, "imgspool_jobs{state=\"failed\"}") ==
                       7;
        },
        30s))
        << after << read_text(err_log);
    EXPECT_EQ(count_files(spool("done")), 5u);
    EXPECT_EQ(count_files(spool("failed"), ".error.json"), 2u);
    EXPECT_EQ(count_files(spool("failed")), 4u);  // two originals, two notes

    // The counters moved by exactly what happened.
    auto moved = [&](const std::string& series) {
        const double b = node_sample(before, series);
        return node_sample(after, series) - (std::isnan(b) ? 0.0 : b);
    };
    EXPECT_EQ(moved("generation_success_total"), 5);
    EXPECT_EQ(moved("generation_failure_total{reason=\"validate\"}"), 2);
    for (const char* reason : {"claim", "hash", "cache", "render", "store", "commit", "move"}) {
        EXPECT_EQ(moved("generation_failure_total{reason=\"" + std::string(reason) + "\"}"), 0)
            << reason;
    }
    EXPECT_EQ(moved("imgspool_cache_hits_total"), 1);
    EXPECT_EQ(moved("imgspool_cache_misses_total"), 4);  // bad files fail before the lookup
    EXPECT_EQ(moved("imgspool_failed_files_total"), 2);
    EXPECT_EQ(moved("image_processing_duration_seconds_count{tool=\"web\",success=\"true\"}"), 5);
    EXPECT_EQ(moved("image_processing_duration_seconds_count{tool=\"web\",success=\"false\"}"), 2);
    EXPECT_EQ(moved("image_compression_ratio_count{tool=\"web\"}"), 4);  // rendered, not hits
    // JPEG and PNG sources: small/medium/large in the source format and WebP, original once.
    for (const char* variant : {"small", "medium", "large"}) {
        EXPECT_EQ(moved("image_compressed_size_bytes_count{tool=\"web\",variant=\"" +
                        std::string(variant) + "\"}"),
                  8)
            << variant;
    }
    EXPECT_EQ(moved("image_compressed_size_bytes_count{tool=\"web\",variant=\"original\"}"), 4);
    // Every file read is observed, bad ones included, with its exact size.
    double dropped_bytes =
        static_cast<double>(good["photo.jpg"].size() + too_small.size() + not_an_image.size());
    for (const auto& [name, bytes] : good) dropped_bytes += static_cast<double>(bytes.size());
    EXPECT_EQ(moved("image_original_size_bytes_count{tool=\"web\"}"), 7);
    EXPECT_EQ(moved("image_original_size_bytes_sum{tool=\"web\"}"), dropped_bytes);
    // Sampled from the database (by the background check), the queue and the watcher.
    EXPECT_EQ(node_sample(after, "imgspool_jobs{state=\"complete\"}"), 5);
    EXPECT_EQ(node_sample(after, "imgspool_jobs{state=\"failed\"}"), 2);
    EXPECT_EQ(node_sample(after, "imgspool_jobs{state=\"pending\"}"), 0);
    EXPECT_EQ(node_sample(after, "imgspool_jobs{state=\"processing\"}"), 0);
    EXPECT_EQ(node_sample(after, "imgspool_queue_depth"), 0);
    EXPECT_EQ(node_sample(after, "imgspool_workers_busy"), 0);
    EXPECT_EQ(node_sample(after, "imgspool_inotify_overflows_total"), 0);
    // Uploaded: the rendered sets' bytes as the database recorded them; nothing for the hit.
    const auto uploaded =
        sql_rows(db(),
                 "select sum(i.total_bytes) from images i join upload_jobs j on j.id = i.upload_id "
                 "where j.cache_hit = 0;");
    ASSERT_EQ(uploaded.size(), 1u);
    EXPECT_GT(moved("imgspool_bytes_uploaded_total"), 0);
    EXPECT_EQ(moved("imgspool_bytes_uploaded_total"), std::stod(uploaded[0]));

    // Which daemon this is; SQLite has no sessions to re-establish.
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    EXPECT_NE(
        after.find(std::string("imgspool_node_info{node=\"obs\",host=\"") + host + "\",version=\""),
        std::string::npos)
        << after;
    EXPECT_NE(after.find(",database=\"sqlite\"} 1\n"), std::string::npos) << after;
    EXPECT_EQ(node_sample(after, "imgspool_db_reconnects_total"), 0);

    // A real Prometheus text parser accepts the exposition.
    const Output promtool = promtool_check(tmp_.path(), after);
    EXPECT_EQ(promtool.code, 0) << promtool.out;
    EXPECT_EQ(http_get(port, "/healthz").status, 200);
    EXPECT_EQ(http_get(port, "/readyz").status, 200);

    // SIGTERM: a clean stop.
    daemon.signal(SIGTERM);
    ASSERT_EQ(daemon.wait(15s), std::optional<int>(0)) << read_text(err_log);

    // The logs, line by line.
    const std::string stderr_text = read_text(err_log);
    EXPECT_EQ(stderr_text.find(kSecret), std::string::npos);
    EXPECT_EQ(stderr_text.find(kAccessKey), std::string::npos);
    EXPECT_EQ(stderr_text.find(kSessionToken), std::string::npos);
    const std::vector<json> logs = json_log_lines(stderr_text);
    expect_log_shape(logs);
    const auto ids = sql_rows(db(), "select id from upload_jobs order by id;");
    ASSERT_EQ(ids.size(), 7u);
    std::multiset<std::string> summarised, started;
    for (const json& l : with_msg(logs, "job started")) started.insert(l["upload_id"]);
    const auto complete = with_msg(logs, "job complete");
    const auto failed = with_msg(logs, "job failed");
    ASSERT_EQ(complete.size(), 5u);
    ASSERT_EQ(failed.size(), 2u);
    int hits = 0;
    for (const json& l : complete) {
        summarised.insert(l["upload_id"]);
        const std::string source = l["source"];
        ASSERT_TRUE(l["seconds"].is_number()) << l.dump();
        EXPECT_GE(l["seconds"].get<double>(), 0) << l.dump();
        const std::string& bytes = source == "photo-again.jpg" ? good["photo.jpg"] : good[source];
        EXPECT_EQ(l["original_bytes"], bytes.size()) << l.dump();
        ASSERT_TRUE(l["compression_ratio"].is_number()) << l.dump();
        EXPECT_GT(l["compression_ratio"].get<double>(), 0) << l.dump();
        EXPECT_NEAR(l["compression_ratio"].get<double>(),
                    static_cast<double>(bytes.size()) / l["output_bytes"].get<double>(), 1e-9);
        EXPECT_EQ(l["variants"], 7) << l.dump();
        if (l["cache_hit"] == true) {
            ++hits;
            EXPECT_EQ(source, "photo-again.jpg");
        }
    }
    EXPECT_EQ(hits, 1);
    std::map<std::string, std::string> failed_stage;
    for (const json& l : failed) {
        summarised.insert(l["upload_id"]);
        failed_stage[l["source"]] = l.value("stage", "") + ": " + l.value("error", "");
        EXPECT_TRUE(l["seconds"].is_number()) << l.dump();
    }
    EXPECT_EQ(failed_stage.size(), 2u);
    EXPECT_EQ(failed_stage["tiny.jpg"].rfind("validate: ", 0), 0u) << failed_stage["tiny.jpg"];
    EXPECT_EQ(failed_stage["notes.jpg"].rfind("validate: ", 0), 0u) << failed_stage["notes.jpg"];
    // One start and one summary line per job, for exactly the jobs in the database.
    EXPECT_EQ(summarised, std::multiset<std::string>(ids.begin(), ids.end()));
    EXPECT_EQ(started, std::multiset<std::string>(ids.begin(), ids.end()));

    // Every documented sqlite3 query runs on this database and answers what happened.
    const auto queries = documented_queries();
    ASSERT_GE(queries.size(), 10u);
    const std::string today_reasons = "validate|" + failed_stage["tiny.jpg"].substr(10) +
                                      "|validate|" + failed_stage["notes.jpg"].substr(10);
    for (const std::string& sql : queries) {
        const Output r = sqlite3_cli(db(), sql);
        ASSERT_EQ(r.code, 0) << sql << r.out;
        const auto rows = lines_of(r.out);
        if (sql.find("from upload_jobs group by 1") != std::string::npos) {
            EXPECT_EQ(std::set<std::string>(rows.begin(), rows.end()),
                      (std::set<std::string>{"complete|5", "failed|2"}));
        } else if (sql.find("from status_counts") != std::string::npos) {
            EXPECT_EQ(rows, (std::vector<std::string>{"waiting|0", "pending|0", "processing|0",
                                                      "complete|5", "failed|2"}));
        } else if (sql.find("from waiting_files") != std::string::npos ||
                   sql.find("from jobs_deferred") != std::string::npos) {
            EXPECT_TRUE(rows.empty()) << r.out;  // every file was whole, no fault met
        } else if (sql.find("from jobs_in_flight") != std::string::npos) {
            EXPECT_TRUE(rows.empty()) << r.out;
        } else if (sql.find("from failures_today") != std::string::npos) {
            ASSERT_EQ(rows.size(), 2u) << r.out;
            std::string answer;
            for (const std::string source : {"tiny.jpg", "notes.jpg"}) {
                const auto row = std::find_if(rows.begin(), rows.end(), [&](const auto& x) {
                    return x.find("|photos|" + std::string(source) + "|") != std::string::npos;
                });
                ASSERT_NE(row, rows.end()) << source << " not in\n" << r.out;
                // id|spool|source_name|stage|reason|failed_at|node
                std::string rest = row->substr(row->find(source) + source.size() + 1);
                EXPECT_TRUE(rest.ends_with("|obs"))
                    << "the node is the view's last column: " << *row;
                rest = rest.substr(0, rest.rfind('|'));  // without node
                answer += (answer.empty() ? "" : "|") + rest.substr(0, rest.rfind('|'));
            }
            EXPECT_EQ(answer, today_reasons);
        } else if (sql.find("error_stage, count(*)") != std::string::npos) {
            EXPECT_EQ(rows, std::vector<std::string>{"validate|2"});
        } else if (sql.find("from throughput_per_hour") != std::string::npos) {
            long completed = 0, failed_jobs = 0;  // all in this hour, or this and the last one
            for (const std::string& row : rows) {
                std::istringstream in(row);
                std::string hour, c, f;
                std::getline(in, hour, '|');
                std::getline(in, c, '|');
                std::getline(in, f, '|');
                completed += std::stol(c);
                failed_jobs += std::stol(f);
            }
            EXPECT_EQ(completed, 5);
            EXPECT_EQ(failed_jobs, 2);
        } else if (sql.find("from cache_hit_rate") != std::string::npos) {
            EXPECT_EQ(rows, std::vector<std::string>{"1|4|20.0"});
        } else if (sql.find("json_each(i.urls)") != std::string::npos) {
            ASSERT_EQ(rows.size(), 10u) << r.out;
            for (const std::string& row : rows) {
                EXPECT_NE(row.find("|file://" + (tmp_.path() / "objects").string()),
                          std::string::npos)
                    << row;
            }
        } else if (sql.find("like '%photo.jpg%'") != std::string::npos) {
            ASSERT_EQ(rows.size(), 1u) << r.out;
            EXPECT_NE(rows[0].find("|complete|100|||320|240|jpeg|"), std::string::npos) << rows[0];
        } else if (sql.find("order by duration_ms desc") != std::string::npos) {
            ASSERT_EQ(rows.size(), 5u) << r.out;
            EXPECT_EQ(std::count_if(rows.begin(), rows.end(),
                                    [](const auto& x) { return x.ends_with("|1"); }),
                      1);
        } else if (sql.find("from node_status") != std::string::npos) {
            ASSERT_EQ(rows.size(), 1u) << r.out;  // this daemon, the only node
            EXPECT_TRUE(rows[0].starts_with(std::string(kNode) + "|")) << rows[0];
            // It stopped cleanly (SIGTERM) before these queries: it left, handing nothing over.
            EXPECT_NE(rows[0].find("|stopped|"), std::string::npos) << rows[0];
        } else if (sql.find("json_extract(metadata, '$.prompt')") != std::string::npos) {
            EXPECT_TRUE(rows.empty()) << r.out;  // dropped files only: no tool, no metadata
        } else if (sql.find("i.blurhash") != std::string::npos) {
            EXPECT_TRUE(rows.empty()) << r.out;  // the web profile asks for no placeholders
        } else {
            ADD_FAILURE() << "this test has no expected answer for the documented query:\n" << sql;
        }
    }

    // `imgspool status --json` says what the database says.
    const Output status_json =
        run_imgspool({"status", "-c", config.string(), "--json"}, tmp_.path());
    ASSERT_EQ(status_json.code, 0) << status_json.err;
    const json s = json::parse(status_json.out);
    EXPECT_EQ(s["complete"], 5);
    EXPECT_EQ(s["failed"], 2);
    EXPECT_EQ(s["pending"], 0);
    EXPECT_EQ(s["processing"], 0);
    EXPECT_EQ(s["total"], 7);
    EXPECT_TRUE(s["in_flight"].empty());
    ASSERT_EQ(s["failures_today"].size(), 2u);
    const auto failure_rows = sql_rows(db(),
                                       "select id, source_name, stage, reason from "
                                       "failures_today;");
    std::set<std::string> status_failures;
    for (const json& f : s["failures_today"]) {
        status_failures.insert(
            f["upload_id"].get<std::string>() + "|" + f["source"].get<std::string>() + "|" +
            f["stage"].get<std::string>() + "|" + f["reason"].get<std::string>());
    }
    EXPECT_EQ(status_failures, std::set<std::string>(failure_rows.begin(), failure_rows.end()));
    EXPECT_EQ(s["cache"], json({{"hits", 1}, {"misses", 4}, {"hit_rate_pct", 20.0}}));
    long completed = 0, failed_jobs = 0;
    for (const json& h : s["throughput_per_hour"]) {
        completed += h["completed"].get<long>();
        failed_jobs += h["failed"].get<long>();
        EXPECT_TRUE(h["avg_duration_ms"].is_number()) << h.dump();
    }
    EXPECT_EQ(completed, 5);
    EXPECT_EQ(failed_jobs, 2);
    EXPECT_EQ(s["throughput_per_hour"].size(), sql_rows(db(),
                                                        "select * from "
                                                        "throughput_per_hour;")
                                                   .size());

    // The table says the same for people.
    const Output table = run_imgspool({"status", "-c", config.string()}, tmp_.path());
    ASSERT_EQ(table.code, 0) << table.err;
    EXPECT_TRUE(std::regex_search(table.out, std::regex(R"(\n\s+complete\s+5\n)"))) << table.out;
    EXPECT_TRUE(std::regex_search(table.out, std::regex(R"(\n\s+failed\s+2\n)"))) << table.out;
    EXPECT_NE(table.out.find("In flight: none"), std::string::npos) << table.out;
    for (const auto& [source, reason] : failed_stage) {
        EXPECT_NE(table.out.find(source), std::string::npos) << table.out;
        EXPECT_NE(table.out.find(reason.substr(10)), std::string::npos) << table.out;
    }
    EXPECT_NE(table.out.find("1 hits, 4 misses, hit rate 20.0%"), std::string::npos) << table.out;

    // One job's detail still works, as a table and as JSON.
    const auto hit_id = sql_rows(db(), "select id from upload_jobs where cache_hit = 1;");
    ASSERT_EQ(hit_id.size(), 1u);
    const Output one =
        run_imgspool({"status", "-c", config.string(), hit_id[0], "--json"}, tmp_.path());
    ASSERT_EQ(one.code, 0) << one.err;
    const json detail = json::parse(one.out);
    EXPECT_EQ(detail["source"], "photo-again.jpg");
    EXPECT_EQ(detail["status"], "complete");
    EXPECT_EQ(detail["outputs"].size(), 7u);

    // A job still in flight (as a crash would leave it) shows up in both forms.
    ASSERT_EQ(shell("sqlite3 '" + db().string() +
                    "' \"insert into upload_jobs (id, spool, source_name, profile) values "
                    "('stuck-1', 'photos', 'slow.jpg', 'web');\"")
                  .code,
              0);
    const json with_stuck =
        json::parse(run_imgspool({"status", "-c", config.string(), "--json"}, tmp_.path()).out);
    ASSERT_EQ(with_stuck["in_flight"].size(), 1u);
    EXPECT_EQ(with_stuck["in_flight"][0]["upload_id"], "stuck-1");
    EXPECT_EQ(with_stuck["in_flight"][0]["status"], "pending");
    EXPECT_EQ(with_stuck["pending"], 1);
    const Output stuck_table = run_imgspool({"status", "-c", config.string()}, tmp_.path());
    EXPECT_NE(stuck_table.out.find("In flight (1, oldest first)"), std::string::npos)
        << stuck_table.out;
    EXPECT_NE(stuck_table.out.find("slow.jpg"), std::string::npos) << stuck_table.out;
}

// S3 credentials in the environment, an S3 endpoint that refuses connections: not ready, the
// upload fails at the store stage, and no credential reaches a log line or check-config.
TEST_F(DaemonObservabilityTest, S3SecretsNeverReachLogsAndAnUnreachableStoreIsNotReady) {
    const int dead_port = free_port();  // nothing listens there
    const stdfs::path config = write_config(
        "[store]\nkind = \"s3\"\nbucket = \"imgspool-test\"\nendpoint = \"http://127.0.0.1:" +
        std::to_string(dead_port) +
        "\"\nmax_attempts = 2\nretry_base_delay_ms = 1\nretry_max_delay_ms = 2\n"
        "connect_timeout_ms = 2000\nrequest_timeout_ms = 5000\n");
    const int port = free_port();
    const std::map<std::string, std::string> env{{"ENABLE_METRICS", "1"},
                                                 {"METRICS_PORT", std::to_string(port)},
                                                 {"LOG_LEVEL", "debug"},
                                                 {"AWS_ACCESS_KEY_ID", kAccessKey},
                                                 {"AWS_SECRET_ACCESS_KEY", kSecret},
                                                 {"AWS_SESSION_TOKEN", kSessionToken}};

    const Output check = run_imgspool({"check-config", "-c", config.string()}, tmp_.path(), env);
    EXPECT_NE(check.code, 0) << "the store is unreachable\n" << check.out << check.err;
    EXPECT_NE(check.out.find("secret_access_key = \"****\""), std::string::npos) << check.out;
    for (const char* secret : {kSecret, kSessionToken, kAccessKey}) {
        EXPECT_EQ((check.out + check.err).find(secret), std::string::npos) << check.out;
    }

    const stdfs::path err_log = tmp_.path() / "daemon.err";
    Child daemon({"run", "-c", config.string()}, env, tmp_.path() / "daemon.out", err_log);
    ASSERT_TRUE(wait_until([&] { return http_get(port, "/healthz").status == 200; }, 10s))
        << read_text(err_log);
    HttpReply ready;
    ASSERT_TRUE(wait_until(
        [&] {
            ready = http_get(port, "/readyz");
            return ready.body.find("store unreachable") != std::string::npos;
        },
        10s))
        << ready.body;
    EXPECT_EQ(ready.status, 503);

    drop(spool("inbox"), "upload.jpg", make_image(300, 200, 70, ".jpg"));
    std::string metrics;
    ASSERT_TRUE(wait_until(
        [&] {
            metrics = http_get(port, "/metrics").body;
            return node_sample(metrics, "imgspool_deferrals_total{stage=\"store\"}") >= 1;
        },
        20s))
        << metrics << read_text(err_log);
    // An unreachable store defers the job (it waits for the store), it does not fail it.
    EXPECT_EQ(node_sample(metrics, "generation_success_total"), 0);
    EXPECT_EQ(node_sample(metrics, "generation_failure_total{reason=\"store\"}"), 0);
    EXPECT_EQ(node_sample(metrics, "imgspool_failed_files_total"), 0);
    EXPECT_EQ(node_sample(metrics, "imgspool_bytes_uploaded_total"), 0);
    EXPECT_EQ(promtool_check(tmp_.path(), metrics).code, 0);

    daemon.signal(SIGINT);
    ASSERT_EQ(daemon.wait(15s), std::optional<int>(0)) << read_text(err_log);
    const std::string stderr_text = read_text(err_log);
    for (const char* secret : {kSecret, kSessionToken, kAccessKey}) {
        EXPECT_EQ(stderr_text.find(secret), std::string::npos) << secret << " in\n" << stderr_text;
    }
    const auto logs = json_log_lines(stderr_text);
    expect_log_shape(logs);
    const auto deferred = with_msg(logs, "job deferred");
    ASSERT_GE(deferred.size(), 1u) << stderr_text;
    EXPECT_EQ(deferred[0]["stage"], "store");
    EXPECT_EQ(deferred[0]["source"], "upload.jpg");
    EXPECT_TRUE(with_msg(logs, "job failed").empty()) << stderr_text;
    const std::string note = sqlite3_cli(db(), "select last_error from upload_jobs").out;
    EXPECT_NE(note.find("store: "), std::string::npos) << note;
    for (const char* secret : {kSecret, kSessionToken, kAccessKey}) {
        EXPECT_EQ(note.find(secret), std::string::npos) << note;
    }
}

// `imgspool process` off a terminal: one JSON line per file on stdout; on stderr only JSON log
// lines (libvips' own warnings included) and, at the end, one plain summary line.
TEST_F(DaemonObservabilityTest, ProcessOffATerminalPrintsJsonLinesAndOneSummary) {
    const stdfs::path config = write_config();
    const stdfs::path in = tmp_.path() / "in";
    stdfs::create_directories(in);
    write_text(in / "a.jpg", make_image(400, 300, 60, ".jpg"));
    write_text(in / "b.png", make_image(300, 300, 160, ".png"));
    write_text(in / "cut.jpg", truncated_jpeg());

    const Output r = run_imgspool({"process", "-c", config.string(), (in / "a.jpg").string(),
                                   (in / "b.png").string(), (in / "cut.jpg").string()},
                                  tmp_.path(), {{"LOG_LEVEL", "info"}});
    EXPECT_EQ(r.code, 1) << "one file failed\n" << r.err;
    const auto out = lines_of(r.out);
    ASSERT_EQ(out.size(), 3u) << r.out;
    std::map<std::string, std::string> status_of;
    for (const std::string& line : out) {
        const json j = json::parse(line);
        status_of[stdfs::path(j.value("file", "")).filename().string()] =
            j.value("status", "") + (j.contains("stage") ? ":" + j.value("stage", "") : "");
        EXPECT_FALSE(j.value("upload_id", "").empty()) << line;
    }
    EXPECT_EQ(status_of,
              (std::map<std::string, std::string>{
                  {"a.jpg", "complete"}, {"b.png", "complete"}, {"cut.jpg", "failed:validate"}}));

    std::vector<std::string> plain;
    const auto logs = json_log_lines(r.err, 1, &plain);
    expect_log_shape(logs);
    ASSERT_EQ(plain.size(), 1u) << r.err;
    EXPECT_TRUE(std::regex_match(
        plain[0],
        std::regex(R"(processed 3 files: 2 done, 1 failed in \d+\.\d s \(\d+\.\d files/s\))")))
        << plain[0];
    EXPECT_EQ(lines_of(r.err).back(), plain[0]) << "the summary comes last";
    EXPECT_EQ(with_msg(logs, "job complete").size(), 2u);
    EXPECT_EQ(with_msg(logs, "job failed").size(), 1u);
    EXPECT_EQ(r.err.find('\r'), std::string::npos) << "no progress bar off a terminal";
}

// On a terminal the same command draws a progress bar with counts and rate, redrawn in place.
TEST_F(DaemonObservabilityTest, ProcessOnATerminalDrawsAProgressBar) {
    const stdfs::path config = write_config();
    const stdfs::path in = tmp_.path() / "in";
    stdfs::create_directories(in);
    std::vector<std::string> args{IMGSPOOL_BINARY, "process", "-c", config.string()};
    for (int i = 0; i < 3; ++i) {
        const stdfs::path file = in / ("p" + std::to_string(i) + ".png");
        write_text(file, make_image(200 + 20 * i, 150, 30 + 50 * i, ".png"));
        args.push_back(file.string());
    }
    const std::vector<std::string> env_s = child_env({{"LOG_LEVEL", "error"}});
    std::vector<char*> argv, envp;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    for (const auto& e : env_s) envp.push_back(const_cast<char*>(e.c_str()));
    argv.push_back(nullptr);
    envp.push_back(nullptr);

    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::execve(IMGSPOOL_BINARY, argv.data(), envp.data());
        ::_exit(127);
    }
    std::string screen;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{master, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        char buf[4096];
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;  // EIO once the child has closed the terminal
        screen.append(buf, static_cast<size_t>(n));
    }
    ::close(master);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << screen;
    EXPECT_NE(screen.find('\r'), std::string::npos) << screen;
    EXPECT_TRUE(std::regex_search(
        screen, std::regex(R"(\[#+\]  3/3 files  0 failed  \d+\.\d files/s  took \d+:\d\d)")))
        << screen;
    EXPECT_EQ(screen.find("processed 3 files"), std::string::npos)
        << "the summary line is for non-terminals";
}

}  // namespace
}  // namespace imgspool
