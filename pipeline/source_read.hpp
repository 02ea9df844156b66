// Reading a claimed source: the bytes a job renders and hashes are the bytes of the file as it
// was claimed, checked before and after reading, and whole by the file's own format.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "watcher/file_state.hpp"

namespace imgspool {

struct SourceRead {
    std::string bytes;
    FileState state;  // fstat of the file the bytes came from
};

struct SourceReadLimits {
    std::uint64_t max_bytes = 0;
    // A file that is still incomplete and was last modified longer ago than this fails;
    // before that it is a transient (Stage::claim) error: wait for the rest.
    std::chrono::seconds abandon_after{3600};
};

// Errors: transient Stage::claim when the file changed since `claimed` (or while it was read) or
// is not whole yet; the file's state is then in `seen`. Permanent when it vanished, is not a
// regular file, is larger than max_bytes or stayed incomplete past abandon_after.
Result<SourceRead> read_claimed_source(const std::filesystem::path& path,
                                       const std::optional<FileState>& claimed,
                                       const SourceReadLimits& limits,
                                       std::optional<FileState>& seen);

}  // namespace imgspool
