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
    if (valid_) engine_ = std::make_unique<s3::TransferEngine>(config_, retries_);
}

Status S3Store::validity() const {
    if (valid_) return ok_status();
    return make_error(Stage::store, valid_.error().reason);  // permanent: the config must change
}

Error S3Store::give_up(Error failure, const std::vector<std::string>& maybe_stored) {
    failure.stage = Stage::store;
    failure.reason = s3::redact(std::move(failure.reason), engine_->credentials());
    // A transient failure keeps what it stored: the job's retry PUTs the same keys again.
    if (failure.transient || maybe_stored.empty()) return failure;
    const std::string count = std::to_string(maybe_stored.size());
    if (Status removed = remove_all(maybe_stored); removed) {
        failure.reason += "; the " + count + " object(s) it may have stored were removed";
    } else {
        failure.reason += "; removing the " + count +
                          " object(s) it may have stored failed too: " + removed.error().reason;
    }
    return failure;
}

Status S3Store::put_all(const std::vector<PutObject>& objects) {
    if (Status v = validity(); !v) return v;
    s3::S3Client client(*engine_, s3::job_options(config_));

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
    std::vector<std::string> maybe_stored;
    if (!singles.empty()) {
        s3::BatchResult stored = client.perform_all(singles);
        for (std::size_t i = 0; i < singles.size(); ++i) {
            if (stored.fates[i] != s3::RequestFate::not_written) {
                maybe_stored.push_back(singles[i].key);
            }
        }
        if (stored.failure) return give_up(std::move(*stored.failure), maybe_stored);
    }
    for (const PutObject* object : large) {
        const s3::NameValues headers{{"Content-Type", object->content_type},
                                     {"Cache-Control", kCacheControl}};
        // A multipart upload that fails is aborted: its object never appears.
        Status stored = s3::upload_multipart(client, object->key, object->bytes, headers,
                                             config_.multipart_part_size);
        if (!stored) return give_up(stored.error(), maybe_stored);
        maybe_stored.push_back(object->key);
    }
    return ok_status();
}

Status S3Store::remove_all(const std::vector<std::string>& keys) {
    if (keys.empty()) return ok_status();
    if (Status v = validity(); !v) return v;
    std::vector<s3::S3Request> deletes;
    deletes.reserve(keys.size());
    for (const std::string& key : keys) {
        deletes.push_back(s3::S3Request{"DELETE", key, {}, {}, {}, "DELETE " + key, true});
    }
    s3::S3Client client(*engine_, s3::job_options(config_));
    s3::BatchResult removed = client.perform_all(deletes);
    if (!removed.failure) return ok_status();
    Error failure = std::move(*removed.failure);
    failure.reason = s3::redact(std::move(failure.reason), engine_->credentials());
    return failure;
}

std::string S3Store::url_for(const std::string& key) const {
    if (!public_base_url_.empty()) return public_base_url_ + s3::canonical_uri("/" + key);
    return s3::object_url(endpoint_, key);
}

Status S3Store::check() {
    if (Status v = validity(); !v) return v;
    s3::S3Client client(*engine_, s3::check_options(config_));
    auto answer =
        client.perform_one(s3::S3Request{"HEAD", "", {}, {}, {}, "HEAD bucket " + config_.bucket});
    if (!answer) {
        Error failure = answer.error();
        failure.reason = s3::redact(std::move(failure.reason), client.credentials());
        return failure;
    }
    return ok_status();
}

std::string S3Store::describe() const {
    return "s3:" + config_.bucket + "@" +
           (config_.endpoint.empty() ? config_.region : config_.endpoint);
}

}  // namespace imgspool
