// Owners for libcurl's C handles, so no error path frees anything by hand.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace imgspool::s3 {

struct CurlEasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct CurlMultiDeleter {
    void operator()(CURLM* h) const { curl_multi_cleanup(h); }
};
struct CurlShareDeleter {
    void operator()(CURLSH* h) const { curl_share_cleanup(h); }
};
struct CurlSlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;
using CurlShare = std::unique_ptr<CURLSH, CurlShareDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// Appends a header line to a list it owns; on allocation failure the list stays as it was
// and false is returned.
inline bool append_header(CurlSlist& list, const char* line) {
    curl_slist* grown = curl_slist_append(list.get(), line);
    if (grown == nullptr) return false;
    (void)list.release();  // grown now owns the old nodes
    list.reset(grown);
    return true;
}

}  // namespace imgspool::s3
