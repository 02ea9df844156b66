// WebP is a RIFF container: "RIFF" <size> "WEBP", then chunks of <fourcc> <size> <payload>
// padded to an even length. The VP8X chunk's first byte flags which optional chunks exist.
#include "pipeline/webp_metadata.hpp"

#include <cstdint>

namespace imgspool {

namespace {

constexpr unsigned char kIccFlag = 0x20;
constexpr unsigned char kExifFlag = 0x08;
constexpr unsigned char kXmpFlag = 0x04;

std::uint32_t read_le32(std::string_view bytes, std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
}

void write_le32(std::string& bytes, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

Error malformed(const std::string& what) {
    return make_error(Stage::render, "the encoded WebP is malformed: " + what);
}

}  // namespace

Result<std::string> strip_webp_metadata(std::string_view webp) {
    if (webp.size() < 12 || webp.substr(0, 4) != "RIFF" || webp.substr(8, 4) != "WEBP") {
        return malformed("no RIFF/WEBP header");
    }
    std::string out(webp.substr(0, 12));
    std::size_t at = 12;
    while (at < webp.size()) {
        if (webp.size() - at < 8) return malformed("chunk header cut short");
        const std::string_view fourcc = webp.substr(at, 4);
        const std::uint32_t size = read_le32(webp, at + 4);
        const std::size_t padded = 8 + static_cast<std::size_t>(size) + (size & 1);
        if (padded > webp.size() - at)
            return malformed("chunk " + std::string(fourcc) + " cut short");
        if (fourcc != "EXIF" && fourcc != "XMP " && fourcc != "ICCP") {
            const std::size_t start = out.size();
            out.append(webp.substr(at, padded));
            if (fourcc == "VP8X" && size > 0) {
                out[start + 8] = static_cast<char>(static_cast<unsigned char>(out[start + 8]) &
                                                   ~(kIccFlag | kExifFlag | kXmpFlag));
            }
        }
        at += padded;
    }
    write_le32(out, 4, static_cast<std::uint32_t>(out.size() - 8));
    return out;
}

}  // namespace imgspool
