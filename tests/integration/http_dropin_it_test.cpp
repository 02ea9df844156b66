// The HTTP drop-in of the real daemon, driven with the curl CLI the way the README shows:
// POST /images/upload with -F image=@photo.jpg, GET /images/{uploadId}, POST /jobs; the
// answers for a text file, an oversized file and a missing token; 50 uploads at once.
#include <csignal>
#include <cstdio>
#include <thread>

#include "tests/fetch/origin_server.hpp"
#include "tests/integration/images.hpp"
#include "tests/integration/loopback.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

constexpr const char* kToken = "s3cret-t0ken";

struct CurlAnswer {
    int status = 0;  // HTTP status; 0 when curl failed
    std::string body;
};

// Runs `curl -sS ... -w '\n%{http_code}'` with the arguments (each single-quoted).
CurlAnswer curl(const std::vector<std::string>& args) {
    std::string command = "curl -sS --noproxy '*' --max-time 60 -w '\\n%{http_code}'";
    for (const std::string& a : args) {
        std::string q = "'";
        for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
        command += " " + q + "'";
    }
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return {};
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
    const auto nl = out.rfind('\n');
    if (nl == std::string::npos) return {};
    CurlAnswer a;
    a.body = out.substr(0, nl);
    try {
        a.status = std::stoi(out.substr(nl + 1));
    } catch (const std::exception&) {
        a.status = 0;
    }
    return a;
}

nlohmann::json json_of(const CurlAnswer& a) {
    return nlohmann::json::parse(a.body, nullptr, false);
}

class HttpDropInIt : public SpoolFixture {
  protected:
    void SetUp() override {
        SpoolFixture::SetUp();
        if (HasFatalFailure()) return;
        port_ = free_port();
        ASSERT_NE(port_, 0);
        photo_ = root() / "photo.jpg";
        write_file(photo_, make_jpeg({.width = 1200, .height = 800, .seed = 5}));
    }

    void start(const std::string& more_toml = "", std::map<std::string, long long> limits = {}) {
        DaemonConfig c;
        c.settle_ms = 200;
        c.limits = std::move(limits);
        c.extra_toml =
            "\n[http]\nenabled = true\nbind = \"127.0.0.1\"\nport = " + std::to_string(port_) +
            "\ntoken = \"" + kToken + "\"\n" + more_toml;
        write_config(c);
        start_daemon();
        ASSERT_TRUE(wait_for([&] { return http_get(port_, "/images/none").status != 0; }, 20s))
            << "the HTTP drop-in did not answer\n"
            << daemon_log();
    }

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::vector<std::string> auth() const {
        return {"-H", std::string("Authorization: Bearer ") + kToken};
    }

    CurlAnswer upload(const stdfs::path& file, std::vector<std::string> more = {}) {
        std::vector<std::string> args = auth();
        args.insert(args.end(), {"-F", "image=@" + file.string()});
        args.insert(args.end(), more.begin(), more.end());
        args.push_back(url("/images/upload"));
        return curl(args);
    }

    // GET /images/{id} until the job is complete or failed.
    nlohmann::json wait_finished(const std::string& id, std::chrono::milliseconds t = 60s) {
        nlohmann::json last;
        wait_for(
            [&] {
                std::vector<std::string> args = auth();
                args.push_back(url("/images/" + id));
                last = json_of(curl(args));
                const std::string status = last.is_object() ? last.value("status", "") : "";
                return status == "complete" || status == "failed";
            },
            t);
        return last;
    }

    int port_ = 0;
    stdfs::path photo_;
};

TEST_F(HttpDropInIt, AnUploadIsAcceptedProcessedAndReadBack) {
    start();
    const CurlAnswer a =
        upload(photo_, {"-F", "user_id=u-1", "-F", "metadata={\"prompt\":\"a red barn\"}"});
    ASSERT_EQ(a.status, 202) << a.body << "\n" << daemon_log();
    const nlohmann::json accepted = json_of(a);
    ASSERT_TRUE(accepted.is_object()) << a.body;
    const std::string id = accepted.at("uploadId");
    EXPECT_EQ(accepted.at("originalSize"), stdfs::file_size(photo_));
    EXPECT_EQ(accepted.at("dimensions").at("width"), 1200);
    EXPECT_EQ(accepted.at("dimensions").at("height"), 800);
    EXPECT_EQ(accepted.at("format"), "jpeg");
    EXPECT_EQ(accepted.at("statusUrl"), "/images/" + id);

    const nlohmann::json image = wait_finished(id);
    ASSERT_EQ(image.value("status", ""), "complete") << image.dump() << "\n" << daemon_log();
    EXPECT_EQ(image.at("uploadId"), id);
    EXPECT_EQ(image.at("metadata").at("prompt"), "a red barn") << image.dump();
    ASSERT_FALSE(image.at("variants").empty()) << image.dump();
    for (const auto& v : image.at("variants")) {
        EXPECT_EQ(v.at("url").get<std::string>().rfind(kCdn, 0), 0u) << v.dump();
    }
    EXPECT_FALSE(image.at("urls").empty()) << image.dump();
    // The original ends in done/ like a dropped file, and the job is in the database.
    EXPECT_TRUE(stdfs::exists(done() / "http" / (id + ".jpg"))) << tree();
    auto row = job(id);
    ASSERT_TRUE(row);
    EXPECT_EQ(row->at("origin"), "http");
    EXPECT_EQ(row->at("user_id"), "u-1");
    EXPECT_EQ(row->at("client_name"), "photo.jpg");
}

// An upload whose profile asks for placeholders reads them back as the job recorded them.
TEST_F(HttpDropInIt, AnUploadsPlaceholdersAreInItsAnswer) {
    start(
        "[profiles.gallery]\nplaceholder = [\"blurhash\", \"lqip\"]\n"
        "[[profiles.gallery.variant]]\nname = \"small\"\nwidth = 200\nheight = 200\n");
    const CurlAnswer a = upload(photo_, {"-F", "profile=gallery"});
    ASSERT_EQ(a.status, 202) << a.body << "\n" << daemon_log();
    const std::string id = json_of(a).at("uploadId");
    const nlohmann::json image = wait_finished(id);
    ASSERT_EQ(image.value("status", ""), "complete") << image.dump() << "\n" << daemon_log();
    const std::vector<Row> rows =
        query("select blurhash, lqip from images where upload_id = ?1", {id});
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("blurhash").size(), 28u);
    EXPECT_TRUE(rows[0].at("lqip").starts_with("data:image/webp;base64,"));
    EXPECT_EQ(image.at("placeholders"),
              (nlohmann::json{{"blurhash", rows[0].at("blurhash")}, {"lqip", rows[0].at("lqip")}}))
        << image.dump();
}

TEST_F(HttpDropInIt, BadRequestsAreAnsweredWithTheirReason) {
    start("", {{"max_bytes", 10LL * 1024 * 1024}});
    const stdfs::path text = root() / "notes.txt";
    write_file(text, "just some words, not pixels\n");
    EXPECT_EQ(upload(text).status, 400);

    const stdfs::path big = root() / "big.jpg";
    write_file(big, std::string(11 * 1024 * 1024, 'x').replace(0, 3, "\xff\xd8\xff"));
    EXPECT_EQ(upload(big).status, 413);

    const CurlAnswer no_token = curl({"-F", "image=@" + photo_.string(), url("/images/upload")});
    EXPECT_EQ(no_token.status, 401) << no_token.body;
    const CurlAnswer wrong = curl({"-H", "Authorization: Bearer nope", "-F",
                                   "image=@" + photo_.string(), url("/images/upload")});
    EXPECT_EQ(wrong.status, 401) << wrong.body;

    std::vector<std::string> get = auth();
    get.push_back(url("/images/00000000-0000-0000-0000-000000000000"));
    EXPECT_EQ(curl(get).status, 404);

    // Nothing was taken: no job, nothing left behind in work/.
    EXPECT_TRUE(query("select id from upload_jobs where origin = 'http'").empty());
    EXPECT_TRUE(files_under(work()).empty()) << tree();
    EXPECT_TRUE(daemon_running());
}

TEST_F(HttpDropInIt, FiftyConcurrentUploadsAllComplete) {
    start();
    constexpr int kUploads = 50;
    std::vector<std::string> ids(kUploads);
    std::vector<int> codes(kUploads, 0);
    std::vector<std::thread> clients;
    for (int i = 0; i < kUploads; ++i) {
        clients.emplace_back([&, i] {
            // 503 while the queue is full is an answer to retry; curl does so with --retry.
            const CurlAnswer a = upload(photo_, {"--retry", "10", "--retry-delay", "1"});
            codes[i] = a.status;
            const nlohmann::json j = json_of(a);
            if (j.is_object() && j.contains("uploadId")) ids[i] = j.at("uploadId");
        });
    }
    for (std::thread& t : clients) t.join();
    for (int i = 0; i < kUploads; ++i) ASSERT_EQ(codes[i], 202) << "upload " << i;
    ASSERT_TRUE(wait_for(
        [&] {
            return query("select id from upload_jobs where origin = 'http' and status = 'complete'")
                       .size() == kUploads;
        },
        120s))
        << daemon_log();
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), std::size_t{kUploads});
}

TEST_F(HttpDropInIt, ATokenChangedByAReloadAppliesToTheNextRequest) {
    start();
    ASSERT_EQ(upload(photo_).status, 202);
    DaemonConfig c;
    c.settle_ms = 200;
    c.extra_toml =
        "\n[http]\nenabled = true\nbind = \"127.0.0.1\"\nport = " + std::to_string(port_) +
        "\ntoken = \"n3w-t0ken\"\n";
    write_config(c);
    daemon().send(SIGHUP);
    ASSERT_TRUE(wait_for([&] { return upload(photo_).status == 401; }, 20s)) << daemon_log();
    const CurlAnswer fresh = curl({"-H", "Authorization: Bearer n3w-t0ken", "-F",
                                   "image=@" + photo_.string(), url("/images/upload")});
    EXPECT_EQ(fresh.status, 202) << fresh.body;
    EXPECT_NE(daemon_log().find("configuration reloaded"), std::string::npos);
}

// An upload streams into work/<node>.<random>.part; one cut short by a stop is removed at the
// daemon's next start. On PostgreSQL, nodes share work/: a node removes only its own, and leaves
// other nodes' and the unnamed ones of older versions (whose owner it cannot know). A SQLite
// daemon is alone on its spools and removes them all.
TEST_F(HttpDropInIt, UnfinishedUploadsCarryTheNodeAndOnlyOwnOnesAreRemovedAtStart) {
    const std::string random = "0123456789abcdef0123456789abcdef";
    const stdfs::path own = work() / ("it-node." + random + ".part");
    const stdfs::path other = work() / ("other-node." + random + ".part");
    const stdfs::path unnamed = work() / (random + ".part");
    stdfs::create_directories(work());
    for (const stdfs::path& p : {own, other, unnamed}) write_file(p, "cut short");
    set_daemon_env({"IMGSPOOL_NODE=it-node"});
    start();
    EXPECT_FALSE(stdfs::exists(own)) << tree();
    EXPECT_EQ(stdfs::exists(other), on_postgres()) << tree();
    EXPECT_EQ(stdfs::exists(unnamed), on_postgres()) << tree();

    // A slow upload (about 4 s), seen while it streams: its file carries this node's name.
    const std::string rate = std::to_string(stdfs::file_size(photo_) / 4 + 1);
    CurlAnswer slow;
    std::thread client([&] { slow = upload(photo_, {"--limit-rate", rate}); });
    std::string seen;
    wait_for(
        [&] {
            for (const std::string& name : files_under(work())) {
                if (name.ends_with(".part") && name != other.filename().string() &&
                    name != unnamed.filename().string()) {
                    seen = name;
                }
            }
            return !seen.empty();
        },
        20s);
    client.join();
    EXPECT_EQ(seen.rfind("it-node.", 0), 0u) << "streamed into " << seen;
    EXPECT_EQ(slow.status, 202) << slow.body << "\n" << daemon_log();
}

TEST_F(HttpDropInIt, PostJobsTakesAManifest) {
    if (auto why = fetch_test::OriginServer::unavailable()) GTEST_SKIP() << *why;
    fetch_test::OriginServer origin(
        {{"photo.jpg", make_jpeg({.width = 800, .height = 600, .seed = 8})}});
    start("\n[fetch]\nallow_hosts = [\"127.0.0.1\"]\n");
    const nlohmann::json manifest = {{"source", origin.url1("/img/photo.jpg")},
                                     {"tool", "dall-e"},
                                     {"metadata", {{"prompt", "a fox"}}}};
    std::vector<std::string> args = auth();
    args.insert(args.end(), {"-H", "Content-Type: application/json", "--data-binary",
                             manifest.dump(), url("/jobs")});
    const CurlAnswer a = curl(args);
    ASSERT_EQ(a.status, 202) << a.body << "\n" << daemon_log();
    const std::string id = json_of(a).at("uploadId");
    const nlohmann::json image = wait_finished(id);
    ASSERT_EQ(image.value("status", ""), "complete") << image.dump() << "\n" << daemon_log();
    EXPECT_EQ(image.at("source"), origin.url1("/img/photo.jpg"));
    EXPECT_EQ(image.at("metadata").at("prompt"), "a fox");

    std::vector<std::string> bad = auth();
    bad.insert(bad.end(), {"--data-binary", "{\"sorce\": 1}", url("/jobs")});
    EXPECT_EQ(curl(bad).status, 400);
}

}  // namespace
}  // namespace imgspool::it
