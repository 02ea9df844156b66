// SHA-256 with OpenSSL.
#pragma once

#include <string>
#include <string_view>

namespace imgspool {

std::string sha256_hex(std::string_view data);  // 64 lowercase hex digits

}  // namespace imgspool
