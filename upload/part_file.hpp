// A temporary file an upload is streamed into: "<owner>.<random>.part" in the backend's
// temp_dir(), removed when its owner goes away unless it was handed on. Every failure path of a
// request, a client that disconnects included, ends in the destructor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "common/error.hpp"
#include "common/fs.hpp"

namespace imgspool::upload {

class PartFile {
  public:
    // Creates a new file (O_EXCL|O_NOFOLLOW, mode 0640) in `dir` named "<owner>.<32 random hex
    // digits>.part", or "<32 random hex digits>.part" when `owner` is "". The owner (the daemon's
    // node) lets daemons sharing the folder tell their files apart (is_part_name_of).
    // Stage::claim errors, transient when the errno passes by itself (ENOSPC, EMFILE ...).
    static Result<PartFile> create(const std::filesystem::path& dir, std::string_view owner = {});

    PartFile() = default;
    PartFile(PartFile&& other) noexcept;
    PartFile& operator=(PartFile&& other) noexcept;
    ~PartFile();

    bool valid() const { return !path_.empty(); }
    const std::filesystem::path& path() const { return path_; }
    std::uint64_t size() const { return size_; }

    // Appends all of `data` (a full-write loop). Errors as for create().
    Status write(std::string_view data);
    // Closes the descriptor; the file stays until the destructor or release().
    Status close();
    // Someone else owns the file now (it was accepted): the destructor leaves it alone.
    void release() { path_.clear(); }

  private:
    void remove();

    fs::UniqueFd fd_;
    std::filesystem::path path_;
    std::uint64_t size_ = 0;
};

// Whether `name` is a name create() gives for `owner`: owner "a" does not match the files of
// owner "a.b", and owner "" matches only the names without an owner.
bool is_part_name_of(std::string_view name, std::string_view owner);

}  // namespace imgspool::upload
