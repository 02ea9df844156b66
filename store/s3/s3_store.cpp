#include "store/s3/s3_store.hpp"

#include "store/s3/config_check.hpp"
#include "store/s3/multipart_upload.hpp"
#include "store/s3/redact.hpp"
#include "store/s3/s3_client.hpp"

namespace imgspool {

S3Store::S3Store(S3Config config, std::string public_base_url)
    : config_(std::move(config)),
      public_base_url_(std::move(public_base_url)),
      valid_(s3::validate_s3_config(config_)),
      endpoint_(valid_ ? s3::endpoint_for(config_) : s3::Endpoint{}) {
    while (public_base_url_.ends_with('/')) public_base_url_.pop_back();
}

Status S3Store::validity() const {
    if (valid_) return ok_status();
    return make_error(Stage::store, valid_.error().reason);
}

Status S3Store::put_all(const std::vector<PutObject>& objects) {
    if (Status v = validity(); !v) return v;
    s3::S3Client client(config_, share_.handle(), retries_);
    const s3::Credentials& credentials = client.credentials();

    std::vector<s3::S3Request> singles;
    std::vector<const PutObject*> large;
    for (const PutObject& object : objects) {
        if (object.bytes.size() >= config_.multipart_threshold) {
            large.push_back(&object);
            continue;
        }
        singles.push_back(
            s3::S3Request{"PUT",
                          object.key,
                          {},
                          {{"Content-Type", object.content_type}, {"Cache-Control", kCacheControl}},
                          object.bytes,
                          "PUT " + object.key});
    }
    if (!singles.empty()) {
        auto stored = client.perform(singles);
        if (!stored) {
            return make_error(Stage::store, s3::redact(stored.error().reason, credentials));
        }
    }
    for (const PutObject* object : large) {
        const s3::NameValues headers{{"Content-Type", object->content_type},
                                     {"Cache-Control", kCacheControl}};
        Status stored = s3::upload_multipart(client, object->key, object->bytes, headers,
                                             config_.multipart_part_size);
        if (!stored) {
            return make_error(Stage::store, s3::redact(stored.error().reason, credentials));
        }
    }
    return ok_status();
}

std::string S3Store::url_for(const std::string& key) const {
    if (!public_base_url_.empty()) return public_base_url_ + s3::canonical_uri("/" + key);
    return s3::object_url(endpoint_, key);
}

Status S3Store::check() {
    if (Status v = validity(); !v) return v;
    s3::S3Client client(config_, share_.handle(), retries_);
    auto answer =
        client.perform_one(s3::S3Request{"HEAD", "", {}, {}, {}, "HEAD bucket " + config_.bucket});
    if (!answer) {
        return make_error(Stage::store, s3::redact(answer.error().reason, client.credentials()));
    }
    return ok_status();
}

std::string S3Store::describe() const {
    return "s3:" + config_.bucket + "@" +
           (config_.endpoint.empty() ? config_.region : config_.endpoint);
}

}  // namespace imgspool
