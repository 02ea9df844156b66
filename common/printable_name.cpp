#include "common/printable_name.hpp"

#include <algorithm>

namespace imgspool {
namespace {

bool continuation(unsigned char c, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return c >= lo && c <= hi;
}

// Length of the valid UTF-8 sequence starting at bytes[i], or 0 when none starts there
// (the Unicode standard's table 3-7 of well-formed byte sequences).
std::size_t sequence_length(std::string_view bytes, std::size_t i) {
    const auto at = [&](std::size_t k) -> unsigned char {
        return i + k < bytes.size() ? static_cast<unsigned char>(bytes[i + k]) : 0;
    };
    const unsigned char b0 = at(0);
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return continuation(at(1)) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
        const unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;  // no surrogates
        return continuation(at(1), lo, hi) && continuation(at(2)) ? 3 : 0;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;  // no overlong forms
        const unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
        return continuation(at(1), lo, hi) && continuation(at(2)) && continuation(at(3)) ? 4 : 0;
    }
    return 0;
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::string printable_name(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();) {
        if (const std::size_t n = sequence_length(bytes, i)) {
            out.append(bytes, i, n);
            i += n;
            continue;
        }
        const auto c = static_cast<unsigned char>(bytes[i++]);
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
    return out;
}

bool is_valid_utf8(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size();) {
        const std::size_t n = sequence_length(bytes, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string hex_bytes(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
    return out;
}

std::size_t utf8_prefix_length(std::string_view bytes, std::size_t max_bytes) {
    std::size_t i = 0;
    while (i < bytes.size()) {
        const std::size_t n = std::max<std::size_t>(1, sequence_length(bytes, i));
        if (i + n > max_bytes) break;
        i += n;
    }
    return i;
}

}  // namespace imgspool
