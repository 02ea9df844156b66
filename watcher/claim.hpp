// Claiming: an atomic rename of a stable inbox file into work/<upload_id>/<relative path>, so
// nobody can change it under us and a restart can tell which job it belongs to.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/spool_layout.hpp"

namespace imgspool {

struct ClaimedFile {
    std::string upload_id;
    std::filesystem::path work_path;  // work/<upload_id>/<relative>
    std::filesystem::path relative;   // as it was under inbox/
};

// Fails (Stage::claim) if the file vanished, is not a regular file, or is not under inbox/.
Result<ClaimedFile> claim(const SpoolLayout& spool, const std::filesystem::path& inbox_file,
                          const std::string& upload_id);

// Files already in work/ (left by a crash): one ClaimedFile per work/<upload_id>/... file.
std::vector<ClaimedFile> list_claimed(const SpoolLayout& spool);

// A new random (v4) UUID from libuuid, lowercase.
std::string new_upload_id();

}  // namespace imgspool
