// The /metrics, /healthz and /readyz endpoints on libmicrohttpd.
#include "metrics/http_server.hpp"

#include <sys/socket.h>

#include <cstdio>
#include <exception>

#include <microhttpd.h>

#include "common/bind_address.hpp"
#include "common/log.hpp"

namespace imgspool {
namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kExposition = "text/plain; version=0.0.4; charset=utf-8";

struct ResponseDeleter {
    void operator()(MHD_Response* r) const { MHD_destroy_response(r); }
};
using ResponsePtr = std::unique_ptr<MHD_Response, ResponseDeleter>;

}  // namespace

struct HttpServerCallbacks {
    static void log(void* cls, const char* format, va_list args) {
        char buf[512];
        std::vsnprintf(buf, sizeof buf, format, args);
        std::string message(buf);
        while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
            message.pop_back();
        }
        static_cast<HttpServer*>(cls)->record_mhd_error(std::move(message));
    }

    static MHD_Result handle(void* cls, MHD_Connection* connection, const char* url,
                             const char* method, const char* /*version*/,
                             const char* /*upload_data*/, size_t* /*upload_data_size*/,
                             void** /*request_state*/) {
        const auto& server = *static_cast<const HttpServer*>(cls);
        HttpServer::Answer a{500, "internal error\n", kText};
        try {
            a = server.answer(method, url);
        } catch (const std::exception& e) {
            a.body = std::string("internal error: ") + e.what() + "\n";
        }
        ResponsePtr response(
            MHD_create_response_from_buffer(a.body.size(), a.body.data(), MHD_RESPMEM_MUST_COPY));
        if (!response) return MHD_NO;
        MHD_add_response_header(response.get(), MHD_HTTP_HEADER_CONTENT_TYPE, a.content_type);
        if (a.status == MHD_HTTP_METHOD_NOT_ALLOWED) {
            MHD_add_response_header(response.get(), MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        }
        return MHD_queue_response(connection, a.status, response.get());
    }
};

void HttpServer::DaemonDeleter::operator()(MHD_Daemon* d) const {
    MHD_stop_daemon(d);
}

HttpServer::HttpServer(HttpServerOptions options, MetricsSource metrics, ReadinessCheck readiness)
    : options_(std::move(options)),
      metrics_(std::move(metrics)),
      readiness_(std::move(readiness)) {}

HttpServer::~HttpServer() {
    stop();
}

Status HttpServer::start() {
    if (daemon_) return ok_status();
    auto address = parse_bind_address(options_.bind, options_.port, "metrics");
    if (!address) return address.error();

    {
        std::lock_guard lock(log_mutex_);
        last_mhd_error_.clear();
    }
    // A thread per connection (at most max_connections): a slow /metrics scrape never holds
    // up a /healthz probe behind it.
    unsigned flags =
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (address->ipv6) flags |= MHD_USE_IPv6;
    daemon_.reset(MHD_start_daemon(
        flags, static_cast<std::uint16_t>(options_.port), nullptr, nullptr,
        &HttpServerCallbacks::handle, this, MHD_OPTION_EXTERNAL_LOGGER, &HttpServerCallbacks::log,
        this, MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&address->storage),
        MHD_OPTION_CONNECTION_LIMIT, options_.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        options_.connection_timeout_s, MHD_OPTION_END));
    if (!daemon_) {
        std::lock_guard lock(log_mutex_);
        return make_error(
            Stage::config,
            "cannot serve metrics on " + options_.bind + ":" + std::to_string(options_.port) +
                ": " +
                (last_mhd_error_.empty() ? "libmicrohttpd refused to start" : last_mhd_error_) +
                " (choose another [metrics] port / METRICS_PORT)");
    }
    const auto* info = MHD_get_daemon_info(daemon_.get(), MHD_DAEMON_INFO_BIND_PORT);
    port_ = info ? info->port : options_.port;
    serving_ = true;
    log::info("metrics endpoint listening",
              {{"bind", options_.bind}, {"port", port_}, {"paths", "/metrics /healthz /readyz"}});
    return ok_status();
}

void HttpServer::stop() {
    serving_ = false;
    daemon_.reset();
}

void HttpServer::record_mhd_error(std::string message) {
    {
        std::lock_guard lock(log_mutex_);
        last_mhd_error_ = message;
    }
    if (serving_)
        log::warn("metrics endpoint: libmicrohttpd reported a problem", {{"detail", message}});
}

HttpServer::Answer HttpServer::answer(std::string_view method, std::string_view url) const {
    if (method != MHD_HTTP_METHOD_GET && method != MHD_HTTP_METHOD_HEAD) {
        return {MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served here\n", kText};
    }
    if (url == "/metrics") return {MHD_HTTP_OK, metrics_(), kExposition};
    if (url == "/healthz") return {MHD_HTTP_OK, "ok", kText};
    if (url == "/readyz") {
        const Readiness r = readiness_();
        if (r.ready) return {MHD_HTTP_OK, "ready", kText};
        return {MHD_HTTP_SERVICE_UNAVAILABLE, r.reason, kText};
    }
    return {MHD_HTTP_NOT_FOUND, "not found; try /metrics, /healthz or /readyz\n", kText};
}

}  // namespace imgspool
