// What lstat says about an inbox entry, and how to list a folder without following symlinks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace imgspool {

// The facts that must stay the same for a file to count as settled. Taken with lstat, so a
// symlink describes itself, never its target.
struct FileState {
    dev_t dev = 0;
    ino_t ino = 0;
    mode_t type = 0;  // S_IFREG, S_IFLNK, S_IFIFO, ... (st_mode & S_IFMT)
    off_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;  // also moves on chmod, utimes and rename: any change at all

    bool regular() const;
    bool directory() const;
    bool operator==(const FileState&) const = default;
};

// nullopt if the entry does not exist (or cannot be inspected).
std::optional<FileState> lstat_state(const std::filesystem::path& path);
// The same for an open descriptor.
std::optional<FileState> fstat_state(int fd);

// What differs between two states of a file, for a reason a person reads:
// "size 1000 -> 2000 bytes", "modified", "replaced by another file"; empty when equal.
std::string describe_change(const FileState& before, const FileState& after);

struct FolderEntry {
    std::string name;
    FileState state;
};

// The entries of a folder ("." and ".." left out), each described by lstat. Opens the folder
// with O_NOFOLLOW, so a symlink to a folder is never entered. An unreadable folder is empty.
std::vector<FolderEntry> list_folder(const std::filesystem::path& dir);

}  // namespace imgspool
