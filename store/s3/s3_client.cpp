#include "store/s3/s3_client.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

#include "common/log.hpp"
#include "store/s3/curl_share.hpp"
#include "store/s3/digest.hpp"
#include "store/s3/redact.hpp"
#include "store/s3/s3_error.hpp"

namespace imgspool::s3 {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxBodyKept = 64 * 1024;

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool has_body(std::string_view method) {
    return method == "PUT" || method == "POST";
}

std::string attempts_note(int attempts, bool gave_up) {
    const std::string count =
        std::to_string(attempts) + (attempts == 1 ? " attempt)" : " attempts)");
    return gave_up ? " (gave up after " + count : " (after " + count;
}

}  // namespace

std::string S3Response::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (n == name) return v;
    }
    return {};
}

struct S3Client::Transfer {
    enum class State { waiting, running, done };

    const S3Request* request = nullptr;
    CURLM* multi = nullptr;
    Target target;
    std::string payload_sha256;
    std::string content_md5;
    int attempts = 0;
    State state = State::waiting;
    Clock::time_point not_before{};
    CurlEasy easy;
    CurlSlist header_list;
    std::size_t read_offset = 0;
    S3Response response;
    char error_buffer[CURL_ERROR_SIZE] = {};

    ~Transfer() { detach(); }

    void detach() {
        if (state == State::running && easy) curl_multi_remove_handle(multi, easy.get());
    }

    static std::size_t on_read(char* out, std::size_t size, std::size_t count, void* self) {
        auto* t = static_cast<Transfer*>(self);
        const std::string_view body = t->request->body;
        const std::size_t n = std::min(size * count, body.size() - t->read_offset);
        std::memcpy(out, body.data() + t->read_offset, n);
        t->read_offset += n;
        return n;
    }

    // curl rewinds the body when it resends on a fresh connection (a reused one was closed).
    static int on_seek(void* self, curl_off_t offset, int origin) {
        auto* t = static_cast<Transfer*>(self);
        if (origin != SEEK_SET || offset < 0 ||
            static_cast<std::size_t>(offset) > t->request->body.size()) {
            return CURL_SEEKFUNC_CANTSEEK;
        }
        t->read_offset = static_cast<std::size_t>(offset);
        return CURL_SEEKFUNC_OK;
    }

    static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* self) {
        auto* t = static_cast<Transfer*>(self);
        const std::size_t n = size * count;
        const std::size_t room = kMaxBodyKept - std::min(kMaxBodyKept, t->response.body.size());
        t->response.body.append(data, std::min(n, room));
        return n;
    }

    static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* self) {
        auto* t = static_cast<Transfer*>(self);
        const std::size_t n = size * count;
        std::string_view line(data, n);
        if (line.starts_with("HTTP/")) {
            t->response.headers.clear();  // a new status line (after 100 Continue)
            return n;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) return n;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
            value.remove_prefix(1);
        }
        while (!value.empty() &&
               (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
            value.remove_suffix(1);
        }
        t->response.headers.emplace_back(lower(line.substr(0, colon)), std::string(value));
        return n;
    }
};

S3Client::S3Client(const S3Config& config, CURLSH* share, std::atomic<std::uint64_t>& retries)
    : config_(config),
      endpoint_(endpoint_for(config)),
      credentials_{config.access_key_id, config.secret_access_key, config.session_token},
      policy_{config.max_attempts, std::chrono::milliseconds(config.retry_base_delay_ms),
              std::chrono::milliseconds(config.retry_max_delay_ms)},
      share_(share),
      retries_(retries),
      rng_(std::random_device{}()) {
    init_curl_once();
    multi_.reset(curl_multi_init());
    if (!multi_) throw std::runtime_error("curl_multi_init failed: out of memory");
}

bool S3Client::start_attempt(Transfer& t) {
    const S3Request& req = *t.request;
    NameValues headers{{"Host", t.target.host}, {"x-amz-content-sha256", t.payload_sha256}};
    if (has_body(req.method)) headers.emplace_back("Content-MD5", t.content_md5);
    headers.insert(headers.end(), req.headers.begin(), req.headers.end());
    SigningInput input{req.method, t.target.path, req.query, std::move(headers), t.payload_sha256};
    const std::string authorization = sign(input, credentials_, Scope{config_.region, "s3"},
                                           amz_date(std::chrono::system_clock::now()));

    t.easy.reset(curl_easy_init());
    t.header_list.reset();
    t.read_offset = 0;
    t.response = S3Response{};
    t.error_buffer[0] = '\0';
    if (!t.easy) return false;
    for (const auto& [name, value] : input.headers) {
        if (!append_header(t.header_list, (name + ": " + value).c_str())) return false;
    }
    if (!append_header(t.header_list, ("Authorization: " + authorization).c_str()) ||
        !append_header(t.header_list, "Expect:")) {
        return false;
    }

    CURL* e = t.easy.get();
    curl_easy_setopt(e, CURLOPT_URL, t.target.url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, share_);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list.get());
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout_ms));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.request_timeout_ms));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    if (req.method == "HEAD") {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (has_body(req.method)) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, &Transfer::on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, &t);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &Transfer::on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, &t);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
        if (req.method == "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "POST");
    } else if (req.method != "GET") {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    if (curl_multi_add_handle(multi_.get(), e) != CURLM_OK) return false;
    t.state = Transfer::State::running;
    ++t.attempts;
    return true;
}

std::optional<Error> S3Client::finish_attempt(Transfer& t, CURLcode result) {
    t.detach();
    t.state = Transfer::State::waiting;
    const S3Request& req = *t.request;
    bool retryable = false;
    std::string reason;
    if (result != CURLE_OK) {
        retryable = is_retryable_transport(result);
        reason = "cannot reach the S3 endpoint " + endpoint_.origin + ": " +
                 (t.error_buffer[0] != '\0' ? std::string(t.error_buffer)
                                            : std::string(curl_easy_strerror(result))) +
                 " (curl error " + std::to_string(static_cast<int>(result)) + ")";
    } else {
        long status = 0;
        curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
        t.response.status = status;
        const bool error_document = req.method == "POST" && is_error_document(t.response.body);
        if (status >= 200 && status < 300 && !error_document) {
            t.response.attempts = t.attempts;
            t.state = Transfer::State::done;
            return std::nullopt;
        }
        S3ErrorBody error = parse_error_body(t.response.body);
        if (error.code.empty()) error.code = code_for_status(status, req.key.empty());
        if (error.request_id.empty()) error.request_id = t.response.header("x-amz-request-id");
        retryable = is_retryable_status(status, error.code);
        reason = describe_http_error(status, error);
    }
    reason = redact(std::move(reason), credentials_);
    if (retryable && policy_.may_retry(t.attempts)) {
        const auto delay = policy_.backoff(t.attempts, rng_);
        t.not_before = Clock::now() + delay;
        retries_.fetch_add(1, std::memory_order_relaxed);
        log::warn("S3 request failed, retrying",
                  {{"request", req.label},
                   {"attempt", t.attempts},
                   {"reason", reason},
                   {"retry_in_ms", static_cast<long long>(delay.count())}});
        return std::nullopt;
    }
    t.state = Transfer::State::done;
    return make_error(Stage::store,
                      req.label + ": " + reason + attempts_note(t.attempts, retryable));
}

Result<std::vector<S3Response>> S3Client::perform(const std::vector<S3Request>& requests) {
    std::vector<std::unique_ptr<Transfer>> transfers;
    transfers.reserve(requests.size());
    for (const S3Request& req : requests) {
        auto t = std::make_unique<Transfer>();
        t->request = &req;
        t->multi = multi_.get();
        t->target = target_for(endpoint_, req.key, req.query);
        t->payload_sha256 = sha256_hex(req.body);
        if (has_body(req.method)) t->content_md5 = md5_base64(req.body);
        transfers.push_back(std::move(t));
    }

    const int parallel = std::max(1, config_.parallel_uploads);
    std::size_t done = 0;
    int running = 0;
    while (done < transfers.size()) {
        const auto now = Clock::now();
        for (auto& t : transfers) {
            if (running >= parallel) break;
            if (t->state != Transfer::State::waiting || t->not_before > now) continue;
            if (!start_attempt(*t)) {
                return make_error(Stage::store, t->request->label +
                                                    ": cannot set up the HTTP request (libcurl "
                                                    "out of memory)");
            }
            ++running;
        }

        int still_running = 0;
        curl_multi_perform(multi_.get(), &still_running);
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
            if (msg->msg != CURLMSG_DONE) continue;
            Transfer* t = nullptr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
            const CURLcode result = msg->data.result;
            --running;
            if (auto failure = finish_attempt(*t, result)) return *failure;
            if (t->state == Transfer::State::done) ++done;
        }
        if (done == transfers.size()) break;

        std::optional<Clock::time_point> next_due;
        for (auto& t : transfers) {
            if (t->state == Transfer::State::waiting && (!next_due || t->not_before < *next_due)) {
                next_due = t->not_before;
            }
        }
        int wait_ms = 1000;
        if (next_due && running < parallel) {
            const auto until =
                std::chrono::duration_cast<std::chrono::milliseconds>(*next_due - Clock::now());
            wait_ms = static_cast<int>(std::clamp<long long>(until.count(), 0, 1000));
        }
        curl_multi_poll(multi_.get(), nullptr, 0, wait_ms, nullptr);
    }

    std::vector<S3Response> responses;
    responses.reserve(transfers.size());
    for (auto& t : transfers) responses.push_back(std::move(t->response));
    return responses;
}

Result<S3Response> S3Client::perform_one(const S3Request& request) {
    auto responses = perform({request});
    if (!responses) return responses.error();
    return std::move(responses.value().front());
}

}  // namespace imgspool::s3
