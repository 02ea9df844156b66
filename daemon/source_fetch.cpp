#include "daemon/source_fetch.hpp"

#include <memory>

#include "common/log.hpp"
#include "fetch/http_fetcher.hpp"
#include "fetch/source_url.hpp"
#include "store/s3/object_reader.hpp"

namespace imgspool {

SourceFetch make_source_fetch(const Config& config) {
    auto policy = fetch::make_address_policy(config.fetch.allow_hosts);
    auto settings = std::make_shared<fetch::FetchSettings>();
    if (policy) {
        settings->policy = std::move(policy).value();
    } else {  // check_config refuses this; should it get here, nothing private is allowed
        log::error("[fetch] allow_hosts ignored", {{"error", policy.error().message()}});
    }
    settings->max_redirects = config.fetch.max_redirects;
    settings->connect_timeout = std::chrono::seconds(config.fetch.connect_timeout_s);
    settings->timeout = std::chrono::seconds(config.fetch.timeout_s);

    std::shared_ptr<s3::ObjectReader> s3;
    if (config.fetch.s3_set) {
        s3 = std::make_shared<s3::ObjectReader>(config.fetch.s3);
    } else if (config.store.kind == "s3") {
        s3 = std::make_shared<s3::ObjectReader>(config.store.s3);
    }
    return [settings = std::shared_ptr<const fetch::FetchSettings>(std::move(settings)), s3](
               const std::string& source, std::uint64_t max_bytes,
               Heartbeat* beat) -> Result<std::string> {
        auto url = fetch::parse_source_url(source);
        if (!url) return url.error();
        if (url->kind == fetch::SourceUrl::Kind::s3) {
            if (!s3) {
                return make_error(Stage::fetch,
                                  "s3:// sources need a [fetch.s3] table or an S3 [store]");
            }
            return s3->get(url->bucket, url->key, max_bytes);
        }
        auto fetched = fetch::fetch_http(url.value(), *settings, max_bytes, beat);
        if (!fetched) return fetched.error();
        return std::move(fetched->bytes);
    };
}

}  // namespace imgspool
