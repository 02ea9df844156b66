// Which inodes a process has inotify watches on, read from /proc/<pid>/fdinfo: the kernel lists
// every watch of an inotify descriptor as "inotify wd:1 ino:1a2b sdev:800021 mask:... ".
// Proof that a poll spool arms no watch on its inbox.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <system_error>

namespace imgspool::testing {

// Inode numbers watched by any inotify descriptor of `pid` (empty if it has none).
inline std::set<ino_t> inotify_watched_inodes(pid_t pid) {
    namespace stdfs = std::filesystem;
    std::set<ino_t> inodes;
    const stdfs::path proc = "/proc/" + std::to_string(pid);
    std::error_code ec;
    for (const auto& fd : stdfs::directory_iterator(proc / "fd", ec)) {
        std::error_code link_ec;
        if (stdfs::read_symlink(fd.path(), link_ec).native() != "anon_inode:inotify") continue;
        std::ifstream info(proc / "fdinfo" / fd.path().filename());
        std::string line;
        while (std::getline(info, line)) {
            if (line.rfind("inotify ", 0) != 0) continue;  // the descriptor's own pos:, ino: ...
            std::istringstream words(line);
            std::string word;
            while (words >> word) {
                if (word.rfind("ino:", 0) == 0) {
                    inodes.insert(std::stoull(word.substr(4), nullptr, 16));
                }
            }
        }
    }
    return inodes;
}

// The inode number of a path (0 if it cannot be read).
inline ino_t inode_of(const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace imgspool::testing
