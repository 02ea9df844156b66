// The real libmicrohttpd server on 127.0.0.1, driven by libcurl, against a fake backend.
#include "upload/upload_server.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "tests/pipeline/test_images.hpp"

namespace imgspool::upload {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1024 * 1024;

// Records what accept() got and moves the file out of temp_dir() as the daemon's rename does.
class FakeBackend : public UploadBackend {
  public:
    explicit FakeBackend(stdfs::path root) : temp_(root / "uploads"), taken_(root / "taken") {
        stdfs::create_directories(temp_);
        stdfs::create_directories(taken_);
    }

    std::optional<std::string> busy_reason() override {
        std::lock_guard lock(mutex_);
        return busy_;
    }
    stdfs::path temp_dir() override { return temp_; }
    std::uint64_t max_bytes() override { return max_bytes_; }
    Result<std::string> accept(PreparedUpload up) override {
        std::lock_guard lock(mutex_);
        if (accept_error_) return *accept_error_;
        char id[37];
        std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012zu", accepted_.size() + 1);
        const stdfs::path dest = taken_ / (std::string(id) + up.extension);
        stdfs::rename(up.temp, dest);
        accepted_.push_back(up);
        ids_.push_back(id);
        return std::string(id);
    }
    Result<std::optional<ImageView>> image(const std::string& upload_id) override {
        std::lock_guard lock(mutex_);
        if (image_error_) return *image_error_;
        for (std::size_t i = 0; i < ids_.size(); ++i) {
            if (ids_[i] != upload_id) continue;
            ImageView v;
            v.upload_id = upload_id;
            v.status = "complete";
            v.progress = 100;
            v.source = accepted_[i].client_name;
            v.metadata_json = accepted_[i].metadata_json;
            v.user_id = accepted_[i].user_id;
            v.variants.push_back({"small", "webp", 320, 240, 1234, "https://cdn.test/small.webp"});
            v.variants.push_back({"large", "jpeg", 1280, 960, 98765, "https://cdn.test/large.jpg"});
            return std::optional<ImageView>(std::move(v));
        }
        return std::optional<ImageView>();
    }
    Status check_manifest(std::string_view text) override {
        const json parsed = json::parse(text, nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object()) {
            return make_error(Stage::validate, "manifest: not a JSON object");
        }
        if (!parsed.contains("source")) {
            return make_error(Stage::validate, "manifest: \"source\" is required");
        }
        return ok_status();
    }

    void set_busy(std::optional<std::string> reason) {
        std::lock_guard lock(mutex_);
        busy_ = std::move(reason);
    }
    void set_image_error(std::optional<Error> e) {
        std::lock_guard lock(mutex_);
        image_error_ = std::move(e);
    }
    void set_accept_error(std::optional<Error> e) {
        std::lock_guard lock(mutex_);
        accept_error_ = std::move(e);
    }
    std::vector<PreparedUpload> accepted() {
        std::lock_guard lock(mutex_);
        return accepted_;
    }
    // The bytes accept() took for the n-th upload.
    std::string taken_bytes(std::size_t n) {
        std::lock_guard lock(mutex_);
        return read(taken_ / (ids_.at(n) + accepted_.at(n).extension));
    }
    static std::string read(const stdfs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    std::size_t part_files() const {
        return static_cast<std::size_t>(std::distance(stdfs::directory_iterator(temp_), {}));
    }
    // Waits up to 5 s for temp_dir() to empty (the completion notice runs after the answer).
    bool parts_gone() const {
        for (int i = 0; i < 500 && part_files() > 0; ++i) std::this_thread::sleep_for(10ms);
        return part_files() == 0;
    }

    std::uint64_t max_bytes_ = 10 * kMiB;

  private:
    stdfs::path temp_, taken_;
    std::mutex mutex_;
    std::optional<std::string> busy_;
    std::optional<Error> accept_error_;
    std::optional<Error> image_error_;
    std::vector<PreparedUpload> accepted_;
    std::vector<std::string> ids_;
};

struct Reply {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string error;                           // the transfer itself failed
    json parsed() const { return json::parse(body, nullptr, false); }
};

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct MimeDeleter {
    void operator()(curl_mime* m) const { curl_mime_free(m); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

size_t append(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* out) {
    const std::string line(data, size * n);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        value.erase(value.find_last_not_of("\r\n ") + 1);
        (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
    }
    return size * n;
}

struct Part {
    std::string name;
    std::string data;
    std::string filename;  // "": a plain field
};

// A body streamed by a read callback: `total` bytes of `prefix` then filler; it can stop
// (abort the transfer) after `abort_after` bytes or sleep between chunks.
struct SlowBody {
    std::string prefix;
    std::uint64_t total = 0;
    std::uint64_t sent = 0;
    std::uint64_t abort_after = UINT64_MAX;
    std::chrono::milliseconds pause{0};
    std::function<void()> before_abort;

    static size_t read(char* buffer, size_t size, size_t items, void* arg) {
        auto& b = *static_cast<SlowBody*>(arg);
        if (b.sent >= b.abort_after) {
            if (b.before_abort) b.before_abort();
            return CURL_READFUNC_ABORT;
        }
        if (b.pause.count() > 0) std::this_thread::sleep_for(b.pause);
        std::size_t n = std::min<std::uint64_t>({size * items, b.total - b.sent, 64 * 1024});
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t at = b.sent + i;
            buffer[i] = at < b.prefix.size() ? b.prefix[at] : 'x';
        }
        b.sent += n;
        return n;
    }
};

struct Request {
    std::string method = "POST";
    std::string path = "/images/upload";
    std::vector<Part> parts;   // multipart body when not empty
    std::string body;          // raw body otherwise
    std::string content_type;  // for a raw body
    std::string token;         // "": no Authorization header
    bool chunked = false;
    SlowBody* streamed_image = nullptr;  // an "image" part fed by a callback
};

Reply perform(int port, const Request& r) {
    Reply reply;
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + r.path;
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &append);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &reply.headers);
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    auto add_header = [&](const std::string& h) {
        headers.reset(curl_slist_append(headers.release(), h.c_str()));
    };
    if (!r.token.empty()) add_header("Authorization: Bearer " + r.token);
    if (r.chunked) add_header("Transfer-Encoding: chunked");
    std::unique_ptr<curl_mime, MimeDeleter> mime;
    if (!r.parts.empty() || r.streamed_image) {
        mime.reset(curl_mime_init(curl.get()));
        for (const Part& p : r.parts) {
            curl_mimepart* part = curl_mime_addpart(mime.get());
            curl_mime_name(part, p.name.c_str());
            curl_mime_data(part, p.data.data(), p.data.size());
            if (!p.filename.empty()) curl_mime_filename(part, p.filename.c_str());
        }
        if (r.streamed_image) {
            curl_mimepart* part = curl_mime_addpart(mime.get());
            curl_mime_name(part, "image");
            curl_mime_filename(part, "streamed.jpg");
            curl_mime_data_cb(part, static_cast<curl_off_t>(r.streamed_image->total),
                              &SlowBody::read, nullptr, nullptr, r.streamed_image);
        }
        curl_easy_setopt(curl.get(), CURLOPT_MIMEPOST, mime.get());
    } else if (r.method == "POST") {
        if (!r.content_type.empty()) add_header("Content-Type: " + r.content_type);
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, r.body.data());
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(r.body.size()));
    } else {
        curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    if (headers) curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    const CURLcode rc = curl_easy_perform(curl.get());
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
    if (rc != CURLE_OK) reply.error = curl_easy_strerror(rc);
    return reply;
}

// A bare TCP connection to the server that has sent `text` (a request's start, say).
fs::UniqueFd open_connection(int port, const std::string& text) {
    fs::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::send(fd.get(), text.data(), text.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(text.size()));
    return fd;
}

// How long until the server closes the connection (reads 0 or an error); up to `limit`.
std::chrono::milliseconds time_to_close(const fs::UniqueFd& fd, std::chrono::seconds limit) {
    timeval tv{static_cast<time_t>(limit.count()), 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto started = std::chrono::steady_clock::now();
    char buf[4096];
    while (true) {
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
        if (n < 0 && errno == EAGAIN)
            return std::chrono::duration_cast<std::chrono::milliseconds>(limit);
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 started);
}

// VmHWM (peak resident set) in KiB; /proc/self/clear_refs "5" resets it to the current RSS.
long peak_rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}
long current_rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

class UploadServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char dir_template[] = "/tmp/imgspool-upload-XXXXXX";
        ASSERT_NE(mkdtemp(dir_template), nullptr);
        root_ = dir_template;
        backend_ = std::make_unique<FakeBackend>(root_);
        jpeg_ = test::save(test::quadrants(200, 150).get(), Format::jpeg);
    }
    void TearDown() override {
        if (server_) server_->stop();
        stdfs::remove_all(root_);
    }

    void start(UploadServerOptions options = {}) {
        options.bind = "127.0.0.1";
        options.port = 0;
        options.on_answer = [this](std::string_view endpoint, unsigned status) {
            std::lock_guard lock(answers_mutex_);
            answers_.emplace_back(std::string(endpoint), status);
        };
        server_ = std::make_unique<UploadServer>(options, *backend_);
        Status started = server_->start();
        ASSERT_TRUE(started.ok()) << started.error().message();
        ASSERT_GT(server_->port(), 0);
    }

    Reply upload(std::vector<Part> parts, std::string token = {}) {
        Request r;
        r.parts = std::move(parts);
        r.token = std::move(token);
        return perform(server_->port(), r);
    }
    Reply upload_image(const std::string& bytes, const std::string& filename = "photo.jpg") {
        return upload({{"image", bytes, filename}});
    }

    // A JPEG padded past the size limit: the magic bytes pass, only the size is wrong.
    std::string oversized_jpeg(std::uint64_t size) const {
        std::string bytes = jpeg_;
        bytes.resize(size, '\0');
        return bytes;
    }

    stdfs::path root_;
    std::unique_ptr<FakeBackend> backend_;
    std::unique_ptr<UploadServer> server_;
    std::string jpeg_;
    std::mutex answers_mutex_;
    std::vector<std::pair<std::string, unsigned>> answers_;
};

TEST_F(UploadServerTest, AcceptsAnImageWithItsFieldsAndAnswers202) {
    start();
    const json metadata = {{"prompt", "a red fox"}, {"seed", 42}};
    const Reply r = upload({{"image", jpeg_, "fox.jpg"},
                            {"spool", "photos", ""},
                            {"profile", "dall-e", ""},
                            {"user_id", "u-17", ""},
                            {"metadata", metadata.dump(2), ""}});
    ASSERT_EQ(r.status, 202) << r.body << r.error;
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    const json body = r.parsed();
    ASSERT_TRUE(body.is_object()) << r.body;
    const std::string id = body.at("uploadId");
    EXPECT_EQ(id, "00000000-0000-4000-8000-000000000001");
    EXPECT_EQ(body.at("originalSize"), jpeg_.size());
    EXPECT_EQ(body.at("dimensions"), (json{{"width", 200}, {"height", 150}}));
    EXPECT_EQ(body.at("format"), "jpeg");
    EXPECT_EQ(body.at("statusUrl"), "/images/" + id);
    EXPECT_EQ(r.headers.at("location"), "/images/" + id);

    const std::vector<PreparedUpload> got = backend_->accepted();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].extension, ".jpg");
    EXPECT_EQ(got[0].bytes, jpeg_.size());
    EXPECT_EQ(got[0].format, "jpeg");
    EXPECT_EQ(got[0].width, 200);
    EXPECT_EQ(got[0].height, 150);
    EXPECT_EQ(got[0].spool, "photos");
    EXPECT_EQ(got[0].profile, "dall-e");
    EXPECT_EQ(got[0].user_id, "u-17");
    EXPECT_EQ(got[0].metadata_json, metadata.dump());  // compacted
    EXPECT_EQ(got[0].client_name, "fox.jpg");
    EXPECT_EQ(got[0].temp.parent_path(), backend_->temp_dir());
    EXPECT_EQ(got[0].temp.extension(), ".part");
    EXPECT_EQ(backend_->taken_bytes(0), jpeg_);
    EXPECT_EQ(backend_->part_files(), 0u);
}

TEST_F(UploadServerTest, AcceptsPngAndWebpWithTheirExtensions) {
    start();
    VipsImagePtr image = test::quadrants(300, 120);
    const std::string png = test::save(image.get(), Format::png);
    const std::string webp = test::save(image.get(), Format::webp);
    const Reply a = upload_image(png, "a.png");
    const Reply b = upload_image(webp, "b.webp");
    ASSERT_EQ(a.status, 202) << a.body;
    ASSERT_EQ(b.status, 202) << b.body;
    EXPECT_EQ(a.parsed().at("format"), "png");
    EXPECT_EQ(b.parsed().at("format"), "webp");
    const auto got = backend_->accepted();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].extension, ".png");
    EXPECT_EQ(got[1].extension, ".webp");
    EXPECT_EQ(backend_->taken_bytes(1), webp);
}

TEST_F(UploadServerTest, RefusesATextFileWith400AndTheReason) {
    start();
    const Reply r = upload_image("hello, this is not an image\n", "notes.txt");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    EXPECT_EQ(r.parsed().at("error"),
              "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC image (starts with 68 65 6C "
              "6C)");
    EXPECT_TRUE(backend_->accepted().empty());
    EXPECT_TRUE(backend_->parts_gone());
}

TEST_F(UploadServerTest, RefusesBadFormsAndBadImagesWith400) {
    start();
    auto error_of = [](const Reply& r) {
        EXPECT_EQ(r.status, 400) << r.body;
        const json body = r.parsed();
        return body.is_object() ? body.value("error", std::string()) : r.body;
    };
    EXPECT_EQ(error_of(upload({{"user_id", "u", ""}})), "the form has no \"image\" field");
    EXPECT_EQ(error_of(upload({{"image", jpeg_, "a.jpg"}, {"colour", "red", ""}})),
              "unknown form field \"colour\" (expected image, spool, profile, user_id, metadata)");
    EXPECT_EQ(error_of(upload({{"image", jpeg_, "a.jpg"}, {"metadata", "[1, 2]", ""}})),
              "form field \"metadata\" must be a JSON object");
    EXPECT_EQ(error_of(upload({{"image", jpeg_, "a.jpg"}, {"metadata", "{\"a\":", ""}})),
              "form field \"metadata\" must be a JSON object");
    EXPECT_EQ(error_of(upload({{"image", jpeg_, "a.jpg"}, {"image", jpeg_, "b.jpg"}})),
              "the form has two \"image\" fields");
    EXPECT_EQ(
        error_of(upload({{"image", jpeg_, "a.jpg"}, {"user_id", std::string(2000, 'u'), ""}})),
        "form field \"user_id\" is longer than 1024 bytes");
    EXPECT_EQ(error_of(upload({{"image", jpeg_, "a.jpg"}, {"user_id", "a\nb", ""}})),
              "form field \"user_id\" has control characters");
    // Cut short: the header reads fine, the end-of-image marker is missing.
    EXPECT_EQ(error_of(upload_image(jpeg_.substr(0, jpeg_.size() / 2))),
              "incomplete JPEG: no end-of-image marker");
    // Whole, but below the header limits.
    EXPECT_EQ(error_of(upload_image(test::save(test::quadrants(90, 90).get(), Format::png))),
              "image is 90x90, smaller than the minimum 100x100");
    // Not a form at all.
    Request raw;
    raw.body = jpeg_;
    raw.content_type = "image/jpeg";
    EXPECT_EQ(error_of(perform(server_->port(), raw)),
              "expected a multipart/form-data body with an \"image\" field");
    EXPECT_TRUE(backend_->accepted().empty());
    EXPECT_TRUE(backend_->parts_gone());
}

TEST_F(UploadServerTest, Answers413OverMaxBytesByContentLength) {
    start();
    const Reply r = upload_image(oversized_jpeg(11 * kMiB));
    EXPECT_EQ(r.status, 413) << r.body << r.error;
    EXPECT_EQ(r.parsed().at("error"),
              "the upload is larger than the limit of 10485760 bytes ([limits] max_bytes)");
    EXPECT_TRUE(backend_->accepted().empty());
    EXPECT_TRUE(backend_->parts_gone());
}

TEST_F(UploadServerTest, Answers413OverMaxBytesWhileStreamingAChunkedBody) {
    start();
    Request r;
    r.parts = {{"image", oversized_jpeg(11 * kMiB), "big.jpg"}};
    r.chunked = true;  // no Content-Length: only the streamed count can tell
    const Reply reply = perform(server_->port(), r);
    EXPECT_EQ(reply.status, 413) << reply.body << reply.error;
    EXPECT_EQ(reply.parsed().at("error"),
              "the image is larger than the limit of 10485760 bytes ([limits] max_bytes)");
    EXPECT_TRUE(backend_->accepted().empty());
    EXPECT_TRUE(backend_->parts_gone());
}

TEST_F(UploadServerTest, AcceptsAnImageOfExactlyMaxBytes) {
    backend_->max_bytes_ = jpeg_.size();
    start();
    Request r;
    r.parts = {{"image", jpeg_, "exact.jpg"}};
    r.chunked = true;
    EXPECT_EQ(perform(server_->port(), r).status, 202);
    backend_->max_bytes_ = jpeg_.size() - 1;
    EXPECT_EQ(perform(server_->port(), r).status, 413);
    EXPECT_TRUE(backend_->parts_gone());
}

TEST_F(UploadServerTest, RequiresTheBearerTokenWhenOneIsSet) {
    start();
    server_->set_token("s3cret");
    const Reply none = upload({{"image", jpeg_, "a.jpg"}});
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(none.headers.at("www-authenticate"), "Bearer realm=\"imgspool\"");
    EXPECT_EQ(none.parsed().at("error"), "a bearer token is required");
    const Reply wrong = upload({{"image", jpeg_, "a.jpg"}}, "s3cre");
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(wrong.parsed().at("error"), "wrong bearer token");
    Request get;
    get.method = "GET";
    get.path = "/images/00000000-0000-4000-8000-000000000001";
    EXPECT_EQ(perform(server_->port(), get).status, 401);
    EXPECT_TRUE(backend_->accepted().empty());

    EXPECT_EQ(upload({{"image", jpeg_, "a.jpg"}}, "s3cret").status, 202);
    server_->set_token("");  // reloaded: no token any more
    EXPECT_EQ(upload({{"image", jpeg_, "a.jpg"}}).status, 202);
    EXPECT_TRUE(backend_->parts_gone());
}

TEST_F(UploadServerTest, Answers503WithRetryAfterWhileBusy) {
    start();
    backend_->set_busy("queue full (64 jobs waiting)");
    const Reply r = upload_image(jpeg_);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.headers.at("retry-after"), "1");
    EXPECT_EQ(r.parsed().at("error"), "queue full (64 jobs waiting)");
    Request job;
    job.path = "/jobs";
    job.body = R"({"source": "https://example.test/a.jpg"})";
    job.content_type = "application/json";
    EXPECT_EQ(perform(server_->port(), job).status, 503);
    EXPECT_TRUE(backend_->accepted().empty());

    // Busy found only when accepting (the queue filled meanwhile): a transient error.
    backend_->set_busy(std::nullopt);
    backend_->set_accept_error(make_transient(Stage::claim, "database is locked"));
    const Reply late = upload_image(jpeg_);
    EXPECT_EQ(late.status, 503);
    EXPECT_EQ(late.headers.at("retry-after"), "1");
    backend_->set_accept_error(make_error(Stage::config, "no profile \"nope\""));
    const Reply refused = upload_image(jpeg_);
    EXPECT_EQ(refused.status, 400);
    EXPECT_EQ(refused.parsed().at("error"), "no profile \"nope\"");
    EXPECT_TRUE(backend_->parts_gone());
}

TEST_F(UploadServerTest, ShowsAKnownImageAndAnswers404ForOthers) {
    start();
    const Reply posted = upload({{"image", jpeg_, "fox.jpg"},
                                 {"user_id", "u-17", ""},
                                 {"metadata", R"({"prompt":"fox"})", ""}});
    ASSERT_EQ(posted.status, 202);
    Request get;
    get.method = "GET";
    get.path = posted.parsed().at("statusUrl");
    const Reply r = perform(server_->port(), get);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    const json body = r.parsed();
    EXPECT_EQ(body.at("uploadId"), posted.parsed().at("uploadId"));
    EXPECT_EQ(body.at("status"), "complete");
    EXPECT_EQ(body.at("progress"), 100);
    EXPECT_EQ(body.at("error"), nullptr);
    EXPECT_EQ(body.at("source"), "fox.jpg");
    EXPECT_EQ(body.at("metadata"), (json{{"prompt", "fox"}}));
    EXPECT_EQ(body.at("userId"), "u-17");
    EXPECT_EQ(body.at("urls"), (json{{"small.webp", "https://cdn.test/small.webp"},
                                     {"large.jpg", "https://cdn.test/large.jpg"}}));
    ASSERT_EQ(body.at("variants").size(), 2u);
    EXPECT_EQ(body.at("variants")[0], (json{{"variant", "small"},
                                            {"format", "webp"},
                                            {"width", 320},
                                            {"height", 240},
                                            {"bytes", 1234},
                                            {"url", "https://cdn.test/small.webp"}}));

    get.path = "/images/00000000-0000-4000-8000-000000000999";
    const Reply unknown = perform(server_->port(), get);
    EXPECT_EQ(unknown.status, 404);
    EXPECT_EQ(unknown.parsed().at("error"),
              "no job with upload id \"00000000-0000-4000-8000-000000000999\"");
    get.path = "/images/..%2F..%2Fetc";
    EXPECT_EQ(perform(server_->port(), get).status, 404);
    get.path = "/nothing-here";
    EXPECT_EQ(perform(server_->port(), get).status, 404);
}

// A record that cannot be read (the database is down) is no unknown job: 503 + Retry-After
// while it passes, 500 when it does not, and 404 again once the backend answers.
TEST_F(UploadServerTest, AnUnreadableRecordIs503WithRetryAfterNot404) {
    start();
    Request get;
    get.method = "GET";
    get.path = "/images/00000000-0000-4000-8000-000000000999";
    backend_->set_image_error(make_transient(Stage::commit, "the job record cannot be read now"));
    const Reply down = perform(server_->port(), get);
    EXPECT_EQ(down.status, 503) << down.body;
    EXPECT_EQ(down.headers.at("retry-after"), "1");
    EXPECT_EQ(down.parsed().at("error"), "the job record cannot be read now");

    backend_->set_image_error(make_error(Stage::commit, "the job record cannot be read"));
    EXPECT_EQ(perform(server_->port(), get).status, 500);

    backend_->set_image_error(std::nullopt);
    EXPECT_EQ(perform(server_->port(), get).status, 404);
}

TEST_F(UploadServerTest, Answers405ForOtherMethods) {
    start();
    Request r;
    r.method = "DELETE";
    r.path = "/images/00000000-0000-4000-8000-000000000001";
    const Reply del = perform(server_->port(), r);
    EXPECT_EQ(del.status, 405);
    EXPECT_EQ(del.headers.at("allow"), "GET, HEAD");
    r.method = "GET";
    r.path = "/images/upload";  // /images/upload is POST only, never an id
    const Reply get = perform(server_->port(), r);
    EXPECT_EQ(get.status, 405);
    EXPECT_EQ(get.headers.at("allow"), "POST");
    r.path = "/jobs";
    EXPECT_EQ(perform(server_->port(), r).status, 405);
}

TEST_F(UploadServerTest, AcceptsAJobManifestAsAJobJsonFile) {
    start();
    const std::string manifest =
        R"({"source": "https://example.test/a.jpg", "user_id": "u-1", "metadata": {"p": 1}})";
    Request r;
    r.path = "/jobs";
    r.body = manifest;
    r.content_type = "application/json; charset=utf-8";
    const Reply reply = perform(server_->port(), r);
    ASSERT_EQ(reply.status, 202) << reply.body;
    const json body = reply.parsed();
    EXPECT_EQ(body.at("statusUrl"), "/images/" + body.at("uploadId").get<std::string>());
    const auto got = backend_->accepted();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].extension, ".job.json");
    EXPECT_EQ(got[0].bytes, manifest.size());
    EXPECT_EQ(backend_->taken_bytes(0), manifest);
    EXPECT_EQ(backend_->part_files(), 0u);
}

TEST_F(UploadServerTest, RefusesBadManifestsWith400And413) {
    start();
    Request r;
    r.path = "/jobs";
    r.content_type = "application/json";
    r.body = R"({"source": )";
    const Reply bad = perform(server_->port(), r);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.parsed().at("error"), "manifest: not a JSON object");
    r.body = R"({"profile": "x"})";
    EXPECT_EQ(perform(server_->port(), r).parsed().at("error"), "manifest: \"source\" is required");
    r.body = R"({"source": "https://example.test/a.jpg"})";
    r.content_type = "text/plain";
    EXPECT_EQ(perform(server_->port(), r).status, 400);
    r.content_type = "application/json";
    r.body =
        R"({"source": "https://example.test/a.jpg", "pad": ")" + std::string(70000, 'p') + "\"}";
    EXPECT_EQ(perform(server_->port(), r).status, 413);
    r.chunked = true;  // the streamed count too
    const Reply chunked = perform(server_->port(), r);
    EXPECT_EQ(chunked.status, 413) << chunked.body << chunked.error;
    EXPECT_TRUE(backend_->accepted().empty());
    EXPECT_TRUE(backend_->parts_gone());
}

TEST_F(UploadServerTest, RemovesThePartFileWhenTheClientGoesAway) {
    start();
    SlowBody body;
    body.prefix = jpeg_;
    body.total = 8 * kMiB;
    body.abort_after = 2 * kMiB;
    bool part_seen = false;
    body.before_abort = [&] {
        // The upload is being streamed to disk at this point.
        for (int i = 0; i < 500 && !part_seen; ++i) {
            part_seen = backend_->part_files() == 1;
            if (!part_seen) std::this_thread::sleep_for(10ms);
        }
    };
    Request r;
    r.streamed_image = &body;
    const Reply reply = perform(server_->port(), r);
    EXPECT_FALSE(reply.error.empty());  // the client aborted: no answer
    EXPECT_TRUE(part_seen);
    EXPECT_TRUE(backend_->parts_gone());
    EXPECT_TRUE(backend_->accepted().empty());
}

TEST_F(UploadServerTest, CutsOffARequestThatTakesLongerThanTheTimeout) {
    UploadServerOptions options;
    options.request_timeout = 1s;
    start(options);
    SlowBody body;
    body.prefix = jpeg_;
    body.total = 4 * kMiB;
    body.pause = 100ms;  // 64 KiB every 100 ms: 6.4 s for the whole body
    Request r;
    r.streamed_image = &body;
    const auto started = std::chrono::steady_clock::now();
    const Reply reply = perform(server_->port(), r);
    EXPECT_FALSE(reply.error.empty()) << reply.status << " " << reply.body;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);
    EXPECT_LT(body.sent, body.total);
    EXPECT_TRUE(backend_->parts_gone());
    EXPECT_TRUE(backend_->accepted().empty());
}

TEST_F(UploadServerTest, ClosesAConnectionThatFallsSilent) {
    UploadServerOptions options;
    options.idle_timeout_s = 1;
    start(options);
    // Headers begun and never finished: the slow-loris pattern.
    const fs::UniqueFd fd =
        open_connection(server_->port(), "POST /images/upload HTTP/1.1\r\nHost: x\r\n");
    const auto closed_after = time_to_close(fd, 10s);
    EXPECT_GE(closed_after, 500ms);
    EXPECT_LT(closed_after, 5s);
}

TEST_F(UploadServerTest, RefusesConnectionsOverTheLimit) {
    UploadServerOptions options;
    options.max_connections = 2;
    start(options);
    const std::string start_of_request = "GET /images/x HTTP/1.1\r\nHost: x\r\n";
    std::vector<fs::UniqueFd> held;
    held.push_back(open_connection(server_->port(), start_of_request));
    held.push_back(open_connection(server_->port(), start_of_request));
    std::this_thread::sleep_for(200ms);  // both accepted by the server's thread
    const fs::UniqueFd third = open_connection(server_->port(), start_of_request);
    EXPECT_LT(time_to_close(third, 10s), 2s);  // closed at once, not served
    held.clear();
    Reply r;
    for (int i = 0; i < 100; ++i) {  // the server notices the two closed connections
        r = upload_image(jpeg_);
        if (r.status == 202) break;
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(r.status, 202);
}

TEST_F(UploadServerTest, NeverHoldsAnUploadWholeInMemory) {
    start();
    // Warm up: libvips, libcurl and the server's first thread allocate once.
    ASSERT_EQ(upload_image(jpeg_).status, 202);
    SlowBody body;  // generated as curl asks for it: the client holds no copy either
    body.prefix = jpeg_;
    body.total = 9 * kMiB;  // a JPEG followed by a 9 MiB trailer: whole, and within max_bytes
    {
        std::ofstream reset("/proc/self/clear_refs");
        reset << "5";
    }
    const long before = peak_rss_kib();
    ASSERT_LT(before - current_rss_kib(), 1024) << "cannot reset VmHWM on this kernel";
    Request r;
    r.streamed_image = &body;
    const Reply reply = perform(server_->port(), r);
    ASSERT_EQ(reply.status, 202) << reply.body << reply.error;
    EXPECT_EQ(reply.parsed().at("originalSize"), 9 * kMiB);
    const long grew_kib = peak_rss_kib() - before;
    RecordProperty("peak_rss_growth_kib", static_cast<int>(grew_kib));
    EXPECT_LT(grew_kib, 4 * 1024) << "a 9 MiB upload raised the peak RSS by " << grew_kib << " KiB";
    EXPECT_EQ(backend_->accepted().at(1).bytes, 9 * kMiB);
}

TEST_F(UploadServerTest, Accepts50ConcurrentUploads) {
    start();
    constexpr int kClients = 50;
    std::vector<std::thread> clients;
    std::vector<long> status(kClients, 0);
    std::vector<std::string> ids(kClients);
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back([&, i] {
            const Reply r = upload_image(jpeg_, "photo-" + std::to_string(i) + ".jpg");
            status[i] = r.status;
            const json body = r.parsed();
            if (body.is_object() && body.contains("uploadId")) ids[i] = body.at("uploadId");
        });
    }
    for (auto& t : clients) t.join();
    for (int i = 0; i < kClients; ++i) EXPECT_EQ(status[i], 202) << "client " << i;
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());  // one id each
    EXPECT_EQ(backend_->accepted().size(), static_cast<std::size_t>(kClients));
    EXPECT_EQ(backend_->part_files(), 0u);
}

TEST_F(UploadServerTest, ReportsEveryAnswerOnce) {
    start();
    ASSERT_EQ(upload_image(jpeg_).status, 202);
    ASSERT_EQ(upload_image("text").status, 400);
    Request get;
    get.method = "GET";
    get.path = "/images/00000000-0000-4000-8000-000000000001";
    ASSERT_EQ(perform(server_->port(), get).status, 200);
    std::lock_guard lock(answers_mutex_);
    EXPECT_EQ(answers_, (std::vector<std::pair<std::string, unsigned>>{
                            {"upload", 202}, {"upload", 400}, {"image", 200}}));
}

TEST_F(UploadServerTest, StartFailsWithTheReasonWhenThePortIsTaken) {
    start();
    UploadServerOptions options;
    options.bind = "127.0.0.1";
    options.port = server_->port();
    UploadServer second(options, *backend_);
    Status started = second.start();
    ASSERT_FALSE(started.ok());
    EXPECT_EQ(started.error().stage, Stage::config);
    EXPECT_NE(started.error().reason.find("choose another [http] port"), std::string::npos);
    UploadServerOptions bad;
    bad.bind = "localhost";
    EXPECT_EQ(UploadServer(bad, *backend_).start().error().reason,
              "http bind address \"localhost\" is not an IPv4 or IPv6 address (e.g. 127.0.0.1)");
}

}  // namespace
}  // namespace imgspool::upload
