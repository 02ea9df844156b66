#include "store/s3/transfer_engine.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

#include "common/log.hpp"
#include "store/s3/digest.hpp"
#include "store/s3/redact.hpp"
#include "store/s3/s3_error.hpp"

namespace imgspool::s3 {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxBodyKept = 64 * 1024;
// A transfer that moves less than one byte a second for this long is cut even when its request
// timeout is longer: a server that accepted the connection and went silent, or trickles.
constexpr long kStallSeconds = 30;
constexpr int kMaxPollMs = 1000;

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

struct TransferEngine::Batch {
    const std::vector<S3Request>* requests = nullptr;
    BatchOptions options;
    RetryPolicy policy;
    Clock::time_point deadline = Clock::time_point::max();
    std::vector<std::unique_ptr<Transfer>> transfers;
    int running = 0;
    std::optional<Error> failure;
    bool done = false;  // guarded by the engine's mutex
};

struct TransferEngine::Transfer {
    enum class State { waiting, running, finished };

    Batch* batch = nullptr;
    const S3Request* request = nullptr;
    std::string origin;  // the endpoint's, for errors: the configured bucket's or request->bucket's
    Target target;
    std::string payload_sha256;
    std::string content_md5;
    int attempts = 0;
    State state = State::waiting;
    RequestFate fate = RequestFate::not_written;
    Clock::time_point not_before{};
    CurlEasy easy;
    CurlSlist header_list;
    std::size_t read_offset = 0;
    S3Response response;
    bool body_out_of_memory = false;  // body_out could not grow: curl was told to abort
    char error_buffer[CURL_ERROR_SIZE] = {};

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

    // Whether the answer's body goes to request->body_out: a 2xx answer to a request that asks so.
    bool streams_body() const {
        if (request->body_out == nullptr) return false;
        long status = 0;
        curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
        return status >= 200 && status < 300;
    }

    // Appends to body_out, or marks the answer too large. The string never grows past the limit
    // (its capacity included), so a body cut at the limit is all the memory it ever took.
    bool keep_body(const char* data, std::size_t n) {
        std::string& out = *request->body_out;
        const std::uint64_t limit = request->body_limit;
        if (out.size() > limit || n > limit - out.size()) {
            response.body_too_large = true;
            return false;
        }
        if (out.size() + n > out.capacity()) {
            const std::uint64_t doubled =
                std::max<std::uint64_t>(2 * out.capacity(), out.size() + n);
            grow(out, static_cast<std::size_t>(std::min(limit, doubled)));
        }
        out.append(data, n);
        return true;
    }

    // At the end of a 2xx answer's headers: a Content-Length over body_limit is refused before
    // any of the body is read; one within it is reserved at once.
    bool accept_announced_length() {
        std::uint64_t length = 0;
        const std::string text = response.header("content-length");
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
        if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return true;
        if (length > request->body_limit) {
            response.body_too_large = true;
            return false;
        }
        if (length > request->body_out->capacity()) {
            grow(*request->body_out, static_cast<std::size_t>(length));
        }
        return true;
    }

    // Gives out exactly `capacity`: reserve() on a string that already has some may round up
    // to twice that (libstdc++ does), past the limit; a fresh string gets what it asks for.
    static void grow(std::string& out, std::size_t capacity) {
        std::string grown;
        grown.reserve(capacity);
        grown.append(out);
        out.swap(grown);
    }

    // Runs a body step inside a C callback, which no exception may leave: an allocation that
    // fails (a limit of gigabytes on a small machine) aborts the transfer instead.
    template <class Step>
    bool guarded(Step step) {
        try {
            return step();
        } catch (const std::bad_alloc&) {
            body_out_of_memory = true;
            return false;
        }
    }

    static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* self) {
        auto* t = static_cast<Transfer*>(self);
        const std::size_t n = size * count;
        if (t->streams_body()) return t->guarded([&] { return t->keep_body(data, n); }) ? n : 0;
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
        if (line == "\r\n" || line == "\n") {  // the end of the headers
            if (t->streams_body() && !t->guarded([t] { return t->accept_announced_length(); })) {
                return 0;  // curl aborts
            }
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

TransferEngine::TransferEngine(const S3Config& config, std::atomic<std::uint64_t>& retries)
    : config_(config),
      endpoint_(endpoint_for(config)),
      credentials_{config.access_key_id, config.secret_access_key, config.session_token},
      retries_(retries),
      rng_(std::random_device{}()) {
    init_curl_once();
    multi_.reset(curl_multi_init());
    if (!multi_) throw std::runtime_error("curl_multi_init failed: out of memory");
    // The store never has more than max_connections transfers running (start_due_transfers);
    // libcurl keeps that many connections open for reuse once they are idle.
    const long pool = std::max(1, config.max_connections);
    curl_multi_setopt(multi_.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, pool);
    curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, pool);
    thread_ = std::thread([this] { loop(); });
}

TransferEngine::~TransferEngine() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    curl_multi_wakeup(multi_.get());
    thread_.join();
}

BatchResult TransferEngine::run(const std::vector<S3Request>& requests,
                                const BatchOptions& options) {
    BatchResult result;
    if (requests.empty()) return result;
    Batch batch;
    batch.requests = &requests;
    batch.options = options;
    batch.options.parallel = std::max(1, options.parallel);
    batch.policy =
        RetryPolicy{options.max_attempts, std::chrono::milliseconds(config_.retry_base_delay_ms),
                    std::chrono::milliseconds(config_.retry_max_delay_ms)};
    if (options.deadline.count() > 0) batch.deadline = Clock::now() + options.deadline;
    // The digests of large bodies are computed here, on the caller's thread, not the store's.
    for (const S3Request& req : requests) {
        auto t = std::make_unique<Transfer>();
        t->batch = &batch;
        t->request = &req;
        const Endpoint endpoint =
            req.bucket.empty() ? endpoint_ : endpoint_for(config_, req.bucket);
        t->origin = endpoint.origin;
        t->target = target_for(endpoint, req.key, req.query);
        t->payload_sha256 = sha256_hex(req.body);
        if (has_body(req.method)) t->content_md5 = md5_base64(req.body);
        batch.transfers.push_back(std::move(t));
    }
    {
        std::unique_lock lock(mutex_);
        if (stopping_) {
            result.failure = make_transient(Stage::store, "the S3 store is shutting down");
            result.fates.assign(requests.size(), RequestFate::not_written);
            result.responses.resize(requests.size());
            return result;
        }
        handed_over_.push_back(&batch);
    }
    curl_multi_wakeup(multi_.get());
    {
        std::unique_lock lock(mutex_);
        batch_done_.wait(lock, [&batch] { return batch.done; });
    }
    for (auto& t : batch.transfers) {
        result.responses.push_back(std::move(t->response));
        result.fates.push_back(t->fate);
    }
    result.failure = std::move(batch.failure);
    return result;
}

void TransferEngine::loop() {
    for (;;) {
        bool stop = false;
        {
            std::lock_guard lock(mutex_);
            stop = stopping_;
        }
        admit_new_batches();
        if (stop) {
            for (Batch* b : active_) {
                fail_batch(*b, make_transient(Stage::store, "the S3 store is shutting down"));
                for (auto& t : b->transfers) {
                    if (t->state == Transfer::State::running) detach(*t);
                    t->state = Transfer::State::finished;
                }
            }
            retire_finished_batches();
            return;
        }
        const auto now = Clock::now();
        expire_deadlines(now);
        start_due_transfers(now);
        int still_running = 0;
        curl_multi_perform(multi_.get(), &still_running);
        collect_finished();
        retire_finished_batches();
        curl_multi_poll(multi_.get(), nullptr, 0, poll_timeout_ms(Clock::now()), nullptr);
    }
}

void TransferEngine::admit_new_batches() {
    std::deque<Batch*> arrived;
    {
        std::lock_guard lock(mutex_);
        arrived.swap(handed_over_);
    }
    for (Batch* b : arrived) {
        if (b->options.urgent) {
            active_.insert(active_.begin(), b);
        } else {
            active_.push_back(b);
        }
    }
}

void TransferEngine::expire_deadlines(Clock::time_point now) {
    for (Batch* b : active_) {
        if (b->failure || now < b->deadline) continue;
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(b->options.deadline);
        fail_batch(*b, make_transient(Stage::store, b->requests->front().label +
                                                        ": no answer from the S3 "
                                                        "endpoint " +
                                                        b->transfers.front()->origin + " within " +
                                                        std::to_string(ms.count()) + " ms"));
        for (auto& t : b->transfers) {
            if (t->state != Transfer::State::running) continue;
            long sent = 0;
            curl_easy_getinfo(t->easy.get(), CURLINFO_REQUEST_SIZE, &sent);
            if (sent > 0 && t->fate == RequestFate::not_written) {
                t->fate = RequestFate::maybe_written;
            }
            detach(*t);
            t->state = Transfer::State::finished;
        }
    }
}

void TransferEngine::start_due_transfers(Clock::time_point now) {
    const int pool = std::max(1, config_.max_connections);
    for (Batch* b : active_) {
        if (b->failure) continue;
        for (auto& t : b->transfers) {
            if (in_flight_ >= pool) return;
            if (b->running >= b->options.parallel) break;
            if (t->state != Transfer::State::waiting || t->not_before > now) continue;
            if (!start_attempt(*t)) {
                fail_batch(*b, make_transient(Stage::store,
                                              t->request->label +
                                                  ": cannot set up the HTTP request (libcurl "
                                                  "out of memory)"));
                t->state = Transfer::State::finished;
                break;
            }
        }
    }
}

void TransferEngine::collect_finished() {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
        if (msg->msg != CURLMSG_DONE) continue;
        Transfer* t = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
        const CURLcode result = msg->data.result;  // msg is invalid once the handle is removed
        finish_attempt(*t, result);
    }
}

void TransferEngine::retire_finished_batches() {
    std::vector<Batch*> over;
    for (Batch* b : active_) {
        if (b->running > 0) continue;
        const bool all_finished =
            std::all_of(b->transfers.begin(), b->transfers.end(),
                        [](const auto& t) { return t->state == Transfer::State::finished; });
        if (all_finished || b->failure) over.push_back(b);
    }
    if (over.empty()) return;
    for (Batch* b : over) {
        active_.erase(std::find(active_.begin(), active_.end(), b));
        // The easy handles use the share, so they are released here, on the store thread.
        for (auto& t : b->transfers) {
            t->easy.reset();
            t->header_list.reset();
        }
    }
    {
        std::lock_guard lock(mutex_);
        for (Batch* b : over) b->done = true;
    }
    batch_done_.notify_all();
}

int TransferEngine::poll_timeout_ms(Clock::time_point now) const {
    const int pool = std::max(1, config_.max_connections);
    auto wait = std::chrono::milliseconds(kMaxPollMs);
    const auto until = [&](Clock::time_point when) {
        if (when <= now) return std::chrono::milliseconds(0);
        return std::chrono::ceil<std::chrono::milliseconds>(when - now);
    };
    for (const Batch* b : active_) {
        if (b->failure) continue;
        if (b->deadline != Clock::time_point::max()) wait = std::min(wait, until(b->deadline));
        if (in_flight_ >= pool || b->running >= b->options.parallel) continue;
        for (const auto& t : b->transfers) {
            if (t->state == Transfer::State::waiting) wait = std::min(wait, until(t->not_before));
        }
    }
    return static_cast<int>(wait.count());
}

bool TransferEngine::start_attempt(Transfer& t) {
    const S3Request& req = *t.request;
    const BatchOptions& options = t.batch->options;
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
    t.body_out_of_memory = false;
    if (req.body_out != nullptr) req.body_out->clear();  // a retry starts the body over
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
    curl_easy_setopt(e, CURLOPT_SHARE, share_.handle());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list.get());
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options.request_timeout.count()));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, kStallSeconds);
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
    ++t.batch->running;
    ++in_flight_;
    return true;
}

void TransferEngine::detach(Transfer& t) {
    if (t.state != Transfer::State::running) return;
    curl_multi_remove_handle(multi_.get(), t.easy.get());
    t.state = Transfer::State::waiting;
    --t.batch->running;
    --in_flight_;
}

void TransferEngine::finish_attempt(Transfer& t, CURLcode result) {
    detach(t);
    Batch& b = *t.batch;
    const S3Request& req = *t.request;
    if (t.response.body_too_large) {  // cut on purpose: the same object is as large next time
        t.state = Transfer::State::finished;
        fail_batch(b, make_error(Stage::store, req.label + ": answer larger than " +
                                                   std::to_string(req.body_limit) + " bytes"));
        return;
    }
    if (t.body_out_of_memory) {  // memory may be free again later: the job is deferred
        t.state = Transfer::State::finished;
        fail_batch(b, make_transient(Stage::store, req.label + ": out of memory for the answer (" +
                                                       std::to_string(req.body_limit) +
                                                       " bytes allowed)"));
        return;
    }
    bool retryable = false;
    bool transient = false;
    std::string reason;
    if (result != CURLE_OK) {
        retryable = is_retryable_transport(result);
        transient = is_transient_transport(result);
        long sent = 0;  // request bytes sent: none means the server cannot have acted on it
        curl_easy_getinfo(t.easy.get(), CURLINFO_REQUEST_SIZE, &sent);
        if (sent > 0 && t.fate == RequestFate::not_written) t.fate = RequestFate::maybe_written;
        reason = "cannot reach the S3 endpoint " + t.origin + ": " +
                 (t.error_buffer[0] != '\0' ? std::string(t.error_buffer)
                                            : std::string(curl_easy_strerror(result))) +
                 " (curl error " + std::to_string(static_cast<int>(result)) + ")";
    } else {
        long status = 0;
        curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
        t.response.status = status;
        const bool error_document = req.method == "POST" && is_error_document(t.response.body);
        if ((status >= 200 && status < 300 && !error_document) ||
            (req.missing_ok && status == 404)) {
            t.response.attempts = t.attempts;
            t.state = Transfer::State::finished;
            t.fate = RequestFate::written;
            return;
        }
        S3ErrorBody error = parse_error_body(t.response.body);
        if (error.code.empty()) error.code = code_for_status(status, req.key.empty());
        if (error.request_id.empty()) error.request_id = t.response.header("x-amz-request-id");
        retryable = is_retryable_status(status, error.code);
        transient = is_transient_status(status, error.code);
        reason = describe_http_error(status, error);
    }
    reason = redact(std::move(reason), credentials_);
    if (retryable && !b.failure && b.policy.may_retry(t.attempts)) {
        const auto delay = b.policy.backoff(t.attempts, rng_);
        t.not_before = Clock::now() + delay;
        retries_.fetch_add(1, std::memory_order_relaxed);
        log::warn("S3 request failed, retrying",
                  {{"request", req.label},
                   {"attempt", t.attempts},
                   {"reason", reason},
                   {"retry_in_ms", static_cast<long long>(delay.count())}});
        return;
    }
    t.state = Transfer::State::finished;
    fail_batch(b, Error{Stage::store,
                        req.label + ": " + reason + attempts_note(t.attempts, retryable),
                        {},
                        transient});
}

void TransferEngine::fail_batch(Batch& batch, Error error) {
    if (!batch.failure) batch.failure = std::move(error);
}

}  // namespace imgspool::s3
