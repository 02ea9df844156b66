// The identity of a dropped file at the moment it is claimed, as the job record's claim_key:
// nodes sharing a spool each see the file, and the database lets exactly one of them record a
// claim for it (upload_jobs' unique (spool, claim_key) among unfinished jobs).
#pragma once

#include <filesystem>
#include <string>

#include "watcher/file_state.hpp"

namespace imgspool {

// "<ino>:<size>:<mtime_ns>:<ctime_ns>:<first 16 hex digits of sha256(relative path bytes)>".
// The inode number is the file server's own on NFS, the same on every client (st_dev is not,
// so it is left out). The name is hashed, not stored: it is bytes, and a hard link or another
// name for the same file is another claim, which only one rename can win. ctime moves at every
// rename, so a file dropped again under an inode number that was freed meanwhile is a new key.
std::string claim_key_of(const FileState& state, const std::filesystem::path& relative);

}  // namespace imgspool
