#include "store/local_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <set>
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

Error store_error(int err, const std::string& what, const std::filesystem::path& path) {
    Error e = make_error(Stage::store, what + ": " + fs::errno_text(err), path.string());
    e.transient = is_transient_store_errno(err);
    return e;
}

Status make_folder(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec && !std::filesystem::is_directory(dir)) {
        return store_error(ec.value(), "cannot create folder", dir);
    }
    return ok_status();
}

// Writes data under path through a hidden temporary file in the same folder, fsync and a
// rename: the final name never holds part of an object, and on any failure (a full disk
// included) the temporary file is removed again.
Status write_object(const std::filesystem::path& path, std::string_view data) {
    const std::string name = path.filename().string();
    std::string tmp =
        (path.parent_path() / ("." + name.substr(0, 200) + ".imgspool-XXXXXX")).string();
    fs::UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) return store_error(errno, "cannot create a temporary file", tmp);
    const auto fail = [&tmp](int err, const std::string& what, const std::filesystem::path& p) {
        ::unlink(tmp.c_str());
        return store_error(err, what, p);
    };
    if (::fchmod(fd.get(), 0644) != 0) return fail(errno, "cannot set the mode", tmp);
    std::size_t put = 0;
    while (put < data.size()) {
        const ssize_t n = ::write(fd.get(), data.data() + put, data.size() - put);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(errno, "write failed", tmp);
        put += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return fail(errno, "fsync failed", tmp);
    // NFS reports a full disk or quota as late as close().
    if (::close(fd.release()) != 0) return fail(errno, "close failed", tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(errno, "rename failed", path);
    return ok_status();
}

// Makes the renames in dir durable.
Status sync_folder(const std::filesystem::path& dir) {
    fs::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0) return store_error(errno, "fsync failed", dir);
    return ok_status();
}

Error unsafe_key(const std::string& key, const std::filesystem::path& root) {
    return make_error(Stage::store,
                      "object key \"" + key +
                          "\" would leave the store folder (absolute, empty or with "
                          "\".\"/\"..\" segments)",
                      root.string());
}

}  // namespace

bool is_transient_store_errno(int err) {
    return is_transient_errno(err) || err == EROFS || err == EIO;
}

LocalStore::LocalStore(std::filesystem::path root, std::string public_base_url)
    : root_(root.empty() ? root : absolute_or_same(root)),
      public_base_url_(std::move(public_base_url)) {
    while (!public_base_url_.empty() && public_base_url_.back() == '/') public_base_url_.pop_back();
}

Status LocalStore::put_all(const std::vector<PutObject>& objects) {
    for (const auto& object : objects) {
        if (!is_safe_key(object.key)) return unsafe_key(object.key, root_);
    }
    std::vector<std::string> written;
    std::set<std::filesystem::path> folders;
    const auto give_up = [&](Error failure) {
        // A transient failure keeps what was written: the retry writes the same keys again.
        if (failure.transient || written.empty()) return failure;
        if (Status removed = remove_all(written); !removed) {
            failure.reason +=
                "; removing the objects already stored failed too: " + removed.error().message();
        }
        return failure;
    };
    for (const auto& object : objects) {
        const auto path = root_ / object.key;
        Status st = make_folder(path.parent_path());
        if (st) st = write_object(path, object.bytes);
        if (!st) {
            Error failure = st.error();
            failure.reason = "cannot store " + object.key + ": " + failure.reason;
            failure.file = path.string();
            return give_up(std::move(failure));
        }
        written.push_back(object.key);
        folders.insert(path.parent_path());
    }
    for (const auto& folder : folders) {
        if (Status st = sync_folder(folder); !st) return give_up(st.error());
    }
    return ok_status();
}

Status LocalStore::remove_all(const std::vector<std::string>& keys) {
    std::optional<Error> first_failure;
    for (const std::string& key : keys) {
        if (!is_safe_key(key)) {
            if (!first_failure) first_failure = unsafe_key(key, root_);
            continue;
        }
        const auto path = root_ / key;
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            if (!first_failure) first_failure = store_error(errno, "cannot remove " + key, path);
            continue;
        }
        // Folders the store made for the key (images/<upload_id>/) go when they are empty.
        for (auto dir = path.parent_path();
             dir != root_ && dir.string().size() > root_.string().size(); dir = dir.parent_path()) {
            if (::rmdir(dir.c_str()) != 0) break;
        }
    }
    if (first_failure) return *first_failure;
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
    if (Status st = make_folder(root_); !st) {
        Error e = st.error();
        e.reason = "cannot create the store folder: " + e.reason;
        return e;
    }
    static std::atomic<unsigned> probes{0};
    auto probe = root_ / (".imgspool-probe-" + std::to_string(::getpid()) + "-" +
                          std::to_string(probes.fetch_add(1)));
    if (Status st = write_object(probe, "probe"); !st) {
        Error e = st.error();
        e.reason = "the store folder is not writable: " + e.reason;
        e.file = root_.string();
        return e;
    }
    if (::unlink(probe.c_str()) != 0) {
        return store_error(errno, "cannot remove the probe file", probe);
    }
    return ok_status();
}

std::string LocalStore::describe() const {
    return "local:" + root_.string();
}

}  // namespace imgspool
