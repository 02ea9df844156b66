// Claiming: an atomic rename of a stable inbox file into work/<upload_id>/<relative path>, so
// nobody can change it under us and a restart can tell which job it belongs to.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/spool_layout.hpp"
#include "watcher/file_state.hpp"

namespace imgspool {

struct ClaimedFile {
    std::string upload_id;
    std::filesystem::path work_path;  // work/<upload_id>/<relative>
    std::filesystem::path relative;   // as it was under inbox/
    FileState state;                  // lstat of work_path right after the rename
};

// Fails (Stage::claim) if the file vanished, is not a regular file, or is not under inbox/;
// with a transient error if another process has it open for writing (a read lease is held
// across the rename, so no writer can open it between that check and the move) or the
// rename fails for a reason that passes (ENOSPC, EAGAIN, ...). Nothing is left in work/ when
// the claim fails.
Result<ClaimedFile> claim(const SpoolLayout& spool, const std::filesystem::path& inbox_file,
                          const std::string& upload_id);

// Removes dir and the empty folders below it (a file anywhere inside keeps its folders).
void remove_empty_folders(const std::filesystem::path& dir);

// Files already in work/ (left by a crash): one ClaimedFile per work/<upload_id>/... file.
std::vector<ClaimedFile> list_claimed(const SpoolLayout& spool);

// The files of one job in work/<upload_id>/ (a job adopted from another node).
std::vector<ClaimedFile> list_claimed(const SpoolLayout& spool, const std::string& upload_id);

// A new random (v4) UUID from libuuid, lowercase.
std::string new_upload_id();

}  // namespace imgspool
