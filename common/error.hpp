// Errors as values: which file, which stage, and why, in words a person can act on.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace imgspool {

// The stage a job was in when it failed; recorded in the database and in NAME.error.json.
enum class Stage {
    config,
    watch,
    claim,
    fetch,  // a manifest's source (http(s):// or s3://) being read
    validate,
    hash,
    cache,
    render,
    store,
    commit,
    move,
    // The job's claim passed to another node (adopted after this node's silence): this node
    // stops working on it without writing anything.
    lease,
    internal
};

const char* stage_name(Stage stage);

struct Error {
    Stage stage = Stage::internal;
    std::string reason;  // human readable: "image is 90x90, smaller than the minimum 100x100"
    std::string file;    // the file concerned, when there is one
    // A fault that passes by itself (store unreachable, 5xx or throttling, timeouts, database
    // busy or locked, a full disk, a file still being written): the job is deferred and
    // retried, never failed. false: the fault will not pass (bad signature, access denied, a
    // file the decoder rejects): the job fails at once with the reason.
    bool transient = false;

    // "validate: img.jpg: image is 90x90, smaller than the minimum 100x100"
    std::string message() const;
};

inline Error make_error(Stage stage, std::string reason, std::string file = {}) {
    return Error{stage, std::move(reason), std::move(file)};
}

// An Error with transient set: defer and retry.
inline Error make_transient(Stage stage, std::string reason, std::string file = {}) {
    return Error{stage, std::move(reason), std::move(file), true};
}

// errno values that pass by themselves once an operator frees space or a server recovers:
// ENOSPC, EDQUOT, EAGAIN, EINTR, EBUSY, ETIMEDOUT, network errors (ENETDOWN, ECONNREFUSED, ...),
// ESTALE, ENOMEM, EMFILE.
bool is_transient_errno(int err);

// A value or the Error that prevented it. Small on purpose: std::expected is C++23.
template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() {
    return Ok{};
}

}  // namespace imgspool
