// Routing, authentication, limits and answers of the HTTP drop-in on libmicrohttpd.
//
// libmicrohttpd calls the access handler once after the headers, once per body chunk and once
// at the end, and a response can be queued only in the first and the last call. So answers that
// need no body (401, 404, 405, 413 by Content-Length, 503) go out at once, before the client
// sends its body; a rejection found in the body (not an image, too large while streaming) is
// remembered, the rest of the body drained, and the answer sent at the end.
#include "upload/upload_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cctype>
#include <cstdio>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include <microhttpd.h>
#include <nlohmann/json.hpp>

#include "common/bind_address.hpp"
#include "common/log.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/validate.hpp"
#include "upload/api_json.hpp"
#include "upload/form_upload.hpp"
#include "watcher/whole_file.hpp"

namespace imgspool::upload {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kFormOverhead = 64 * 1024;  // boundaries, part headers, text fields
constexpr std::uint64_t kJobMax = 64 * 1024;        // a manifest (pipeline/manifest.hpp)
// After a rejection, the rest of the body is read and dropped so the client sees the answer;
// a client that keeps sending past this is cut off instead.
constexpr std::uint64_t kDrainMax = 4 * 1024 * 1024;

enum class Endpoint { upload, jobs, image, other };

const char* endpoint_name(Endpoint e) {
    switch (e) {
        case Endpoint::upload:
            return "upload";
        case Endpoint::jobs:
            return "jobs";
        case Endpoint::image:
            return "image";
        case Endpoint::other:
            break;
    }
    return "other";
}

// What one request carries from its first call to libmicrohttpd's completion notice, which
// destroys it (and with it the post processor and any .part file) however the request ended.
struct RequestState {
    Endpoint endpoint = Endpoint::other;
    Clock::time_point started = Clock::now();
    std::chrono::seconds timeout{120};
    std::uint64_t body_limit = 0;  // body bytes allowed
    std::uint64_t received = 0;    // body bytes seen
    std::uint64_t rejected_at = 0;
    std::optional<Rejection> rejected;
    std::filesystem::path temp_dir;
    std::string part_owner;  // names the .part files
    Limits limits;
    std::unique_ptr<FormUpload> form;  // POST /images/upload
    std::string job;                   // POST /jobs: the manifest, at most kJobMax bytes
    std::string client;                // the client's address, for the logs
    bool answered = false;             // a response was queued
};

struct Answer {
    unsigned status = MHD_HTTP_OK;
    std::string body;
    std::vector<std::pair<const char*, std::string>> headers;
    std::string reason;  // errors: for the log
};

Answer error_answer(unsigned status, std::string_view reason) {
    Answer a{status, error_json(reason), {}, std::string(reason)};
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) a.headers.emplace_back("Retry-After", "1");
    if (status == MHD_HTTP_UNAUTHORIZED) {
        a.headers.emplace_back(MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"imgspool\"");
    }
    return a;
}

// A failed step's error as an answer: transient faults pass (503, try again), others are the
// request's fault (400) unless they are the server's own (500).
Answer failure_answer(const Error& e, unsigned permanent_status = MHD_HTTP_BAD_REQUEST) {
    return error_answer(e.transient ? MHD_HTTP_SERVICE_UNAVAILABLE : permanent_status, e.reason);
}

std::string header(MHD_Connection* c, const char* name) {
    const char* v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "";
}

// The media type of a Content-Type value, lower-cased and without parameters.
std::string media_type(std::string value) {
    value = value.substr(0, value.find(';'));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return value;
}

std::optional<std::uint64_t> content_length(MHD_Connection* c) {
    const std::string v = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v.empty()) return std::nullopt;
    try {
        return std::stoull(v);
    } catch (const std::exception&) {
        return std::nullopt;  // libmicrohttpd has already refused a malformed length
    }
}

std::string client_address(MHD_Connection* c) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr) return "";
    char text[INET6_ADDRSTRLEN] = "";
    if (info->client_addr->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(info->client_addr)->sin_addr, text,
                  sizeof text);
    } else if (info->client_addr->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(info->client_addr)->sin6_addr,
                  text, sizeof text);
    }
    return text;
}

// Upload ids are UUIDs; anything else is not asked for.
bool plausible_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        const bool ok =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
        if (!ok) return false;
    }
    return true;
}

Result<std::string> compact_metadata(const std::string& text) {
    if (text.empty()) return std::string();
    const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
        return make_error(Stage::validate, "form field \"metadata\" must be a JSON object");
    }
    return parsed.dump();
}

}  // namespace

struct UploadServerCallbacks {
    static void log(void* cls, const char* format, va_list args) {
        char buf[512];
        std::vsnprintf(buf, sizeof buf, format, args);
        std::string message(buf);
        while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
            message.pop_back();
        }
        static_cast<UploadServer*>(cls)->record_mhd_error(std::move(message));
    }

    static MHD_Result send(UploadServer& server, MHD_Connection* connection, RequestState& state,
                           const Answer& a) {
        if (server.options_.on_answer)
            server.options_.on_answer(endpoint_name(state.endpoint), a.status);
        if (a.status >= 400 && state.endpoint != Endpoint::other) {
            log::info("upload request refused", {{"endpoint", endpoint_name(state.endpoint)},
                                                 {"status", static_cast<long long>(a.status)},
                                                 {"reason", a.reason},
                                                 {"client", state.client}});
        }
        struct ResponseDeleter {
            void operator()(MHD_Response* r) const { MHD_destroy_response(r); }
        };
        std::unique_ptr<MHD_Response, ResponseDeleter> response(MHD_create_response_from_buffer(
            a.body.size(), const_cast<char*>(a.body.data()), MHD_RESPMEM_MUST_COPY));
        if (!response) return MHD_NO;
        state.answered = true;
        MHD_add_response_header(response.get(), MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        for (const auto& [name, value] : a.headers) {
            MHD_add_response_header(response.get(), name, value.c_str());
        }
        return MHD_queue_response(connection, a.status, response.get());
    }

    static MHD_Result handle(void* cls, MHD_Connection* connection, const char* url,
                             const char* method, const char* /*version*/, const char* upload_data,
                             size_t* upload_data_size, void** request_state) {
        auto& server = *static_cast<UploadServer*>(cls);
        if (!*request_state) {
            auto state = std::make_unique<RequestState>();
            RequestState& s = *state;
            *request_state = state.release();  // owned from here by completed()
            std::optional<Answer> early;
            try {
                early = begin(server, connection, url, method, s);
            } catch (const std::exception& e) {
                early = error_answer(MHD_HTTP_INTERNAL_SERVER_ERROR, e.what());
            }
            return early ? send(server, connection, s, *early) : MHD_YES;
        }
        RequestState& s = *static_cast<RequestState*>(*request_state);
        if (Clock::now() - s.started > s.timeout) {
            log::info("upload request cut off",
                      {{"endpoint", endpoint_name(s.endpoint)},
                       {"reason", "request timeout"},
                       {"timeout_s", static_cast<long long>(s.timeout.count())},
                       {"client", s.client}});
            return MHD_NO;  // closes the connection; completed() removes the .part
        }
        if (*upload_data_size != 0) {
            const std::size_t size = *upload_data_size;
            *upload_data_size = 0;
            try {
                return body(s, upload_data, size) ? MHD_YES : MHD_NO;
            } catch (const std::exception& e) {
                reject(s, {MHD_HTTP_INTERNAL_SERVER_ERROR, e.what()});
                return MHD_YES;
            }
        }
        Answer a;
        try {
            a = s.rejected ? error_answer(s.rejected->status, s.rejected->reason)
                           : finish(server, s);
        } catch (const std::exception& e) {
            a = error_answer(MHD_HTTP_INTERNAL_SERVER_ERROR, e.what());
        }
        return send(server, connection, s, a);
    }

    static void completed(void* /*cls*/, MHD_Connection* /*connection*/, void** request_state,
                          MHD_RequestTerminationCode code) {
        std::unique_ptr<RequestState> state(static_cast<RequestState*>(*request_state));
        *request_state = nullptr;
        // Requests that got their answer end quietly, also when the connection closes after.
        if (state && !state->answered && code != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
            log::info("upload request ended early",
                      {{"endpoint", endpoint_name(state->endpoint)},
                       {"code", static_cast<long long>(code)},
                       {"bytes_received", static_cast<unsigned long long>(state->received)},
                       {"client", state->client}});
        }
    }

    // The first call: route, authenticate, and answer at once whatever needs no body.
    static std::optional<Answer> begin(UploadServer& server, MHD_Connection* c,
                                       std::string_view url, std::string_view method,
                                       RequestState& s) {
        s.timeout = std::chrono::seconds(server.request_timeout_s_.load());
        s.client = client_address(c);
        constexpr std::string_view kImages = "/images/";
        if (url == "/images/upload") {
            s.endpoint = Endpoint::upload;
        } else if (url == "/jobs") {
            s.endpoint = Endpoint::jobs;
        } else if (url.starts_with(kImages)) {
            s.endpoint = Endpoint::image;
        } else {
            return error_answer(MHD_HTTP_NOT_FOUND,
                                "not found; try POST /images/upload, POST /jobs or "
                                "GET /images/{uploadId}");
        }
        const bool get = method == MHD_HTTP_METHOD_GET || method == MHD_HTTP_METHOD_HEAD;
        if (s.endpoint == Endpoint::image ? !get : method != MHD_HTTP_METHOD_POST) {
            Answer a = error_answer(MHD_HTTP_METHOD_NOT_ALLOWED,
                                    "method " + std::string(method) + " is not allowed here");
            a.headers.emplace_back(MHD_HTTP_HEADER_ALLOW,
                                   s.endpoint == Endpoint::image ? "GET, HEAD" : "POST");
            return a;
        }
        const char* authorization =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!server.token().admits(authorization)) {
            return error_answer(MHD_HTTP_UNAUTHORIZED, authorization
                                                           ? "wrong bearer token"
                                                           : "a bearer token is required");
        }

        UploadBackend& backend = server.backend_;
        if (s.endpoint == Endpoint::image) {
            const std::string id(url.substr(kImages.size()));
            std::optional<ImageView> view;
            if (plausible_id(id)) {
                auto found = backend.image(id);
                if (!found) return failure_answer(found.error(), MHD_HTTP_INTERNAL_SERVER_ERROR);
                view = std::move(found).value();
            }
            if (!view)
                return error_answer(MHD_HTTP_NOT_FOUND, "no job with upload id \"" + id + "\"");
            return Answer{MHD_HTTP_OK, image_json(*view), {}, {}};
        }

        const std::string type = media_type(header(c, MHD_HTTP_HEADER_CONTENT_TYPE));
        const std::uint64_t max_bytes = backend.max_bytes();
        if (s.endpoint == Endpoint::upload) {
            if (type != "multipart/form-data") {
                return error_answer(MHD_HTTP_BAD_REQUEST,
                                    "expected a multipart/form-data body with an \"image\" field");
            }
            s.body_limit = max_bytes + kFormOverhead;
        } else {
            if (type != "application/json") {
                return error_answer(MHD_HTTP_BAD_REQUEST,
                                    "expected a job manifest with Content-Type: application/json");
            }
            s.body_limit = kJobMax;
        }
        if (const auto length = content_length(c); length && *length > s.body_limit) {
            return error_answer(
                MHD_HTTP_CONTENT_TOO_LARGE,
                s.endpoint == Endpoint::upload
                    ? "the upload is larger than the limit of " + std::to_string(max_bytes) +
                          " bytes ([limits] max_bytes)"
                    : "a job manifest is at most " + std::to_string(kJobMax) + " bytes");
        }
        if (std::optional<std::string> busy = backend.busy_reason()) {
            return error_answer(MHD_HTTP_SERVICE_UNAVAILABLE, *busy);
        }
        s.temp_dir = backend.temp_dir();
        s.part_owner = backend.part_owner();
        if (s.endpoint == Endpoint::upload) {
            s.limits = backend.limits();
            s.limits.max_bytes = max_bytes;
            s.form = std::make_unique<FormUpload>(s.temp_dir, s.part_owner, max_bytes);
            if (!s.form->attach(c)) {
                return error_answer(s.form->rejection()->status, s.form->rejection()->reason);
            }
        }
        return std::nullopt;  // read the body
    }

    // A body chunk. false: cut the connection (a client sending far past a rejection).
    static bool body(RequestState& s, const char* data, std::size_t size) {
        s.received += size;
        if (s.rejected) return s.received - s.rejected_at <= kDrainMax;
        if (s.received > s.body_limit) {
            reject(s, {MHD_HTTP_CONTENT_TOO_LARGE, "the request body is larger than " +
                                                       std::to_string(s.body_limit) + " bytes"});
            return true;
        }
        if (s.endpoint == Endpoint::upload) {
            if (!s.form->feed(data, size)) reject(s, *s.form->rejection());
        } else {
            s.job.append(data, size);
        }
        return true;
    }

    static void reject(RequestState& s, Rejection r) {
        s.rejected = std::move(r);
        s.rejected_at = s.received;
        s.form.reset();  // the .part goes now, not after the drain
    }

    static Answer finish(UploadServer& server, RequestState& s) {
        return s.endpoint == Endpoint::upload ? finish_upload(server, s) : finish_job(server, s);
    }

    static Answer finish_upload(UploadServer& server, RequestState& s) {
        if (!s.form->finish()) {
            return error_answer(s.form->rejection()->status, s.form->rejection()->reason);
        }
        PartFile& part = s.form->image();
        // An image cut short would pass the header check and then wait in the pipeline for
        // the rest that never comes: refuse it now.
        Result<Wholeness> whole = judge_file(part.path(), s.limits.max_bytes);
        if (!whole) return failure_answer(whole.error(), MHD_HTTP_INTERNAL_SERVER_ERROR);
        if (whole->verdict == Wholeness::Verdict::incomplete) {
            return error_answer(MHD_HTTP_BAD_REQUEST, whole->reason);
        }
        Result<SourceInfo> info = validate_source_file(part.path(), s.limits);
        if (!info) return failure_answer(info.error());
        const FormFields& fields = s.form->fields();
        Result<std::string> metadata = compact_metadata(fields.metadata);
        if (!metadata) return failure_answer(metadata.error());

        PreparedUpload up;
        up.temp = part.path();
        up.extension = std::string(".") + format_extension(info->format);
        up.bytes = info->bytes;
        up.format = format_name(info->format);
        up.width = info->width;
        up.height = info->height;
        up.spool = fields.spool;
        up.profile = fields.profile;
        up.user_id = fields.user_id;
        up.metadata_json = std::move(*metadata);
        up.client_name = fields.client_name;
        Result<std::string> id = server.backend_.accept(up);
        if (!id) return failure_answer(id.error());
        part.release();
        log::info("upload accepted", {{"upload_id", *id},
                                      {"bytes", static_cast<unsigned long long>(up.bytes)},
                                      {"format", up.format},
                                      {"client", s.client}});
        Answer a{MHD_HTTP_ACCEPTED, accepted_image_json(*id, up), {}, {}};
        a.headers.emplace_back(MHD_HTTP_HEADER_LOCATION, status_url(*id));
        return a;
    }

    static Answer finish_job(UploadServer& server, RequestState& s) {
        if (Status checked = server.backend_.check_manifest(s.job); !checked) {
            return failure_answer(checked.error());
        }
        Result<PartFile> part = PartFile::create(s.temp_dir, s.part_owner);
        if (!part) return failure_answer(part.error(), MHD_HTTP_INTERNAL_SERVER_ERROR);
        if (Status written = part->write(s.job); !written) {
            return failure_answer(written.error(), MHD_HTTP_INTERNAL_SERVER_ERROR);
        }
        if (Status closed = part->close(); !closed) {
            return failure_answer(closed.error(), MHD_HTTP_INTERNAL_SERVER_ERROR);
        }
        PreparedUpload up;
        up.temp = part->path();
        up.extension = ".job.json";
        up.bytes = part->size();
        Result<std::string> id = server.backend_.accept(up);
        if (!id) return failure_answer(id.error());
        part->release();
        log::info("job manifest accepted", {{"upload_id", *id},
                                            {"bytes", static_cast<unsigned long long>(up.bytes)},
                                            {"client", s.client}});
        Answer a{MHD_HTTP_ACCEPTED, accepted_job_json(*id), {}, {}};
        a.headers.emplace_back(MHD_HTTP_HEADER_LOCATION, status_url(*id));
        return a;
    }
};

void UploadServer::DaemonDeleter::operator()(MHD_Daemon* d) const {
    MHD_stop_daemon(d);
}

UploadServer::UploadServer(UploadServerOptions options, UploadBackend& backend)
    : options_(std::move(options)),
      backend_(backend),
      request_timeout_s_(options_.request_timeout.count()) {}

UploadServer::~UploadServer() {
    stop();
}

Status UploadServer::start() {
    if (daemon_) return ok_status();
    auto address = parse_bind_address(options_.bind, options_.port, "http");
    if (!address) return address.error();
    {
        std::lock_guard lock(mutex_);
        last_mhd_error_.clear();
    }
    // A thread per connection: writing the file, reading the header and the backend's database
    // insert all block, and one slow client must not hold up the others.
    unsigned flags =
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (address->ipv6) flags |= MHD_USE_IPv6;
    daemon_.reset(MHD_start_daemon(
        flags, static_cast<std::uint16_t>(options_.port), nullptr, nullptr,
        &UploadServerCallbacks::handle, this, MHD_OPTION_EXTERNAL_LOGGER,
        &UploadServerCallbacks::log, this, MHD_OPTION_SOCK_ADDR,
        reinterpret_cast<sockaddr*>(&address->storage), MHD_OPTION_CONNECTION_LIMIT,
        options_.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        options_.max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, options_.idle_timeout_s,
        // Request line and headers: larger ones are refused by libmicrohttpd itself.
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(128 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 128u, MHD_OPTION_NOTIFY_COMPLETED,
        &UploadServerCallbacks::completed, this, MHD_OPTION_END));
    if (!daemon_) {
        std::lock_guard lock(mutex_);
        return make_error(
            Stage::config,
            "cannot serve HTTP uploads on " + options_.bind + ":" + std::to_string(options_.port) +
                ": " +
                (last_mhd_error_.empty() ? "libmicrohttpd refused to start" : last_mhd_error_) +
                " (choose another [http] port)");
    }
    const auto* info = MHD_get_daemon_info(daemon_.get(), MHD_DAEMON_INFO_BIND_PORT);
    port_ = info ? info->port : options_.port;
    serving_ = true;
    log::info("http drop-in listening",
              {{"bind", options_.bind},
               {"port", port_},
               {"paths", "POST /images/upload, POST /jobs, GET /images/{uploadId}"}});
    return ok_status();
}

void UploadServer::stop() {
    serving_ = false;
    daemon_.reset();
}

void UploadServer::set_token(std::string token) {
    BearerToken parsed(token);
    std::lock_guard lock(mutex_);
    token_ = parsed;
}

void UploadServer::set_request_timeout(std::chrono::seconds timeout) {
    request_timeout_s_ = timeout.count();
}

BearerToken UploadServer::token() const {
    std::lock_guard lock(mutex_);
    return token_;
}

void UploadServer::record_mhd_error(std::string message) {
    {
        std::lock_guard lock(mutex_);
        last_mhd_error_ = message;
    }
    // Mostly what clients do (a closed connection, a malformed request): not the daemon's fault.
    if (serving_) log::info("http drop-in: libmicrohttpd reported", {{"detail", message}});
}

}  // namespace imgspool::upload
