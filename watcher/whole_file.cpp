// Structural walks of JPEG, PNG and WebP that stop at the format's end, over bytes in memory or
// read from a file in windows.
//
// A walk looks only at bytes it has, so a prefix of a whole file follows the same path as the
// whole file until it runs out of bytes: every proper prefix ends as incomplete. Structure that
// cannot come from a cut (a bad segment length, a chunk type that is not letters) is not
// judged: the decoder fails such a file with its own reason instead of it waiting for bytes
// that will never come. Zero bytes where structure should be are incomplete, though: clients
// that reserve space first (Samba, aria2) leave zeros behind what they have written so far.
#include "watcher/whole_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/fs.hpp"

namespace imgspool {

namespace {

using Verdict = Wholeness::Verdict;

constexpr std::size_t kWindow = 64 * 1024;
// Reserved-but-unwritten space is recognised by this many zero bytes (or all that is left).
constexpr std::size_t kZeroRun = 16;

constexpr std::string_view kJpegMagic("\xFF\xD8\xFF", 3);
constexpr std::string_view kPngMagic("\x89PNG\r\n\x1A\n", 8);
constexpr std::size_t kWebpHeader = 12;  // "RIFF", size (little endian), "WEBP"

constexpr const char* kIncompleteJpeg = "incomplete JPEG: no end-of-image marker";
constexpr const char* kIncompletePng = "incomplete PNG: no IEND chunk";

// Random access to the bytes judged. get(offset, n) returns the bytes from offset on: at least
// n of them (n <= kWindow) unless the end comes first; empty at or past the end.
class Bytes {
  public:
    virtual ~Bytes() = default;
    virtual std::string_view get(std::uint64_t offset, std::size_t n) = 0;
    virtual std::uint64_t size() const = 0;
};

class MemoryBytes final : public Bytes {
  public:
    explicit MemoryBytes(std::string_view data) : data_(data) {}
    std::string_view get(std::uint64_t offset, std::size_t) override {
        return offset < data_.size() ? data_.substr(offset) : std::string_view();
    }
    std::uint64_t size() const override { return data_.size(); }

  private:
    std::string_view data_;
};

// A window of the file read with pread(). The file is judged as the size fstat gave when it was
// opened; if it shrinks meanwhile, its end is where reading stopped.
class FileBytes final : public Bytes {
  public:
    FileBytes(int fd, std::uint64_t size) : fd_(fd), size_(size), buffer_(kWindow, '\0') {}

    std::string_view get(std::uint64_t offset, std::size_t n) override {
        if (offset >= size_) return {};
        const std::uint64_t want = std::min<std::uint64_t>(n, size_ - offset);
        if (offset < start_ || offset + want > start_ + length_) fill(offset);
        if (offset < start_ || offset >= start_ + length_) return {};
        return std::string_view(buffer_).substr(offset - start_, start_ + length_ - offset);
    }
    std::uint64_t size() const override { return size_; }
    int error() const { return error_; }

  private:
    void fill(std::uint64_t offset) {
        start_ = offset;
        length_ = 0;
        const std::size_t want = std::min<std::uint64_t>(kWindow, size_ - offset);
        while (length_ < want) {
            const ssize_t got = ::pread(fd_, buffer_.data() + length_, want - length_,
                                        static_cast<off_t>(offset + length_));
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                if (got < 0) error_ = errno;
                size_ = offset + length_;  // shrunk (or unreadable): its end is here
                return;
            }
            length_ += static_cast<std::size_t>(got);
        }
    }

    int fd_;
    std::uint64_t size_;
    std::string buffer_;
    std::uint64_t start_ = 0;
    std::size_t length_ = 0;
    int error_ = 0;
};

Wholeness whole() {
    return {Verdict::whole, {}};
}
Wholeness incomplete(std::string reason) {
    return {Verdict::incomplete, std::move(reason)};
}
Wholeness not_judged(std::string reason) {
    return {Verdict::not_judged, std::move(reason)};
}

unsigned byte_at(std::string_view v, std::size_t i) {
    return static_cast<unsigned char>(v[i]);
}

// The next kZeroRun bytes from offset (or all that are left, at least one) are zero.
bool zeros_at(Bytes& b, std::uint64_t offset) {
    const std::string_view v = b.get(offset, kZeroRun);
    if (v.empty()) return false;
    const std::string_view run = v.substr(0, kZeroRun);
    return std::all_of(run.begin(), run.end(), [](char c) { return c == '\0'; });
}

Wholeness reserved(std::uint64_t offset, const char* format) {
    return incomplete(std::string("incomplete ") + format + ": zero bytes at offset " +
                      std::to_string(offset) + ": space reserved but not written yet");
}

// Structure that a cut cannot explain: zeros there mean space reserved and not yet written,
// anything else a damaged file the decoder will reject.
Wholeness damaged(Bytes& b, std::uint64_t offset, const char* format, const std::string& what) {
    if (zeros_at(b, offset)) return reserved(offset, format);
    return not_judged(std::string("damaged ") + format + ": " + what);
}

std::string hex_byte(unsigned v) {
    static constexpr char digits[] = "0123456789ABCDEF";
    return {digits[(v >> 4) & 0xF], digits[v & 0xF]};
}

// After a scan header: the offset of the 0xFF that starts the next marker, skipping stuffed
// zeros (FF 00), restart markers (FF D0-D7) and fill bytes (FF FF). nullopt: the data ends first.
std::optional<std::uint64_t> end_of_entropy_data(Bytes& b, std::uint64_t pos) {
    for (;;) {
        const std::string_view v = b.get(pos, 1);
        if (v.empty()) return std::nullopt;
        const void* ff = std::memchr(v.data(), 0xFF, v.size());
        if (ff == nullptr) {
            pos += v.size();
            continue;
        }
        const std::uint64_t at = pos + (static_cast<const char*>(ff) - v.data());
        const std::string_view next = b.get(at + 1, 1);
        if (next.empty()) return std::nullopt;
        const unsigned code = byte_at(next, 0);
        if (code == 0xFF) {
            pos = at + 1;  // fill: the marker starts at the last FF of the run
        } else if (code == 0x00 || (code >= 0xD0 && code <= 0xD7)) {
            pos = at + 2;
        } else {
            return at;
        }
    }
}

// SOI, then marker segments skipped by their length; after each scan header the entropy-coded
// data up to the next marker. EOI is the end (bytes after it are a trailer); thumbnails inside
// APP1 carry their own FF D9, but they are skipped with the segment that holds them.
Wholeness judge_jpeg(Bytes& b) {
    std::uint64_t pos = 2;
    for (;;) {
        std::string_view v = b.get(pos, 1);
        if (v.empty()) return incomplete(kIncompleteJpeg);
        if (byte_at(v, 0) != 0xFF) {
            return damaged(b, pos, "JPEG",
                           "no marker at offset " + std::to_string(pos) + " (found 0x" +
                               hex_byte(byte_at(v, 0)) + ")");
        }
        std::uint64_t at = pos + 1;  // the marker code, after any fill bytes
        for (;;) {
            v = b.get(at, 1);
            if (v.empty()) return incomplete(kIncompleteJpeg);
            if (byte_at(v, 0) != 0xFF) break;
            ++at;
        }
        const unsigned code = byte_at(v, 0);
        if (code == 0xD9) return whole();
        if (code == 0x00) {
            return damaged(b, at, "JPEG", "no marker at offset " + std::to_string(pos));
        }
        // TEM, RSTn and SOI stand alone; every other marker has a length.
        if (code == 0x01 || (code >= 0xD0 && code <= 0xD8)) {
            pos = at + 1;
            continue;
        }
        v = b.get(at + 1, 2);
        if (v.size() < 2) return incomplete(kIncompleteJpeg);
        const unsigned length = byte_at(v, 0) << 8 | byte_at(v, 1);
        if (length < 2) {
            return damaged(b, at + 1, "JPEG",
                           "marker FF " + hex_byte(code) + " at offset " + std::to_string(pos) +
                               " has length " + std::to_string(length));
        }
        const std::uint64_t end = at + 1 + length;
        if (b.get(end - 1, 1).empty()) return incomplete(kIncompleteJpeg);
        if (code != 0xDA) {
            pos = end;
            continue;
        }
        const std::optional<std::uint64_t> next = end_of_entropy_data(b, end);
        if (!next) return incomplete(kIncompleteJpeg);
        pos = *next;
    }
}

bool chunk_type_ok(std::string_view type) {
    return std::all_of(type.begin(), type.end(),
                       [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

// Chunks (length, type, data, CRC) after the signature, up to and including IEND.
Wholeness judge_png(Bytes& b) {
    std::uint64_t pos = kPngMagic.size();
    for (;;) {
        const std::string_view v = b.get(pos, 8);
        if (v.size() < 8) return incomplete(kIncompletePng);
        const std::uint64_t length = std::uint64_t{byte_at(v, 0)} << 24 | byte_at(v, 1) << 16 |
                                     byte_at(v, 2) << 8 | byte_at(v, 3);
        const std::string_view type = v.substr(4, 4);
        if (length > 0x7FFF'FFFF || !chunk_type_ok(type)) {
            return damaged(b, pos, "PNG", "no valid chunk at offset " + std::to_string(pos));
        }
        const std::uint64_t end = pos + 12 + length;
        if (b.get(end - 1, 1).empty()) return incomplete(kIncompletePng);
        if (type == "IEND") return whole();
        pos = end;
    }
}

std::uint32_t little_endian32(std::string_view v, std::size_t i) {
    return byte_at(v, i) | byte_at(v, i + 1) << 8 | byte_at(v, i + 2) << 16 |
           static_cast<std::uint32_t>(byte_at(v, i + 3)) << 24;
}

// As long as the RIFF header says (longer is fine), and no chunk header in it is zero-filled.
Wholeness judge_webp(Bytes& b) {
    const std::uint64_t total = std::uint64_t{little_endian32(b.get(0, kWebpHeader), 4)} + 8;
    for (std::uint64_t pos = kWebpHeader; pos + 8 <= total && b.size() >= total;) {
        const std::string_view v = b.get(pos, 8);
        if (v.size() < 8) break;  // the file shrank while it was read
        if (zeros_at(b, pos)) return reserved(pos, "WebP");
        const std::uint32_t length = little_endian32(v, 4);
        pos += 8 + std::uint64_t{length} + (length & 1);
    }
    if (b.size() < total) {
        return incomplete("incomplete WebP: " + std::to_string(b.size()) + " of " +
                          std::to_string(total) + " bytes");
    }
    return whole();
}

// The first bytes agree with `magic` as far as both go; '?' in magic matches any byte.
bool agrees(std::string_view head, std::string_view magic) {
    for (std::size_t i = 0; i < head.size() && i < magic.size(); ++i) {
        if (magic[i] != '?' && head[i] != magic[i]) return false;
    }
    return true;
}

Wholeness judge(Bytes& b) {
    const std::string_view head = b.get(0, kWebpHeader).substr(0, kWebpHeader);
    if (head.empty()) return incomplete("empty: nothing written yet");
    if (zeros_at(b, 0)) {
        return incomplete("starts with zero bytes: space reserved but not written yet");
    }
    const bool short_header = head.size() < kWebpHeader;
    if (agrees(head, kJpegMagic)) {
        return head.size() < kJpegMagic.size() ? incomplete(kIncompleteJpeg) : judge_jpeg(b);
    }
    if (agrees(head, kPngMagic)) {
        return head.size() < kPngMagic.size() ? incomplete(kIncompletePng) : judge_png(b);
    }
    if (agrees(head, "RIFF????WEBP")) {
        if (short_header) {
            return incomplete("incomplete WebP: " + std::to_string(head.size()) + " of at least " +
                              std::to_string(kWebpHeader) + " bytes");
        }
        return judge_webp(b);
    }
    return not_judged("not a JPEG, PNG or WebP");
}

}  // namespace

Wholeness judge_bytes(std::string_view bytes) {
    MemoryBytes b(bytes);
    return judge(b);
}

Result<Wholeness> judge_file(const std::filesystem::path& path, std::uint64_t max_read) {
    const fs::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    auto failure = [&](const std::string& what, int err) {
        Error e = make_error(Stage::watch, what + ": " + fs::errno_text(err), path.string());
        e.transient = is_transient_errno(err);
        return e;
    };
    if (!fd.valid()) return failure("cannot open", errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return failure("cannot stat", errno);
    if (!S_ISREG(st.st_mode)) return not_judged("not a regular file");
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    if (size > max_read) {
        return not_judged("larger than " + std::to_string(max_read) + " bytes: not read");
    }
    FileBytes b(fd.get(), size);
    Wholeness verdict = judge(b);
    if (b.error() != 0) return failure("cannot read", b.error());
    return verdict;
}

}  // namespace imgspool
