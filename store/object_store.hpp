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

// Every Error these return has Stage::store and says whether it passes by itself
// (Error::transient: store unreachable, 5xx or throttling beyond the retries, timeouts, a full
// disk: defer the job and retry later) or not (bad credentials, no such bucket, no permission, an
// invalid config or key: fail the job). All are safe to call from several threads at once.
class ObjectStore {
  public:
    virtual ~ObjectStore() = default;

    // Stores every object or reports why not; the caller must then not record any of them as
    // stored. On a permanent failure put_all removes what it may have written itself before
    // returning (the reason says if that failed too). On a transient failure the objects it
    // wrote stay: the job's retry writes the same keys again, and a job that is finally given up
    // calls remove_all. Likewise, when a later stage of the job fails permanently after a
    // successful put_all, the caller calls remove_all with the same keys.
    virtual Status put_all(const std::vector<PutObject>& objects) = 0;

    // Removes the objects under keys; a key with no object is fine. For the keys of a job that
    // will not complete (never for keys a cache hit borrowed from an earlier job).
    virtual Status remove_all(const std::vector<std::string>& keys) = 0;

    // Public URL recorded for a key: public_base_url/key when a base is set.
    virtual std::string url_for(const std::string& key) const = 0;

    // Cheap, bounded reachability check (folder writable, bucket answers an authenticated HEAD
    // within seconds).
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
