#include "common/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/printable_name.hpp"

namespace imgspool::fs {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
}

std::string errno_text(int err) {
    char buf[256];
    // GNU strerror_r returns the message pointer.
    return ::strerror_r(err, buf, sizeof buf);
}

Status make_dirs(const stdfs::path& dir) {
    std::error_code ec;
    stdfs::create_directories(dir, ec);
    if (ec && !stdfs::is_directory(dir)) {
        Error e =
            make_error(Stage::internal, "cannot create folder: " + ec.message(), dir.string());
        e.transient = is_transient_errno(ec.value());  // both categories hold errno values here
        return e;
    }
    return ok_status();
}

Status rename_noreplace(const stdfs::path& from, const stdfs::path& to) {
    if (to.has_parent_path()) {
        if (auto st = make_dirs(to.parent_path()); !st) return st;
    }
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
        return ok_status();
    }
    int err = errno;
    if (err == EINVAL || err == ENOSYS) {
        // No RENAME_NOREPLACE here: link() fails with EEXIST rather than replace.
        if (::link(from.c_str(), to.c_str()) == 0) {
            if (::unlink(from.c_str()) == 0) return ok_status();
            err = errno;
            ::unlink(to.c_str());
        } else {
            err = errno;
        }
    }
    Error e = make_error(Stage::move, "cannot rename to " + to.string() + ": " + errno_text(err),
                         from.string());
    e.transient = is_transient_errno(err);
    return e;
}

std::string numbered_name(const std::string& name, int n) {
    const std::string suffix = "." + std::to_string(n);
    std::string stem = stdfs::path(name).stem().native();
    std::string ext = stdfs::path(name).extension().native();
    // An extension that leaves almost no room for the stem is no extension worth keeping.
    constexpr std::size_t kMinStem = 8;
    if (ext.size() + suffix.size() + kMinStem > kNameMax) {
        stem = name;
        ext.clear();
    }
    const std::size_t room = kNameMax - suffix.size() - ext.size();
    if (stem.size() > room) stem.resize(utf8_prefix_length(stem, room));
    return stem + suffix + ext;
}

Result<stdfs::path> move_unique(const stdfs::path& from, const stdfs::path& to) {
    const std::string name = to.filename().native();
    for (int n = 0; n < 10000; ++n) {
        stdfs::path candidate = n == 0 ? to : to.parent_path() / numbered_name(name, n);
        Status st = rename_noreplace(from, candidate);
        if (st) return candidate;
        std::error_code ec;
        if (!stdfs::exists(stdfs::symlink_status(candidate, ec))) return st.error();
    }
    return make_error(Stage::move, "no free name near " + to.string(), from.string());
}

Result<std::string> read_file(const stdfs::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
        return make_error(Stage::internal, "cannot open: " + errno_text(errno), path.string());
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return make_error(Stage::internal, "not a regular file", path.string());
    }
    std::string data;
    data.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < data.size()) {
        ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return make_error(Stage::internal, "read failed: " + errno_text(errno), path.string());
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    data.resize(got);
    return data;
}

namespace {

// Creates a temporary file beside `path` holding `data`, synced to disk; returns its path.
// The name is short (".imgspool-XXXXXX", mkostemp: created exclusively), so a temporary beside
// a 255-byte name still fits.
Result<std::string> write_temporary_beside(const stdfs::path& path, std::string_view data) {
    const stdfs::path dir = path.has_parent_path() ? path.parent_path() : stdfs::path(".");
    std::string tmp = (dir / ".imgspool-XXXXXX").string();
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) {
        const int err = errno;
        Error e =
            make_error(Stage::internal, "cannot create a file: " + errno_text(err), dir.string());
        e.transient = is_transient_errno(err);
        return e;
    }
    int err = ::fchmod(fd.get(), 0644) == 0 ? 0 : errno;  // mkostemp makes it 0600
    for (size_t put = 0; err == 0 && put < data.size();) {
        const ssize_t n = ::write(fd.get(), data.data() + put, data.size() - put);
        if (n >= 0)
            put += static_cast<size_t>(n);
        else if (errno != EINTR)
            err = errno;
    }
    if (err == 0 && ::fsync(fd.get()) != 0) err = errno;
    if (err != 0) {
        ::unlink(tmp.c_str());
        Error e = make_error(Stage::internal, "cannot write: " + errno_text(err), path.string());
        e.transient = is_transient_errno(err);
        return e;
    }
    return tmp;
}

}  // namespace

Status write_file_atomic(const stdfs::path& path, std::string_view data, Existing existing) {
    if (path.has_parent_path()) {
        if (auto st = make_dirs(path.parent_path()); !st) return st;
    }
    Result<std::string> tmp = write_temporary_beside(path, data);
    if (!tmp) return tmp.error();
    if (existing == Existing::keep) {
        Status st = rename_noreplace(*tmp, path);
        if (!st) ::unlink(tmp->c_str());
        return st;
    }
    if (::rename(tmp->c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp->c_str());
        Error e = make_error(Stage::internal, "cannot rename: " + errno_text(err), path.string());
        e.transient = is_transient_errno(err);
        return e;
    }
    return ok_status();
}

}  // namespace imgspool::fs
