// A temporary file an upload is streamed into: "<random>.part" in the backend's temp_dir(),
// removed when its owner goes away unless it was handed on. Every failure path of a request,
// a client that disconnects included, ends in the destructor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "common/error.hpp"
#include "common/fs.hpp"

namespace imgspool::upload {

class PartFile {
  public:
    // Creates a new file (O_EXCL|O_NOFOLLOW, mode 0640) with a random name in `dir`.
    // Stage::claim errors, transient when the errno passes by itself (ENOSPC, EMFILE ...).
    static Result<PartFile> create(const std::filesystem::path& dir);

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

}  // namespace imgspool::upload
