#include "common/error.hpp"

#include <cerrno>

namespace imgspool {

const char* stage_name(Stage stage) {
    switch (stage) {
        case Stage::config:
            return "config";
        case Stage::watch:
            return "watch";
        case Stage::claim:
            return "claim";
        case Stage::fetch:
            return "fetch";
        case Stage::validate:
            return "validate";
        case Stage::hash:
            return "hash";
        case Stage::cache:
            return "cache";
        case Stage::render:
            return "render";
        case Stage::store:
            return "store";
        case Stage::commit:
            return "commit";
        case Stage::move:
            return "move";
        case Stage::lease:
            return "lease";
        case Stage::internal:
            return "internal";
    }
    return "internal";
}

bool is_transient_errno(int err) {
    switch (err) {
        case ENOSPC:
        case EDQUOT:
        case EAGAIN:
        case EINTR:
        case EBUSY:
        case ETIMEDOUT:
        case ENETDOWN:
        case ENETUNREACH:
        case EHOSTUNREACH:
        case ECONNREFUSED:
        case ECONNRESET:
        case ESTALE:
        case ENOMEM:
        case EMFILE:
        case ENFILE:
            return true;
        default:
            return false;
    }
}

std::string Error::message() const {
    std::string out = stage_name(stage);
    out += ": ";
    if (!file.empty()) {
        out += file;
        out += ": ";
    }
    out += reason;
    return out;
}

}  // namespace imgspool
