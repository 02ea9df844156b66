// The HTTP drop-in (libmicrohttpd, a thread per connection):
//   POST /images/upload  multipart/form-data: image (JPEG/PNG/WebP), optional spool, profile,
//                        user_id, metadata (a JSON object)            -> 202 {"uploadId", ...}
//   POST /jobs           a job manifest as the JSON body (<= 64 KiB)  -> 202 {"uploadId", ...}
//   GET  /images/{id}    the job's status, metadata and variants      -> 200 | 404
// 400 bad form / not an image, 401 without the bearer token, 405 other methods, 413 over
// max_bytes, 503 + Retry-After while the backend is busy. Every answer is JSON.
// Uploads are streamed to a .part file in the backend's temp_dir() and judged there (magic
// bytes, wholeness, header limits) before the backend takes them; the .part file is removed on
// every other path, a client that goes away included.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "upload/bearer_token.hpp"
#include "upload/upload_backend.hpp"

struct MHD_Daemon;
struct MHD_Connection;

namespace imgspool::upload {

struct UploadServerOptions {
    std::string bind = "127.0.0.1";  // an IPv4 or IPv6 address literal
    int port = 8080;                 // 0: any free port; port() tells which after start()
    unsigned max_connections = 64;
    unsigned max_connections_per_ip = 0;        // 0: no limit per client address
    unsigned idle_timeout_s = 30;               // silence on a connection (slow headers too)
    std::chrono::seconds request_timeout{120};  // a whole request, however it trickles
    // Called once per answered request with "upload", "jobs" or "image" (other paths: "other")
    // and the status, for a requests counter; may be empty. Runs on the connection's thread.
    std::function<void(std::string_view endpoint, unsigned status)> on_answer;
};

class UploadServer {
  public:
    UploadServer(UploadServerOptions options, UploadBackend& backend);
    ~UploadServer();  // stops
    UploadServer(const UploadServer&) = delete;
    UploadServer& operator=(const UploadServer&) = delete;

    // Binds and starts serving; fails (Stage::config) with the reason, e.g. the port is taken.
    Status start();
    // Stops serving and waits for the connections' threads. Idempotent.
    void stop();
    int port() const { return port_; }  // the bound port once started

    // Reloadable at any time; requests that already began keep what they started with.
    void set_token(std::string token);  // "" = no authentication
    void set_request_timeout(std::chrono::seconds timeout);

  private:
    struct DaemonDeleter {
        void operator()(MHD_Daemon* d) const;
    };
    friend struct UploadServerCallbacks;

    BearerToken token() const;
    void record_mhd_error(std::string message);

    UploadServerOptions options_;
    UploadBackend& backend_;
    std::unique_ptr<MHD_Daemon, DaemonDeleter> daemon_;
    std::atomic<bool> serving_{false};
    std::atomic<long long> request_timeout_s_;
    int port_ = 0;

    mutable std::mutex mutex_;  // token_ and last_mhd_error_
    BearerToken token_;
    std::string last_mhd_error_;
};

}  // namespace imgspool::upload
