#include "store/local_store.hpp"

#include <unistd.h>

#include <atomic>
#include <system_error>

#include "common/fs.hpp"

namespace imgspool {

namespace {

// Empty, absolute, or containing an empty, "." or ".." segment: could land outside the root.
bool is_safe_key(std::string_view key) {
    if (key.empty() || key.front() == '/' || key.find('\0') != std::string_view::npos) {
        return false;
    }
    size_t start = 0;
    while (start <= key.size()) {
        size_t slash = key.find('/', start);
        if (slash == std::string_view::npos) slash = key.size();
        std::string_view segment = key.substr(start, slash - start);
        if (segment.empty() || segment == "." || segment == "..") return false;
        start = slash + 1;
    }
    return true;
}

// Percent-encodes everything but unreserved characters and "/".
std::string url_path(std::string_view path) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : path) {
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        if (plain) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    return out;
}

std::filesystem::path absolute_or_same(const std::filesystem::path& p) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(p, ec);
    return ec ? p : abs.lexically_normal();
}

}  // namespace

LocalStore::LocalStore(std::filesystem::path root, std::string public_base_url)
    : root_(root.empty() ? root : absolute_or_same(root)),
      public_base_url_(std::move(public_base_url)) {
    while (!public_base_url_.empty() && public_base_url_.back() == '/') public_base_url_.pop_back();
}

Status LocalStore::put_all(const std::vector<PutObject>& objects) {
    for (const auto& object : objects) {
        if (!is_safe_key(object.key)) {
            return make_error(Stage::store,
                              "object key \"" + object.key +
                                  "\" would leave the store folder (absolute, empty or with "
                                  "\".\"/\"..\" segments)",
                              root_.string());
        }
    }
    for (const auto& object : objects) {
        auto path = root_ / object.key;
        if (auto st = fs::write_file_atomic(path, object.bytes); !st) {
            return make_error(Stage::store, "cannot store " + object.key + ": " + st.error().reason,
                              path.string());
        }
    }
    return ok_status();
}

std::string LocalStore::url_for(const std::string& key) const {
    std::string_view k = key;
    while (!k.empty() && k.front() == '/') k.remove_prefix(1);
    if (!public_base_url_.empty()) return public_base_url_ + "/" + url_path(k);
    return "file://" + url_path((root_ / k).string());
}

Status LocalStore::check() {
    if (root_.empty()) return make_error(Stage::store, "the local store folder is not set");
    if (auto st = fs::make_dirs(root_); !st) {
        return make_error(Stage::store, "cannot create the store folder: " + st.error().reason,
                          root_.string());
    }
    static std::atomic<unsigned> probes{0};
    auto probe = root_ / (".imgspool-probe-" + std::to_string(::getpid()) + "-" +
                          std::to_string(probes.fetch_add(1)));
    if (auto st = fs::write_file_atomic(probe, "probe"); !st) {
        return make_error(Stage::store, "the store folder is not writable: " + st.error().reason,
                          root_.string());
    }
    std::error_code ec;
    std::filesystem::remove(probe, ec);
    if (ec) {
        return make_error(Stage::store, "cannot remove the probe file: " + ec.message(),
                          probe.string());
    }
    return ok_status();
}

std::string LocalStore::describe() const {
    return "local:" + root_.string();
}

}  // namespace imgspool
