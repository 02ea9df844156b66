// Where derivatives go: a local folder or an S3 bucket, behind one small interface.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace imgspool {

struct PutObject {
    std::string key;           // "images/<upload_id>/small.jpg"
    std::string content_type;  // "image/jpeg"
    std::string_view bytes;    // borrowed: the caller keeps the data alive during put_all
};

class ObjectStore {
  public:
    virtual ~ObjectStore() = default;

    // Stores every object or reports why not (Stage::store). On failure some objects may have
    // been written; the caller must not record any of them as stored.
    virtual Status put_all(const std::vector<PutObject>& objects) = 0;

    // Public URL recorded for a key: public_base_url/key when a base is set.
    virtual std::string url_for(const std::string& key) const = 0;

    // Cheap reachability check (folder writable, bucket answers an authenticated HEAD).
    virtual Status check() = 0;

    // "local:/srv/images" or "s3:bucket@endpoint" for logs; never holds a secret.
    virtual std::string describe() const = 0;
};

// Expands {upload_id}, {variant}, {ext}, {spool}, {profile} in a key template.
std::string expand_key(std::string_view key_template, std::string_view upload_id,
                       std::string_view variant, std::string_view ext, std::string_view spool = {},
                       std::string_view profile = {});

// Validates a key template: only known placeholders, must contain {upload_id} and {variant}
// and {ext} so two outputs never share a key.
Status validate_key_template(std::string_view key_template);

}  // namespace imgspool
