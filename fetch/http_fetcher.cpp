#include "fetch/http_fetcher.hpp"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <optional>

#include "store/s3/curl_handles.hpp"

#ifndef IMGSPOOL_VERSION
#define IMGSPOOL_VERSION "0.0.0"
#endif

namespace imgspool::fetch {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr std::uint64_t kMaxDiscardedBytes = 64 * 1024;
constexpr milliseconds kDeadlineSlack{100};

// What the callbacks of one fetch share; reset for every hop.
struct FetchState {
    const AddressPolicy* policy = nullptr;
    CURL* easy = nullptr;
    std::uint64_t max_bytes = 0;
    Heartbeat* beat = nullptr;

    std::string hop_host;                // names are trusted only for their own hop
    std::optional<std::string> refusal;  // the first address this hop refused, and why
    bool passed = false;                 // an address passed the check (its connect may fail)
    std::string body;                    // 2xx answers only
    bool too_large = false;
    std::uint64_t discarded = 0;  // body bytes of a non-2xx answer, read and dropped
    bool not_kept = false;        // ... cut for being longer than kMaxDiscardedBytes

    void start_hop(const SourceUrl& hop) {
        hop_host = hop.host;
        refusal.reset();
        passed = false;
        body.clear();
        too_large = false;
        discarded = 0;
        not_kept = false;
    }
    void note_refusal(std::string why) {
        if (!refusal) refusal = std::move(why);
    }
};

// libcurl calls this instead of socket(2), with the peer address it is about to connect to, for
// every address it tries (happy-eyeballs fallbacks too): refusing here sends not even a SYN, and
// there is no window between a DNS answer and the connect for rebinding to use.
curl_socket_t open_checked_socket(void* clientp, curlsocktype purpose, curl_sockaddr* a) {
    auto* s = static_cast<FetchState*>(clientp);
    const std::optional<IpAddress> ip =
        purpose == CURLSOCKTYPE_IPCXN ? from_sockaddr(&a->addr, a->addrlen) : std::nullopt;
    if (!ip) {
        s->note_refusal("not an IP connection");
        return CURL_SOCKET_BAD;
    }
    if (std::optional<std::string> why = s->policy->refuse(*ip, s->hop_host)) {
        s->note_refusal(*why);
        return CURL_SOCKET_BAD;
    }
    s->passed = true;
    return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

// The second check: after connect (and TLS), before the request, also for a connection curl
// reuses without opening a socket.
int prereq_check(void* clientp, char* primary_ip, char*, int, int) {
    auto* s = static_cast<FetchState*>(clientp);
    const std::optional<IpAddress> ip = parse_ip(primary_ip != nullptr ? primary_ip : "");
    if (!ip) {
        s->note_refusal(std::string("the peer address \"") + (primary_ip ? primary_ip : "") +
                        "\" is not an IP address");
        return CURL_PREREQFUNC_ABORT;
    }
    if (std::optional<std::string> why = s->policy->refuse(*ip, s->hop_host)) {
        s->note_refusal(*why);
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

// Keeps a 2xx body up to max_bytes. CURLOPT_MAXFILESIZE_LARGE only catches a Content-Length
// that is too large; in curl 7.88 it does not stop a chunked answer, so this is the real cap.
std::size_t on_body(char* data, std::size_t size, std::size_t count, void* clientp) {
    auto* s = static_cast<FetchState*>(clientp);
    const std::size_t n = size * count;
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code > 299) {
        // The status says it all. A short body is read to its end (curl only works out a
        // redirect's target once the answer is complete, and the connection stays reusable);
        // a long one is cut.
        s->discarded += n;
        if (s->discarded > kMaxDiscardedBytes) {
            s->not_kept = true;
            return 0;
        }
        return n;
    }
    if (s->body.size() + n > s->max_bytes) {
        s->too_large = true;
        return 0;
    }
    s->body.append(data, n);
    return n;
}

// A fetch that moves is progress, not a stalled worker.
int on_progress(void* clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* s = static_cast<FetchState*>(clientp);
    if (s->beat != nullptr) s->beat->beat();
    return 0;
}

bool is_redirect(long code) {
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

std::string size_text(std::uint64_t bytes) {
    constexpr std::uint64_t kKiB = 1024;
    constexpr std::uint64_t kMiB = kKiB * kKiB;
    if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
    if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
    return std::to_string(bytes) + " bytes";
}

Error status_error(long code, const SourceUrl& hop) {
    std::string why = "HTTP " + std::to_string(code) + " from " + url_for_reason(hop.text);
    // Overloaded, throttled or timed out on the server's side: it passes by itself.
    if (code >= 500 || code == 408 || code == 429) return make_transient(Stage::fetch, why);
    return make_error(Stage::fetch, why);
}

Error curl_error(CURLcode rc, const FetchState& state, const char* errbuf, const SourceUrl& hop,
                 const FetchSettings& settings, Clock::time_point deadline) {
    const std::string url = url_for_reason(hop.text);
    // When one address was refused and an allowed one could not be reached, the fault is the
    // unreachable origin (transient), not the refusal.
    const bool refused =
        (rc == CURLE_COULDNT_CONNECT && !state.passed) || rc == CURLE_ABORTED_BY_CALLBACK;
    if (state.refusal && refused) {
        return make_error(Stage::fetch, "refused: " + *state.refusal + " (" + url + ")");
    }
    if (state.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        return make_error(Stage::fetch, "answer larger than " + size_text(state.max_bytes) +
                                            " (limits.max_bytes) from " + url);
    }
    const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
            // curl's own clock may end the last hop a few milliseconds before ours does.
            if (Clock::now() + kDeadlineSlack >= deadline) {
                return make_transient(Stage::fetch, "no complete answer within " +
                                                        std::to_string(settings.timeout.count()) +
                                                        " s (fetch.timeout_s) from " + url);
            }
            return make_transient(Stage::fetch, detail + " (" + url + ")");
        case CURLE_COULDNT_RESOLVE_HOST:
            return make_transient(Stage::fetch,
                                  "cannot resolve host " + hop.host + " (" + url + ")");
        case CURLE_COULDNT_CONNECT:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return make_transient(Stage::fetch, detail + " (" + url + ")");
        default:
            return make_error(Stage::fetch, detail + " (" + url + ")");
    }
}

// The options every hop shares; the URL and the time left are set per hop.
Status set_common_options(CURL* e, FetchState& state, char* errbuf, const FetchSettings& settings,
                          const s3::CurlSlist& resolve) {
    const auto low_speed_s = std::min<long>(30, static_cast<long>(settings.timeout.count()));
    bool ok = true;
    const auto set = [&](CURLoption option, auto value) {
        ok = ok && curl_easy_setopt(e, option, value) == CURLE_OK;
    };
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_ERRORBUFFER, errbuf);
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    set(CURLOPT_FOLLOWLOCATION, 0L);  // followed by hand, each hop checked again
    // No proxy, not even one from http_proxy / https_proxy / ALL_PROXY: behind a proxy the
    // address check would see the proxy, not the origin.
    set(CURLOPT_PROXY, "");
    set(CURLOPT_NOPROXY, "*");
    set(CURLOPT_OPENSOCKETFUNCTION, &open_checked_socket);
    set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(&state));
    set(CURLOPT_PREREQFUNCTION, &prereq_check);
    set(CURLOPT_PREREQDATA, static_cast<void*>(&state));
    set(CURLOPT_WRITEFUNCTION, &on_body);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&state));
    set(CURLOPT_XFERINFOFUNCTION, &on_progress);
    set(CURLOPT_XFERINFODATA, static_cast<void*>(&state));
    set(CURLOPT_NOPROGRESS, 0L);
    set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(state.max_bytes));
    set(CURLOPT_LOW_SPEED_LIMIT, 1024L);
    set(CURLOPT_LOW_SPEED_TIME, std::max(1L, low_speed_s));
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_USERAGENT, "imgspool/" IMGSPOOL_VERSION);
    // CURLOPT_ACCEPT_ENCODING stays unset: no transparent decompression, so a compressed bomb
    // cannot expand behind the size cap.
    if (resolve) set(CURLOPT_RESOLVE, resolve.get());
    if (!ok) return make_error(Stage::internal, "libcurl refused a fetch option");
    return ok_status();
}

Fetched answer(CURL* e, FetchState& state, const SourceUrl& hop, int hops) {
    Fetched fetched;
    fetched.bytes = std::move(state.body);
    fetched.final_url = hop.text;
    fetched.hops = hops;
    const char* type = nullptr;
    if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type) {
        fetched.content_type = type;
    }
    const char* ip = nullptr;
    if (curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip) {
        fetched.connected_ip = ip;
    }
    return fetched;
}

// Where a redirect answer points, parsed like a source: http(s) only, checked again on connect.
Result<SourceUrl> redirect_target(CURL* e, long code, bool body_cut, const SourceUrl& hop, int hops,
                                  const FetchSettings& settings) {
    const std::string from = url_for_reason(hop.text);
    const char* location = nullptr;
    curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &location);
    if (location == nullptr) {
        // curl works the target out only for an answer read to its end.
        const char* why =
            body_cut ? " with a body too large to follow from " : " without a Location from ";
        return make_error(Stage::fetch, "HTTP " + std::to_string(code) + why + from);
    }
    if (hops == settings.max_redirects) {
        return make_error(Stage::fetch, "more than " + std::to_string(settings.max_redirects) +
                                            " redirects (last: " + url_for_reason(location) + ")");
    }
    Result<SourceUrl> next = parse_source_url(location);
    if (!next) {
        return make_error(Stage::fetch,
                          "redirect from " + from + " refused: " + next.error().reason);
    }
    if (next->kind == SourceUrl::Kind::s3) {
        return make_error(Stage::fetch, "redirect from " + from + " to an s3:// source refused");
    }
    return next;
}

}  // namespace

Result<Fetched> fetch_http(const SourceUrl& url, const FetchSettings& settings,
                           std::uint64_t max_bytes, Heartbeat* beat) {
    if (url.kind == SourceUrl::Kind::s3) {
        return make_error(Stage::internal, "fetch_http called for " + url_for_reason(url.text));
    }
    // curl_easy_init runs curl_global_init itself, thread-safely since libcurl 7.84.
    const s3::CurlEasy easy(curl_easy_init());
    if (!easy) return make_transient(Stage::fetch, "curl_easy_init failed: out of memory");
    CURL* e = easy.get();

    FetchState state;
    state.policy = &settings.policy;
    state.easy = e;
    state.max_bytes = max_bytes;
    state.beat = beat;
    char errbuf[CURL_ERROR_SIZE] = {};
    s3::CurlSlist resolve;
    for (const std::string& entry : settings.test_resolve) {
        if (!s3::append_header(resolve, entry.c_str())) {
            return make_transient(Stage::fetch, "out of memory");
        }
    }
    if (Status set = set_common_options(e, state, errbuf, settings, resolve); !set) {
        return set.error();
    }

    const Clock::time_point deadline = Clock::now() + settings.timeout;
    SourceUrl hop = url;
    for (int hops = 0;; ++hops) {
        const auto left = duration_cast<milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            return make_transient(Stage::fetch, "no complete answer within " +
                                                    std::to_string(settings.timeout.count()) +
                                                    " s (fetch.timeout_s) from " +
                                                    url_for_reason(hop.text));
        }
        const long connect_ms = static_cast<long>(std::min<long long>(
            left, duration_cast<milliseconds>(settings.connect_timeout).count()));
        state.start_hop(hop);
        errbuf[0] = '\0';
        curl_easy_setopt(e, CURLOPT_URL, hop.text.c_str());
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(left));
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, std::max(1L, connect_ms));
        const CURLcode rc = curl_easy_perform(e);
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        const bool not_2xx = code < 200 || code > 299;
        // A non-2xx answer whose body was refused (cut at once, or declared over the cap) still
        // has its status to go by.
        const bool status_only =
            code != 0 && not_2xx &&
            ((rc == CURLE_WRITE_ERROR && state.not_kept) || rc == CURLE_FILESIZE_EXCEEDED);
        if (rc != CURLE_OK && !status_only) {
            return curl_error(rc, state, errbuf, hop, settings, deadline);
        }
        if (!is_redirect(code)) {
            if (not_2xx) return status_error(code, hop);
            return answer(e, state, hop, hops);
        }
        Result<SourceUrl> next = redirect_target(e, code, status_only, hop, hops, settings);
        if (!next) return next.error();
        hop = std::move(next).value();
    }
}

}  // namespace imgspool::fetch
