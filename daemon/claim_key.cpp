#include "daemon/claim_key.hpp"

#include "pipeline/hash.hpp"

namespace imgspool {

std::string claim_key_of(const FileState& state, const std::filesystem::path& relative) {
    return std::to_string(state.ino) + ":" + std::to_string(state.size) + ":" +
           std::to_string(state.mtime_ns) + ":" + std::to_string(state.ctime_ns) + ":" +
           sha256_hex(relative.native()).substr(0, 16);
}

}  // namespace imgspool
