// File names are bytes; JSON, logs and the database want text. printable_name() is the one
// conversion between them: valid UTF-8 stays as it is, and each byte that is not part of valid
// UTF-8 becomes the four characters \xNN. Control characters are valid UTF-8 and are left to
// each format's own escaping (JSON writes \n and \u0001). The result is always valid UTF-8.
// A name that literally contains "\xff" prints like the byte 0xff; where that matters (the
// failure note) hex_bytes() of the original is written beside it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace imgspool {

std::string printable_name(std::string_view bytes);

// Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), the same
// rule nlohmann::json applies when it writes a string.
bool is_valid_utf8(std::string_view bytes);

// Two lower-case hex digits per byte: "\xff\xfe" -> "fffe".
std::string hex_bytes(std::string_view bytes);

// The length of the longest prefix of bytes, at most max_bytes long, that does not end inside a
// valid UTF-8 sequence (bytes outside valid UTF-8 count one each).
std::size_t utf8_prefix_length(std::string_view bytes, std::size_t max_bytes);

}  // namespace imgspool
