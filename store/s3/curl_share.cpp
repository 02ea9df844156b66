#include "store/s3/curl_share.hpp"

#include <stdexcept>

namespace imgspool::s3 {

void init_curl_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            throw std::runtime_error("curl_global_init failed");
        }
    });
}

CurlShareCache::CurlShareCache() {
    init_curl_once();
    share_.reset(curl_share_init());
    if (!share_) throw std::runtime_error("curl_share_init failed: out of memory");
    curl_share_setopt(share_.get(), CURLSHOPT_LOCKFUNC, &CurlShareCache::lock);
    curl_share_setopt(share_.get(), CURLSHOPT_UNLOCKFUNC, &CurlShareCache::unlock);
    curl_share_setopt(share_.get(), CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

void CurlShareCache::lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<CurlShareCache*>(self)->locks_[static_cast<std::size_t>(data)].lock();
}

void CurlShareCache::unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<CurlShareCache*>(self)->locks_[static_cast<std::size_t>(data)].unlock();
}

}  // namespace imgspool::s3
