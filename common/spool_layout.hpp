// The folders of one spool: users drop into inbox/, the daemon owns work/, done/ and failed/.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace imgspool {

// How new files in inbox/ are noticed. inotify sees only writes made through this host's kernel;
// a spool written by other hosts (NFS, shared storage) is polled instead.
enum class WatchMode { inotify, poll };

struct SpoolLayout {
    std::string name;            // [[spool]] name
    std::filesystem::path root;  // holds the four folders below
    std::string profile;         // profile name used for this spool's files
    WatchMode watch = WatchMode::inotify;
    std::chrono::seconds poll{2};  // watch = poll: how often inbox/ is listed

    std::filesystem::path inbox() const { return root / "inbox"; }
    std::filesystem::path work() const { return root / "work"; }
    std::filesystem::path done() const { return root / "done"; }
    std::filesystem::path failed() const { return root / "failed"; }
};

}  // namespace imgspool
