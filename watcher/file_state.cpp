#include "watcher/file_state.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>

namespace imgspool {

namespace {

FileState from_stat(const struct stat& st) {
    FileState s;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.type = st.st_mode & S_IFMT;
    s.size = st.st_size;
    s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    s.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
    return s;
}

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

}  // namespace

bool FileState::regular() const {
    return type == S_IFREG;
}

bool FileState::directory() const {
    return type == S_IFDIR;
}

std::optional<FileState> lstat_state(const std::filesystem::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
    return from_stat(st);
}

std::optional<FileState> fstat_state(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return std::nullopt;
    return from_stat(st);
}

std::string describe_change(const FileState& before, const FileState& after) {
    if (before == after) return {};
    if (before.dev != after.dev || before.ino != after.ino || before.type != after.type) {
        return "replaced by another file";
    }
    if (before.size != after.size) {
        return "size " + std::to_string(before.size) + " -> " + std::to_string(after.size) +
               " bytes";
    }
    if (before.mtime_ns != after.mtime_ns) return "modified";
    return "its attributes changed";
}

std::vector<FolderEntry> list_folder(const std::filesystem::path& dir) {
    std::vector<FolderEntry> entries;
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return entries;
    std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd));  // owns fd from here on
    if (!d) {
        ::close(fd);
        return entries;
    }
    while (const dirent* e = ::readdir(d.get())) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        struct stat st {};
        if (::fstatat(::dirfd(d.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        entries.push_back({e->d_name, from_stat(st)});
    }
    return entries;
}

}  // namespace imgspool
