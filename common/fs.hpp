// File-system helpers that never overwrite a user's file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>

#include "common/error.hpp"

namespace imgspool::fs {

namespace stdfs = std::filesystem;

// Owns a file descriptor; closes it once.
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }

  private:
    int fd_ = -1;
};

// Creates dir and its parents (mode 0755); an existing directory is fine.
Status make_dirs(const stdfs::path& dir);

// Atomically renames from -> to, failing with EEXIST instead of replacing an existing `to`.
// Uses renameat2(RENAME_NOREPLACE); on file systems without it (NFS), link()+unlink().
// Creates the parent folders of `to`.
Status rename_noreplace(const stdfs::path& from, const stdfs::path& to);

// The longest file name (one path component) Linux file systems take, in bytes.
inline constexpr std::size_t kNameMax = 255;

// "stem.N.ext" for the file name `name` (a single component), at most kNameMax bytes: when the
// suffix would not fit, the stem is shortened (at a UTF-8 boundary) and the extension kept.
std::string numbered_name(const std::string& name, int n);

// Moves `from` to `to`, or to "stem.1.ext", "stem.2.ext", ... if the name is taken.
// Returns the path actually used. Every numbered name fits in kNameMax bytes (numbered_name).
Result<stdfs::path> move_unique(const stdfs::path& from, const stdfs::path& to);

// Reads a whole regular file, refusing to follow a symlink (O_NOFOLLOW).
Result<std::string> read_file(const stdfs::path& path);

// Writes data to `path` whole or not at all: through a temporary file beside it that is synced
// and then renamed, so a reader never sees an empty or partial file. With Existing::keep a file
// already at `path` is never replaced (the call fails; the caller can tell by looking, as
// rename_noreplace); Existing::replace is only for files the daemon owns.
enum class Existing { keep, replace };
Status write_file_atomic(const stdfs::path& path, std::string_view data, Existing existing);

// "errno text" for the current errno, e.g. "No such file or directory".
std::string errno_text(int err);

}  // namespace imgspool::fs
