// Structural walks of JPEG, PNG, WebP, GIF, TIFF and HEIF that stop at the format's end, over
// bytes in memory or read from a file in windows.
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
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <variant>
#include <vector>

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

constexpr std::size_t kGifHeader = 6;  // "GIF87a" or "GIF89a"
constexpr std::string_view kTiffLittle("II*\0", 4);
constexpr std::string_view kTiffBig("MM\0*", 4);
constexpr std::string_view kBigTiffLittle("II+\0", 4);
constexpr std::string_view kBigTiffBig("MM\0+", 4);
constexpr std::size_t kTiffHeader = 8;  // byte order, 42, offset of the first IFD
constexpr std::string_view kHeifMagic("\0\0??ftyp", 8);
constexpr std::size_t kHead = 12;  // enough to tell the formats apart

constexpr const char* kIncompleteJpeg = "incomplete JPEG: no end-of-image marker";
constexpr const char* kIncompletePng = "incomplete PNG: no IEND chunk";
constexpr const char* kIncompleteGif = "incomplete GIF: no trailer";
constexpr const char* kIncompleteHeif = "incomplete HEIF: no ftyp box yet";
constexpr const char* kUnknown = "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC";

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

// Where the zero bytes at the end of the file begin (its size when the last byte is not zero):
// what a client that reserves space leaves behind what it has written so far.
std::uint64_t trailing_zeros(Bytes& b) {
    std::uint64_t end = b.size();
    while (end > 0) {
        const std::uint64_t from = end > kWindow ? end - kWindow : 0;
        const std::string_view v = b.get(from, end - from).substr(0, end - from);
        if (v.size() < end - from) return b.size();  // it shrank: judged by what was read
        const auto nonzero = std::find_if(v.rbegin(), v.rend(), [](char c) { return c != '\0'; });
        if (nonzero != v.rend()) return from + (v.rend() - nonzero);
        end = from;
    }
    return 0;
}

std::string extent(std::uint64_t from, std::uint64_t to, std::uint64_t size) {
    return "at offset " + std::to_string(from) + ".." + std::to_string(to) + ", the file has " +
           std::to_string(size) + " bytes";
}

// A GIF colour table's size from the packed byte that flags it.
std::uint64_t colour_table_size(unsigned packed) {
    return (packed & 0x80) != 0 ? 3u << ((packed & 7) + 1) : 0;
}

// Data sub-blocks (a size byte, then that many bytes) up to the zero-size terminator: the
// offset after it; nullopt when the bytes end first.
std::optional<std::uint64_t> after_sub_blocks(Bytes& b, std::uint64_t pos) {
    for (;;) {
        const std::string_view v = b.get(pos, 1);
        if (v.empty()) return std::nullopt;
        const unsigned n = byte_at(v, 0);
        pos += 1 + n;
        if (n == 0) return pos;
    }
}

// Header, logical screen descriptor and global colour table, then extensions (introducer, label,
// sub-blocks) and images (descriptor, local colour table, LZW code size, sub-blocks) up to the
// trailer.
Wholeness judge_gif(Bytes& b) {
    const std::string_view screen = b.get(kGifHeader, 7);
    if (screen.size() < 7) return incomplete(kIncompleteGif);
    std::uint64_t pos = kGifHeader + 7 + colour_table_size(byte_at(screen, 4));
    for (;;) {
        std::string_view v = b.get(pos, 1);
        if (v.empty()) return incomplete(kIncompleteGif);
        const unsigned introducer = byte_at(v, 0);
        if (introducer == 0x3B) return whole();
        if (introducer != 0x21 && introducer != 0x2C) {
            return damaged(b, pos, "GIF",
                           "no block at offset " + std::to_string(pos) + " (found 0x" +
                               hex_byte(introducer) + ")");
        }
        std::uint64_t data = pos + 2;  // an extension's sub-blocks follow its label
        if (introducer == 0x2C) {
            v = b.get(pos, 10);
            if (v.size() < 10) return incomplete(kIncompleteGif);
            data = pos + 10 + colour_table_size(byte_at(v, 9)) + 1;  // + LZW minimum code size
        }
        const std::optional<std::uint64_t> next = after_sub_blocks(b, data);
        if (!next) return incomplete(kIncompleteGif);
        pos = *next;
    }
}

// The size of one value of a TIFF field type: BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE,
// UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE, IFD, and BigTIFF's LONG8, SLONG8, IFD8.
// 0: an unknown type, whose entry libtiff ignores.
std::uint64_t tiff_type_size(unsigned type) {
    constexpr std::array<std::uint8_t, 19> sizes{0, 1, 1, 2, 4, 8, 1, 1, 2, 4,
                                                 8, 4, 8, 4, 0, 0, 8, 8, 8};
    return type < sizes.size() ? sizes[type] : 0;
}

// SHORT, LONG, IFD, LONG8, IFD8: the types of offsets and byte counts.
bool tiff_integer_type(unsigned type) {
    return type == 3 || type == 4 || type == 13 || type == 16 || type == 18;
}

// Walks a classic TIFF's IFDs (the chain from the header, and the SubIFD, Exif, GPS and
// Interoperability IFDs they point to): each IFD, each value that does not fit in its entry and
// each strip or tile must lie within the file. libtiff writes the strips first and the IFD and
// its values after them, so a cut anywhere leaves some reference past the end.
class TiffWalk {
  public:
    TiffWalk(Bytes& b, bool little) : b_(b), little_(little) {}

    Wholeness run() {
        const std::uint64_t first = u32(b_.get(4, 4), 0);
        if (first == 0) return damaged(b_, 4, "TIFF", "no first IFD");
        std::vector<std::pair<std::uint64_t, bool>> pending{{first, true}};  // offset, chained
        while (!pending.empty()) {
            const auto [offset, chained] = pending.back();
            pending.pop_back();
            if (offset < kTiffHeader) {
                return not_judged("damaged TIFF: IFD at offset " + std::to_string(offset));
            }
            if (!visited_.insert(offset).second) {
                return not_judged("damaged TIFF: IFD at offset " + std::to_string(offset) +
                                  " is referred to twice");
            }
            if (visited_.size() > kMaxIfds) return too_large();
            if (std::optional<Wholeness> w = ifd(offset, chained, pending)) return *w;
        }
        return whole();
    }

  private:
    static constexpr std::size_t kMaxIfds = 10'000;
    static constexpr std::uint64_t kMaxSteps = std::uint64_t{1} << 24;
    static constexpr std::uint64_t kLimit = std::uint64_t{1} << 32;  // classic TIFF's offsets

    struct Entry {
        unsigned tag = 0;
        unsigned type = 0;
        std::uint64_t size = 0;   // of one value
        std::uint64_t count = 0;  // of values
        std::uint64_t at = 0;     // where the values are: in the entry, or where it points
    };

    unsigned u16(std::string_view v, std::size_t i) const {
        return little_ ? byte_at(v, i) | byte_at(v, i + 1) << 8
                       : byte_at(v, i) << 8 | byte_at(v, i + 1);
    }
    std::uint64_t u32(std::string_view v, std::size_t i) const {
        return little_ ? std::uint64_t{u16(v, i + 2)} << 16 | u16(v, i)
                       : std::uint64_t{u16(v, i)} << 16 | u16(v, i + 2);
    }
    std::uint64_t value(std::string_view v, std::size_t i, std::uint64_t size) const {
        if (size == 2) return u16(v, i);
        if (size == 4) return u32(v, i);
        return little_ ? u32(v, i + 4) << 32 | u32(v, i) : u32(v, i) << 32 | u32(v, i + 4);
    }

    // Zero from here to the end of the file: not written yet, if the value read here is zero
    // where it should not be (a reserved file holds zeros behind all it has written).
    bool in_trailing_zeros(std::uint64_t offset) {
        if (!zeros_from_) zeros_from_ = trailing_zeros(b_);
        return offset >= *zeros_from_ && offset < b_.size();
    }

    // Each IFD entry and each strip or tile costs a step: a crafted file whose IFDs all point at
    // one large array is not walked for ever.
    bool step(std::uint64_t n = 1) {
        if (n > steps_left_) return false;
        steps_left_ -= n;
        return true;
    }

    static Wholeness too_large() {
        return not_judged("TIFF with more than " + std::to_string(kMaxIfds) + " IFDs or " +
                          std::to_string(kMaxSteps) + " entries, strips and tiles: not judged");
    }

    Wholeness past_end(const std::string& what, std::uint64_t from, std::uint64_t to) const {
        return incomplete("incomplete TIFF: " + what + " " + extent(from, to, b_.size()));
    }

    // nullopt: the IFD and all it refers to lie within the file; its chained and child IFDs
    // are added to `pending`.
    std::optional<Wholeness> ifd(std::uint64_t offset, bool chained,
                                 std::vector<std::pair<std::uint64_t, bool>>& pending) {
        std::string_view v = b_.get(offset, 2);
        if (v.size() < 2) return past_end("IFD", offset, offset + 2);
        const std::uint64_t n = u16(v, 0);
        if (n == 0) {
            return damaged(b_, offset, "TIFF",
                           "IFD at offset " + std::to_string(offset) + " has no entries");
        }
        const std::uint64_t end = offset + 2 + 12 * n + 4;
        if (end > b_.size()) return past_end("IFD", offset, end);
        if (!step(n)) return too_large();
        std::vector<Entry> entries;
        for (std::uint64_t at = offset + 2; at < end - 4; at += 12) {
            v = b_.get(at, 12);
            if (v.size() < 12) return past_end("IFD", offset, end);  // it shrank
            const unsigned type = u16(v, 2);
            if (type == 0) {
                return damaged(b_, at + 2, "TIFF", "IFD entry at offset " + std::to_string(at));
            }
            Entry e{u16(v, 0), type, tiff_type_size(type), u32(v, 4), at + 8};
            if (e.size == 0) continue;
            if (e.size * e.count > 4) {
                e.at = u32(v, 8);
                if (e.at == 0) {
                    return damaged(b_, at + 8, "TIFF",
                                   "value of tag " + std::to_string(e.tag) + " at offset 0");
                }
            }
            entries.push_back(e);
        }
        if (chained) {
            v = b_.get(end - 4, 4);
            if (v.size() < 4) return past_end("IFD", offset, end);
            if (const std::uint64_t next = u32(v, 0); next != 0) pending.emplace_back(next, true);
        }
        const Entry* strips[2] = {};
        const Entry* tiles[2] = {};
        for (const Entry& e : entries) {
            const std::uint64_t length = e.size * e.count;
            if (length > 4) {
                if (e.at + length > kLimit) {
                    return not_judged("damaged TIFF: value of tag " + std::to_string(e.tag) + " " +
                                      extent(e.at, e.at + length, b_.size()));
                }
                if (e.at + length > b_.size()) {
                    return past_end("value of tag " + std::to_string(e.tag), e.at, e.at + length);
                }
                if (in_trailing_zeros(e.at)) return reserved(e.at, "TIFF");
            }
            if (e.tag == 273 || e.tag == 279) strips[e.tag == 279] = &e;
            if (e.tag == 324 || e.tag == 325) tiles[e.tag == 325] = &e;
            // SubIFDs (chained), Exif, GPS and Interoperability IFDs.
            const bool child = e.tag == 330 || e.tag == 34665 || e.tag == 34853 || e.tag == 40965;
            if (!child || !tiff_integer_type(e.type)) continue;
            if (!step(e.count)) return too_large();
            for (std::uint64_t i = 0; i < e.count; ++i) {
                const std::uint64_t at = e.at + i * e.size;
                v = b_.get(at, 8);
                if (v.size() < e.size) return past_end("IFD list", e.at, e.at + length);
                const std::uint64_t child_offset = value(v, 0, e.size);
                if (child_offset == 0) {
                    return damaged(b_, at, "TIFF",
                                   "tag " + std::to_string(e.tag) + " points to offset 0");
                }
                pending.emplace_back(child_offset, e.tag == 330);
            }
        }
        if (strips[0] != nullptr && strips[1] != nullptr) {
            if (std::optional<Wholeness> w = extents(*strips[0], *strips[1], "strip")) return w;
        }
        if (tiles[0] != nullptr && tiles[1] != nullptr) {
            if (std::optional<Wholeness> w = extents(*tiles[0], *tiles[1], "tile")) return w;
        }
        return std::nullopt;
    }

    // The strips (or tiles) at offsets[i] with counts[i] bytes lie within the file. Read in
    // chunks of each array, so that reading a file does not switch windows for every strip.
    std::optional<Wholeness> extents(const Entry& offsets, const Entry& counts, const char* what) {
        if (!tiff_integer_type(offsets.type) || !tiff_integer_type(counts.type)) {
            return not_judged(std::string("damaged TIFF: ") + what +
                              " offsets or byte counts that are not integers");
        }
        constexpr std::uint64_t kChunk = 512;
        const std::uint64_t n = std::min(offsets.count, counts.count);
        if (!step(n)) return too_large();
        for (std::uint64_t first = 0; first < n; first += kChunk) {
            const std::uint64_t k = std::min(kChunk, n - first);
            const std::string_view o = b_.get(offsets.at + first * offsets.size, k * offsets.size);
            if (o.size() < k * offsets.size)
                return incomplete("incomplete TIFF: the file shrank while it was read");
            std::vector<std::uint64_t> starts;
            for (std::uint64_t i = 0; i < k; ++i)
                starts.push_back(value(o, i * offsets.size, offsets.size));
            const std::string_view c = b_.get(counts.at + first * counts.size, k * counts.size);
            if (c.size() < k * counts.size)
                return incomplete("incomplete TIFF: the file shrank while it was read");
            for (std::uint64_t i = 0; i < k; ++i) {
                const std::uint64_t start = starts[i];
                const std::uint64_t length = value(c, i * counts.size, counts.size);
                const std::uint64_t count_at = counts.at + (first + i) * counts.size;
                const std::uint64_t offset_at = offsets.at + (first + i) * offsets.size;
                if (length == 0) {
                    // None (a sparse file), unless it is reserved space not written yet.
                    if (in_trailing_zeros(count_at)) return reserved(count_at, "TIFF");
                    continue;
                }
                if (start == 0) {
                    return damaged(b_, offset_at, "TIFF", std::string(what) + " at offset 0");
                }
                if (start + length > kLimit) {
                    return not_judged(std::string("damaged TIFF: ") + what + " " +
                                      extent(start, start + length, b_.size()));
                }
                if (start + length > b_.size()) return past_end(what, start, start + length);
            }
        }
        return std::nullopt;
    }

    Bytes& b_;
    bool little_;
    std::set<std::uint64_t> visited_;
    std::optional<std::uint64_t> zeros_from_;
    std::uint64_t steps_left_ = kMaxSteps;
};

constexpr std::array<std::string_view, 12> kHeifBrands{
    "heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs", "mif1", "msf1", "avif", "avis"};

bool box_type_ok(std::string_view type) {
    return std::all_of(type.begin(), type.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

// An ISO-BMFF box header: a 32-bit big-endian size (1: a 64-bit size follows the type; 0: the
// box runs to the end of the file) and a four-character type.
struct Box {
    std::string type;
    std::uint64_t start = 0;
    std::uint64_t body = 0;  // after the header
    std::uint64_t end = 0;   // where its size says it ends
    bool to_end = false;     // size 0: it ends where the file ends
};

std::uint64_t big_endian32(std::string_view v, std::size_t i) {
    return std::uint64_t{byte_at(v, i)} << 24 | byte_at(v, i + 1) << 16 | byte_at(v, i + 2) << 8 |
           byte_at(v, i + 3);
}

// The box header at pos: a Box, or incomplete (cut in the header) or damaged.
std::variant<Box, Wholeness> read_box(Bytes& b, std::uint64_t pos) {
    std::string_view v = b.get(pos, 16);
    if (v.size() < 8) {
        return incomplete("incomplete HEIF: box header at offset " + std::to_string(pos));
    }
    Box box{std::string(v.substr(4, 4)), pos, pos + 8, pos + big_endian32(v, 0)};
    if (!box_type_ok(box.type)) {
        return damaged(b, pos + 4, "HEIF", "no box at offset " + std::to_string(pos));
    }
    if (box.end == pos + 1) {
        if (v.size() < 16) {
            return incomplete("incomplete HEIF: box header at offset " + std::to_string(pos));
        }
        box.body = pos + 16;
        const std::uint64_t size = big_endian32(v, 8) << 32 | big_endian32(v, 12);
        box.end = size > std::numeric_limits<std::uint64_t>::max() - pos ? 0 : pos + size;
    } else if (box.end == pos) {
        box.end = b.size();
        box.to_end = true;
    }
    if (box.end < box.body) {
        return not_judged("damaged HEIF: box '" + box.type + "' at offset " + std::to_string(pos) +
                          " is shorter than its header");
    }
    return box;
}

// Big-endian fields of 0 to 8 bytes read one after another, up to `end`.
class Fields {
  public:
    Fields(Bytes& b, std::uint64_t pos, std::uint64_t end) : b_(b), pos_(pos), end_(end) {}

    // nullopt when the field would run past the end (or the file shrank).
    std::optional<std::uint64_t> read(std::uint64_t size) {
        if (size > 8 || pos_ + size > end_) return std::nullopt;
        const std::string_view v = b_.get(pos_, 8);
        if (v.size() < size) return std::nullopt;
        std::uint64_t value = 0;
        for (std::uint64_t i = 0; i < size; ++i) value = value << 8 | byte_at(v, i);
        pos_ += size;
        return value;
    }

  private:
    Bytes& b_;
    std::uint64_t pos_;
    std::uint64_t end_;
};

// Where the item data in this file ends, by the item locations (iloc) in `meta`: the largest
// extent end, and the item it belongs to (all zero without locations). Data in the meta box
// itself (idat) or in other files does not count. A box in meta or a location table that does
// not parse is damage (or, zero, reserved space).
struct ItemData {
    std::uint64_t item = 0;
    std::uint64_t start = 0;
    std::uint64_t end = 0;
};

std::variant<ItemData, Wholeness> item_data(Bytes& b, const Box& meta) {
    const auto damage = [](const std::string& what) { return not_judged("damaged HEIF: " + what); };
    ItemData last;
    for (std::uint64_t pos = meta.body + 4; pos < meta.end;) {  // after version and flags
        std::variant<Box, Wholeness> read = read_box(b, pos);
        if (auto* w = std::get_if<Wholeness>(&read)) return *w;
        const Box& box = std::get<Box>(read);
        if (box.to_end || box.end > meta.end) {
            return damage("box '" + box.type + "' at offset " + std::to_string(pos) +
                          " runs past its meta box");
        }
        pos = box.end;
        if (box.type != "iloc") continue;
        Fields f(b, box.body, box.end);
        const auto version = f.read(1);
        const auto flags = f.read(3);
        const auto sizes = f.read(2);  // offset, length, base offset, index (versions 1, 2)
        if (!version || !flags || !sizes || *version > 2) return damage("iloc box");
        const std::uint64_t offset_size = *sizes >> 12, length_size = *sizes >> 8 & 0xF,
                            base_size = *sizes >> 4 & 0xF,
                            index_size = *version > 0 ? *sizes & 0xF : 0;
        for (const std::uint64_t size : {offset_size, length_size, base_size, index_size}) {
            if (size != 0 && size != 4 && size != 8) return damage("iloc box");
        }
        const std::uint64_t id_size = *version < 2 ? 2 : 4;
        const auto items = f.read(id_size);
        if (!items) return damage("iloc box");
        for (std::uint64_t i = 0; i < *items; ++i) {
            const auto id = f.read(id_size);
            const auto method = f.read(*version > 0 ? 2 : 0);  // construction method
            const auto reference = f.read(2);                  // 0: this file
            const auto base = f.read(base_size);
            const auto extents = f.read(2);
            if (!id || !method || !reference || !base || !extents) return damage("iloc box");
            for (std::uint64_t e = 0; e < *extents; ++e) {
                const auto index = f.read(index_size);
                const auto offset = f.read(offset_size);
                const auto length = f.read(length_size);
                if (!index || !offset || !length) return damage("iloc box");
                if ((*method & 0xF) != 0 || *reference != 0) continue;
                const std::uint64_t start = *base + *offset;
                if (start < *base || start + *length < start) return damage("iloc box");
                if (start + *length > last.end) last = {*id, start, start + *length};
            }
        }
    }
    return last;
}

// The ftyp box names a HEIF brand; then top-level boxes, each within the file, until a meta box
// and an mdat box are both there (libheif writes ftyp, meta, mdat).
Wholeness judge_heif(Bytes& b) {
    std::variant<Box, Wholeness> read = read_box(b, 0);
    if (auto* w = std::get_if<Wholeness>(&read)) return *w;
    const Box ftyp = std::get<Box>(read);
    if (ftyp.end < ftyp.body + 8) return not_judged("damaged HEIF: ftyp box too short");
    bool heif = false;
    // The major brand, the minor version (skipped), then the compatible brands.
    for (std::uint64_t at = ftyp.body; at + 4 <= ftyp.end && !heif; at += at == ftyp.body ? 8 : 4) {
        const std::string_view brand = b.get(at, 4).substr(0, 4);
        if (brand.size() < 4) break;
        heif = std::find(kHeifBrands.begin(), kHeifBrands.end(), brand) != kHeifBrands.end();
    }
    if (!heif) {
        if (zeros_at(b, ftyp.body)) return reserved(ftyp.body, "HEIF");
        return ftyp.end > b.size() ? incomplete(kIncompleteHeif) : not_judged(kUnknown);
    }

    bool meta = false;
    bool mdat = false;
    ItemData data;
    for (Box box = ftyp;;) {
        if (box.end > b.size()) {
            return incomplete("incomplete HEIF: box '" + box.type + "' " +
                              extent(box.start, box.end, b.size()));
        }
        if (box.type == "meta" && !meta) {
            std::variant<ItemData, Wholeness> located = item_data(b, box);
            if (auto* w = std::get_if<Wholeness>(&located)) return *w;
            data = std::get<ItemData>(located);
            meta = true;
        }
        mdat = mdat || box.type == "mdat";
        if (meta && mdat) {
            // The item data may lie past the first mdat, or in an mdat that runs to the end.
            if (data.end > b.size()) {
                return incomplete("incomplete HEIF: data of item " + std::to_string(data.item) +
                                  " " + extent(data.start, data.end, b.size()));
            }
            if (box.end >= data.end) return whole();  // the box holding its end is whole too
        }
        if (box.to_end) {
            return not_judged("damaged HEIF: box '" + box.type + "' runs to the end of the file " +
                              "before both meta and mdat are there");
        }
        if (box.end == b.size()) {
            return incomplete(meta ? "incomplete HEIF: no media data (mdat) yet"
                                   : "incomplete HEIF: no metadata (meta) yet");
        }
        read = read_box(b, box.end);
        if (auto* w = std::get_if<Wholeness>(&read)) return *w;
        box = std::get<Box>(read);
    }
}

// The first bytes agree with `magic` as far as both go; '?' in magic matches any byte.
bool agrees(std::string_view head, std::string_view magic) {
    for (std::size_t i = 0; i < head.size() && i < magic.size(); ++i) {
        if (magic[i] != '?' && head[i] != magic[i]) return false;
    }
    return true;
}

Wholeness judge(Bytes& b) {
    const std::string_view head = b.get(0, kHead).substr(0, kHead);
    if (head.empty()) return incomplete("empty: nothing written yet");
    if (zeros_at(b, 0)) {
        return incomplete("starts with zero bytes: space reserved but not written yet");
    }
    if (agrees(head, kJpegMagic)) {
        return head.size() < kJpegMagic.size() ? incomplete(kIncompleteJpeg) : judge_jpeg(b);
    }
    if (agrees(head, kPngMagic)) {
        return head.size() < kPngMagic.size() ? incomplete(kIncompletePng) : judge_png(b);
    }
    if (agrees(head, "RIFF????WEBP")) {
        if (head.size() < kWebpHeader) {
            return incomplete("incomplete WebP: " + std::to_string(head.size()) + " of at least " +
                              std::to_string(kWebpHeader) + " bytes");
        }
        return judge_webp(b);
    }
    if (agrees(head, "GIF87a") || agrees(head, "GIF89a")) {
        return head.size() < kGifHeader ? incomplete(kIncompleteGif) : judge_gif(b);
    }
    for (const bool little : {true, false}) {
        if (agrees(head, little ? kTiffLittle : kTiffBig)) {
            if (head.size() < kTiffHeader) {
                return incomplete("incomplete TIFF: " + std::to_string(head.size()) +
                                  " of at least " + std::to_string(kTiffHeader) + " bytes");
            }
            return TiffWalk(b, little).run();
        }
        if (head.size() >= 3 && agrees(head, little ? kBigTiffLittle : kBigTiffBig)) {
            return not_judged("BigTIFF: not judged");
        }
    }
    // ISO-BMFF: a box size (an ftyp box is a few dozen bytes: "\0\0" first), then "ftyp".
    if (head.size() >= 8 ? head.substr(4, 4) == "ftyp" : agrees(head, kHeifMagic)) {
        return head.size() < 8 ? incomplete(kIncompleteHeif) : judge_heif(b);
    }
    return not_judged(kUnknown);
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
