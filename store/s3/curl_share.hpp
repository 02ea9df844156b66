// libcurl's process-wide set-up and a DNS/TLS-session cache shared by every transfer of a store,
// safe to use from several worker threads at once.
#pragma once

#include <curl/curl.h>

#include <array>
#include <mutex>

#include "store/s3/curl_handles.hpp"

namespace imgspool::s3 {

// curl_global_init, exactly once per process; call before starting transfers on any thread.
void init_curl_once();

class CurlShareCache {
  public:
    CurlShareCache();
    CurlShareCache(const CurlShareCache&) = delete;
    CurlShareCache& operator=(const CurlShareCache&) = delete;

    CURLSH* handle() const { return share_.get(); }

  private:
    static void lock(CURL*, curl_lock_data data, curl_lock_access, void* self);
    static void unlock(CURL*, curl_lock_data data, void* self);

    std::array<std::mutex, CURL_LOCK_DATA_LAST> locks_;
    CurlShare share_;
};

}  // namespace imgspool::s3
