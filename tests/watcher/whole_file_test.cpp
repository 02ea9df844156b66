// Format walks on hand-built byte structures (no libvips here; real images are judged in
// whole_file_images_test).
#include "watcher/whole_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;
using imgspool::testing::put_file;
using imgspool::testing::TempDir;
using Verdict = Wholeness::Verdict;

namespace {

std::string bytes(std::initializer_list<int> values) {
    std::string s;
    for (int v : values) s.push_back(static_cast<char>(v));
    return s;
}

// A marker segment: FF code, big-endian length (including itself), payload.
std::string segment(int code, const std::string& payload) {
    const std::size_t length = payload.size() + 2;
    return bytes({0xFF, code, static_cast<int>(length >> 8), static_cast<int>(length & 0xFF)}) +
           payload;
}

const std::string kSoi = bytes({0xFF, 0xD8});
const std::string kEoi = bytes({0xFF, 0xD9});

// The structure of a JPEG, not a decodable one: tables, a scan whose entropy data holds
// stuffed zeros, a restart marker and fill bytes, then EOI.
std::string jpeg_structure() {
    return kSoi + segment(0xE0, "JFIF\0\1\1") + segment(0xDB, std::string(65, '\x10')) +
           segment(0xC0, std::string(15, '\x08')) + segment(0xC4, std::string(30, '\x20')) +
           segment(0xDA, std::string(10, '\x01')) + "\x12\x34" + bytes({0xFF, 0x00}) + "\x56" +
           bytes({0xFF, 0xD0}) + "\x78\x9A" + bytes({0xFF, 0xFF, 0xFF}) + kEoi;
}

// A PNG chunk: big-endian length, type, data, and a CRC the walk does not check.
std::string chunk(const std::string& type, const std::string& data) {
    const std::size_t n = data.size();
    return bytes({static_cast<int>(n >> 24), static_cast<int>((n >> 16) & 0xFF),
                  static_cast<int>((n >> 8) & 0xFF), static_cast<int>(n & 0xFF)}) +
           type + data + "CRC!";
}

const std::string kPngMagic("\x89PNG\r\n\x1A\n", 8);

std::string png_structure() {
    return kPngMagic + chunk("IHDR", std::string(13, '\x01')) +
           chunk("IDAT", std::string(40, '\xAB')) + chunk("IEND", "");
}

std::string webp_structure() {
    const std::string vp8l = "VP8L" + bytes({10, 0, 0, 0}) + std::string(10, '\x2F');
    const std::size_t riff = 4 + vp8l.size();
    return "RIFF" + bytes({static_cast<int>(riff), 0, 0, 0}) + "WEBP" + vp8l;
}

// A GIF with a global colour table, a graphic control extension, an image with a local colour
// table whose data spans two sub-blocks, a comment, then the trailer.
std::string gif_structure() {
    return "GIF89a" + bytes({2, 0, 2, 0, 0x80, 0, 0}) + std::string(6, '\x33') +
           bytes({0x21, 0xF9, 4, 0, 0, 0, 0, 0}) + bytes({0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0x81}) +
           std::string(12, '\x44') + bytes({2, 3, 0x11, 0x22, 0x33, 1, 0x44, 0}) +
           bytes({0x21, 0xFE, 3}) + "abc" + bytes({0, 0x3B});
}

// Little- or big-endian TIFF writing.
struct TiffBytes {
    bool little;
    std::string s;
    void u16(unsigned v) {
        const char hi = static_cast<char>(v >> 8), lo = static_cast<char>(v & 0xFF);
        s += little ? std::string{lo, hi} : std::string{hi, lo};
    }
    void u32(unsigned v) {
        little ? (u16(v & 0xFFFF), u16(v >> 16)) : (u16(v >> 16), u16(v & 0xFFFF));
    }
    void entry(unsigned tag, unsigned type, unsigned count, unsigned value) {
        u16(tag);
        u16(type);
        u32(count);
        if (type == 3 && count == 1) {
            u16(value);  // a SHORT sits in the first two bytes of the field
            u16(0);
        } else {
            u32(value);
        }
    }
};

constexpr unsigned kShort = 3, kLong = 4, kRational = 5;

// Laid out the way libtiff writes: two strips, then IFD0 and its values (the strip offsets and a
// rational), then a tile and IFD1, the last thing in the file.
std::string tiff_structure(bool little) {
    TiffBytes t{little, little ? "II*" : "MM"};
    t.s += little ? std::string(1, '\0') : std::string("\0*", 2);
    t.u32(24);                    // IFD0
    t.s += std::string(10, 'A');  // strip 0 at 8
    t.s += std::string(6, 'B');   // strip 1 at 18
    t.u16(4);                     // IFD0 at 24, 4 entries, ends at 78
    t.entry(256, kShort, 1, 2);
    t.entry(273, kLong, 2, 78);  // strip offsets out of line at 78
    t.entry(279, kShort, 2, little ? (6u << 16 | 10) : (10u << 16 | 6));  // inline: 10, 6
    t.entry(282, kRational, 1, 86);
    t.u32(106);  // IFD1
    t.u32(8);    // strip offsets
    t.u32(18);
    t.u32(72);  // resolution 72/1
    t.u32(1);
    t.s += std::string(12, 'T');  // tile at 94
    t.u16(3);                     // IFD1 at 106, ends at 148
    t.entry(256, kShort, 1, 2);
    t.entry(324, kLong, 1, 94);
    t.entry(325, kLong, 1, 12);
    t.u32(0);
    EXPECT_EQ(t.s.size(), 148u);
    return t.s;
}

// A box: big-endian size, type, body.
std::string box(const std::string& type, const std::string& body) {
    const std::size_t n = body.size() + 8;
    return bytes({static_cast<int>(n >> 24), static_cast<int>((n >> 16) & 0xFF),
                  static_cast<int>((n >> 8) & 0xFF), static_cast<int>(n & 0xFF)}) +
           type + body;
}

std::string ftyp(const std::string& major, const std::string& compatible) {
    return box("ftyp", major + std::string(4, '\0') + compatible);
}

std::string be32(std::size_t v) {
    return bytes({static_cast<int>(v >> 24), static_cast<int>((v >> 16) & 0xFF),
                  static_cast<int>((v >> 8) & 0xFF), static_cast<int>(v & 0xFF)});
}

// A meta box (a full box) with a handler and the location (iloc, version 0, 32-bit offsets and
// lengths) of item 1: `length` bytes at `offset` in the file.
std::string meta(std::size_t offset, std::size_t length) {
    const std::string iloc =
        box("iloc", std::string(4, '\0') + bytes({0x44, 0, 0, 1, 0, 1, 0, 0, 0, 1}) + be32(offset) +
                        be32(length));
    return box("meta", std::string(4, '\0') + box("hdlr", std::string(24, '\x01')) + iloc);
}
constexpr std::size_t kMetaSize = 8 + 4 + 32 + 30;

// As libheif writes it: ftyp, meta, mdat (the item's data, 30 bytes).
std::string heif_structure(const std::string& major = "heic") {
    const std::string head = ftyp(major, "mif1" + major);
    const std::size_t data_at = head.size() + kMetaSize + 8;
    return head + meta(data_at, 30) + box("mdat", std::string(30, '\x5A'));
}

void expect_every_prefix_incomplete(const std::string& whole) {
    for (std::size_t n = 0; n < whole.size(); ++n) {
        const Wholeness w = judge_bytes(std::string_view(whole).substr(0, n));
        EXPECT_EQ(w.verdict, Verdict::incomplete) << "cut at " << n << ": " << w.reason;
    }
    EXPECT_EQ(judge_bytes(whole).verdict, Verdict::whole);
}

}  // namespace

TEST(WholeFile, EmptyIsNothingWrittenYet) {
    const Wholeness w = judge_bytes("");
    EXPECT_EQ(w.verdict, Verdict::incomplete);
    EXPECT_EQ(w.reason, "empty: nothing written yet");
}

TEST(WholeFile, ZeroFilledStartIsSpaceReserved) {
    for (std::size_t n : {1u, 15u, 16u, 4096u}) {
        const Wholeness w = judge_bytes(std::string(n, '\0'));
        EXPECT_EQ(w.verdict, Verdict::incomplete) << n;
        EXPECT_EQ(w.reason, "starts with zero bytes: space reserved but not written yet");
    }
    // Zeros followed by data in the first 16 bytes: not reserved space, not an image.
    EXPECT_EQ(judge_bytes(std::string(15, '\0') + "x").verdict, Verdict::not_judged);
}

TEST(WholeFile, OtherContentIsNotJudged) {
    for (const std::string& s :
         {std::string("%PDF-1.7\n"), std::string("BM6\0\0\0\0\0", 8), std::string("GIF88a"),
          std::string("RIFF\x10\0\0\0WAVEfmt ", 16), std::string("x"),
          ftyp("isom", "iso2mp41") + box("moov", "") + box("mdat", "")}) {
        const Wholeness w = judge_bytes(s);
        EXPECT_EQ(w.verdict, Verdict::not_judged) << s;
        EXPECT_EQ(w.reason, "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC");
    }
}

TEST(WholeFile, ShortPrefixOfAMagicIsIncomplete) {
    EXPECT_EQ(judge_bytes("\xFF").reason, "incomplete JPEG: no end-of-image marker");
    EXPECT_EQ(judge_bytes("\xFF\xD8").verdict, Verdict::incomplete);
    EXPECT_EQ(judge_bytes("\x89PN").reason, "incomplete PNG: no IEND chunk");
    EXPECT_EQ(judge_bytes(std::string_view("RIFF\x10\0", 6)).reason,
              "incomplete WebP: 6 of at least 12 bytes");
    EXPECT_EQ(judge_bytes("\xFF\xD7").verdict, Verdict::not_judged);
    EXPECT_EQ(judge_bytes("GIF8").reason, "incomplete GIF: no trailer");
    EXPECT_EQ(judge_bytes("GIF89").verdict, Verdict::incomplete);
    EXPECT_EQ(judge_bytes("II*").reason, "incomplete TIFF: 3 of at least 8 bytes");
    EXPECT_EQ(judge_bytes(std::string("MM\0*\0\0", 6)).verdict, Verdict::incomplete);
    EXPECT_EQ(judge_bytes(std::string("\0\0\0\x1C", 4)).reason, "incomplete HEIF: no ftyp box yet");
    EXPECT_EQ(judge_bytes(std::string("\0\0\0\x1C"
                                      "fty",
                                      7))
                  .verdict,
              Verdict::incomplete);
    // The ftyp is all there but names no HEIF brand yet: more compatible brands may follow.
    const std::string mp4 = ftyp("isom", "iso2mp41heic");
    EXPECT_EQ(judge_bytes(mp4.substr(0, 20)).reason, "incomplete HEIF: no ftyp box yet");
}

TEST(WholeFile, JpegIsWholeAtEndOfImageWithOrWithoutTrailer) {
    const std::string jpeg = jpeg_structure();
    expect_every_prefix_incomplete(jpeg);
    EXPECT_EQ(judge_bytes(jpeg + "camera trailer \xFF\xD8 junk").verdict, Verdict::whole);
    // A second image after EOI (MPF) is a trailer too, even cut short.
    EXPECT_EQ(judge_bytes(jpeg + jpeg.substr(0, 40)).verdict, Verdict::whole);
    EXPECT_EQ(judge_bytes(jpeg.substr(0, jpeg.size() - 2)).reason,
              "incomplete JPEG: no end-of-image marker");
}

TEST(WholeFile, JpegEndMarkerInsideASegmentDoesNotCount) {
    // An EXIF thumbnail: a whole JPEG, with its own FF D9, inside APP1.
    const std::string thumbnail = jpeg_structure();
    const std::string app1 = segment(0xE1, std::string("Exif\0\0", 6) + thumbnail);
    const std::string jpeg = kSoi + app1 + jpeg_structure().substr(2);
    const std::size_t after_thumbnail = 2 + app1.size();
    EXPECT_EQ(jpeg.substr(after_thumbnail - 2, 2), kEoi);
    EXPECT_EQ(judge_bytes(jpeg.substr(0, after_thumbnail)).verdict, Verdict::incomplete);
    EXPECT_EQ(judge_bytes(jpeg.substr(0, after_thumbnail - 1)).verdict, Verdict::incomplete);
    expect_every_prefix_incomplete(jpeg);
}

TEST(WholeFile, JpegEndMarkerInsideEntropyDataNeedsItsOwnBytes) {
    // FF 00 D9 is a stuffed FF then data, not EOI; a cut right after the FF is incomplete.
    const std::string head = kSoi + segment(0xDA, std::string(10, '\x01'));
    EXPECT_EQ(judge_bytes(head + bytes({0xFF, 0x00, 0xD9})).verdict, Verdict::incomplete);
    EXPECT_EQ(judge_bytes(head + bytes({0x11, 0xFF})).verdict, Verdict::incomplete);
    EXPECT_EQ(judge_bytes(head + bytes({0xD0, 0xFF, 0xD9})).verdict, Verdict::whole);
}

TEST(WholeFile, ProgressiveScansAreWalkedToTheLastOne) {
    // Tables and further scans between scans, as a progressive JPEG has them.
    const std::string scan = segment(0xDA, std::string(8, '\x02')) + "\x01\x02\x03";
    const std::string jpeg = kSoi + segment(0xC2, std::string(15, '\x08')) + scan +
                             segment(0xC4, std::string(20, '\x30')) + scan +
                             segment(0xDD, "\x00\x04") + scan + kEoi;
    expect_every_prefix_incomplete(jpeg);
}

TEST(WholeFile, DamagedJpegStructureIsNotJudged) {
    // A segment length below 2 cannot come from a cut: the decoder rejects the file.
    const std::string bad_length = kSoi + bytes({0xFF, 0xE0, 0x00, 0x01, 0x12, 0x34}) + kEoi;
    const Wholeness w = judge_bytes(bad_length);
    EXPECT_EQ(w.verdict, Verdict::not_judged);
    EXPECT_NE(w.reason.find("damaged JPEG"), std::string::npos) << w.reason;
    // Something other than a marker where a marker belongs.
    EXPECT_EQ(judge_bytes(kSoi + segment(0xE0, "abc") + "garbage" + kEoi).verdict,
              Verdict::not_judged);
}

TEST(WholeFile, ZerosWhereStructureBelongsAreSpaceReserved) {
    // A pre-allocating client has written the first part; the rest of the file is zeros.
    const std::string jpeg = jpeg_structure();
    for (std::size_t written : {std::size_t{4}, std::size_t{20}, jpeg.size() - 2}) {
        const std::string file = jpeg.substr(0, written) + std::string(jpeg.size(), '\0');
        EXPECT_EQ(judge_bytes(file).verdict, Verdict::incomplete) << written;
    }
    const std::string png = png_structure();
    const Wholeness w = judge_bytes(png.substr(0, 33) + std::string(100, '\0'));
    EXPECT_EQ(w.verdict, Verdict::incomplete);
    EXPECT_EQ(w.reason,
              "incomplete PNG: zero bytes at offset 33: space reserved but not written yet");
    const std::string webp = webp_structure();
    EXPECT_EQ(judge_bytes(webp.substr(0, 12) + std::string(webp.size() - 12, '\0')).verdict,
              Verdict::incomplete);
}

// Whatever part of `file` a pre-allocating client has written, with zeros behind it up to the
// file's length, is incomplete.
void expect_reserved_incomplete(const std::string& file,
                                std::initializer_list<std::size_t> written) {
    for (const std::size_t n : written) {
        const Wholeness w = judge_bytes(file.substr(0, n) + std::string(file.size() - n, '\0'));
        EXPECT_EQ(w.verdict, Verdict::incomplete) << "written " << n << ": " << w.reason;
        EXPECT_NE(w.reason.find("space reserved"), std::string::npos) << w.reason;
    }
}

TEST(WholeFile, ZerosWhereGifTiffOrHeifStructureBelongsAreSpaceReserved) {
    const std::string gif = gif_structure();
    std::vector<std::size_t> every;
    for (std::size_t n = 6; n < gif.size(); ++n) every.push_back(n);
    for (const std::size_t n : every) {
        const Wholeness w = judge_bytes(gif.substr(0, n) + std::string(gif.size() - n, '\0'));
        EXPECT_EQ(w.verdict, Verdict::incomplete) << "written " << n << ": " << w.reason;
    }
    for (const bool little : {true, false}) {
        // Up to the last IFD's next-IFD offset, which is zero in the whole file too.
        expect_reserved_incomplete(tiff_structure(little), {8, 24, 30, 50, 80, 88, 100, 110, 140});
    }
    const std::string heif = heif_structure();
    expect_reserved_incomplete(heif, {8, 28, 40, heif.size() - 38});
}

TEST(WholeFile, PngIsWholeAtIend) {
    const std::string png = png_structure();
    expect_every_prefix_incomplete(png);
    EXPECT_EQ(judge_bytes(png + "trailer").verdict, Verdict::whole);
    // Cut after the image data, before IEND.
    const Wholeness w = judge_bytes(png.substr(0, png.size() - 12));
    EXPECT_EQ(w.verdict, Verdict::incomplete);
    EXPECT_EQ(w.reason, "incomplete PNG: no IEND chunk");
    // A chunk type that is not letters is damage, not a cut.
    EXPECT_EQ(judge_bytes(kPngMagic + chunk("I?DR", "x") + chunk("IEND", "")).verdict,
              Verdict::not_judged);
}

TEST(WholeFile, WebpIsWholeAtItsRiffSize) {
    const std::string webp = webp_structure();
    expect_every_prefix_incomplete(webp);
    EXPECT_EQ(judge_bytes(webp + "trailer").verdict, Verdict::whole);
    EXPECT_EQ(judge_bytes(webp.substr(0, 20)).reason,
              "incomplete WebP: 20 of " + std::to_string(webp.size()) + " bytes");
}

TEST(WholeFile, GifIsWholeAtItsTrailer) {
    const std::string gif = gif_structure();
    expect_every_prefix_incomplete(gif);
    EXPECT_EQ(judge_bytes(gif + "trailer").verdict, Verdict::whole);
    EXPECT_EQ(judge_bytes("GIF87a" + gif.substr(6)).verdict, Verdict::whole);
    // A block that is neither an extension, an image nor the trailer: damaged.
    std::string damaged = gif;
    damaged[gif.size() - 8] = 'X';  // the comment extension's introducer
    ASSERT_EQ(gif[gif.size() - 8], '\x21');
    const Wholeness w = judge_bytes(damaged);
    EXPECT_EQ(w.verdict, Verdict::not_judged);
    EXPECT_EQ(w.reason, "damaged GIF: no block at offset " + std::to_string(gif.size() - 8) +
                            " (found 0x58)");
}

TEST(WholeFile, GifWithoutItsTrailerIsIncomplete) {
    const std::string gif = gif_structure();
    const Wholeness w = judge_bytes(gif.substr(0, gif.size() - 1));
    EXPECT_EQ(w.verdict, Verdict::incomplete);
    EXPECT_EQ(w.reason, "incomplete GIF: no trailer");
}

TEST(WholeFile, TiffIsWholeWhenAllItsIfdsValuesAndStripsAreThere) {
    for (const bool little : {true, false}) {
        const std::string tiff = tiff_structure(little);
        expect_every_prefix_incomplete(tiff);
        EXPECT_EQ(judge_bytes(tiff + "trailer").verdict, Verdict::whole);
    }
    const std::string tiff = tiff_structure(true);
    EXPECT_EQ(judge_bytes(tiff.substr(0, 20)).reason,
              "incomplete TIFF: IFD at offset 24..26, the file has 20 bytes");
    EXPECT_EQ(judge_bytes(tiff.substr(0, 90)).reason,
              "incomplete TIFF: value of tag 282 at offset 86..94, the file has 90 bytes");
    EXPECT_EQ(judge_bytes(tiff.substr(0, 100)).reason,
              "incomplete TIFF: IFD at offset 106..108, the file has 100 bytes");
}

TEST(WholeFile, TiffStripPastTheEndIsIncomplete) {
    TiffBytes t{true, std::string("II*\0", 4)};
    t.u32(8);
    t.u16(2);
    t.entry(273, kLong, 1, 38);
    t.entry(279, kLong, 1, 100);
    t.u32(0);
    t.s += std::string(60, 'S');
    const Wholeness w = judge_bytes(t.s);
    EXPECT_EQ(w.verdict, Verdict::incomplete);
    EXPECT_EQ(w.reason, "incomplete TIFF: strip at offset 38..138, the file has 98 bytes");
    EXPECT_EQ(judge_bytes(t.s + std::string(40, 'S')).verdict, Verdict::whole);
}

TEST(WholeFile, DamagedTiffIsNotJudged) {
    // An IFD that links back to itself.
    TiffBytes loop{true, std::string("II*\0", 4)};
    loop.u32(8);
    loop.u16(1);
    loop.entry(256, kShort, 1, 2);
    loop.u32(8);
    Wholeness w = judge_bytes(loop.s);
    EXPECT_EQ(w.verdict, Verdict::not_judged);
    EXPECT_EQ(w.reason, "damaged TIFF: IFD at offset 8 is referred to twice");
    // A strip that would end past 4 GiB cannot be in a classic TIFF.
    TiffBytes far{false, std::string("MM\0*", 4)};
    far.u32(8);
    far.u16(2);
    far.entry(273, kLong, 1, 0xFFFFFF00u);
    far.entry(279, kLong, 1, 0x1000);
    far.u32(0);
    w = judge_bytes(far.s);
    EXPECT_EQ(w.verdict, Verdict::not_judged);
    EXPECT_NE(w.reason.find("damaged TIFF: strip at offset 4294967040.."), std::string::npos)
        << w.reason;
    // An IFD without entries, and something other than zeros after it.
    TiffBytes empty{true, std::string("II*\0", 4)};
    empty.u32(8);
    empty.u16(0);
    empty.s += "not zeros at all";
    EXPECT_EQ(judge_bytes(empty.s).reason, "damaged TIFF: IFD at offset 8 has no entries");
    // BigTIFF is not walked.
    EXPECT_EQ(judge_bytes(std::string("II+\0\x08\0\0\0\x10\0\0\0\0\0\0\0", 16)).reason,
              "BigTIFF: not judged");
    EXPECT_EQ(judge_bytes(std::string("MM\0+", 4)).verdict, Verdict::not_judged);
}

TEST(WholeFile, HeifIsWholeWithMetaAndMediaData) {
    for (const char* major : {"heic", "avif", "mif1"}) {
        const std::string heif = heif_structure(major);
        expect_every_prefix_incomplete(heif);
        EXPECT_EQ(judge_bytes(heif + "trailer").verdict, Verdict::whole);
    }
    const std::string heif = heif_structure();
    const std::size_t mdat_at = heif.size() - 38;
    ASSERT_EQ(heif.substr(mdat_at + 4, 4), "mdat");
    EXPECT_EQ(judge_bytes(heif.substr(0, mdat_at)).reason,
              "incomplete HEIF: no media data (mdat) yet");
    EXPECT_EQ(judge_bytes(heif.substr(0, mdat_at + 10)).reason,
              "incomplete HEIF: box 'mdat' at offset " + std::to_string(mdat_at) + ".." +
                  std::to_string(heif.size()) + ", the file has " + std::to_string(mdat_at + 10) +
                  " bytes");
    EXPECT_EQ(judge_bytes(heif.substr(0, 24)).reason, "incomplete HEIF: no metadata (meta) yet");
    // A compatible brand is enough; media data before the metadata; a free box between.
    const std::string other_order = ftyp("msf1", "isomavis") + box("free", "") +
                                    box("mdat", std::string(20, '\x01')) + meta(24 + 8 + 8, 20);
    expect_every_prefix_incomplete(other_order);
}

TEST(WholeFile, HeifItemDataMustBeInTheFile) {
    // The item's data is in a second mdat, after other data.
    const std::string head = ftyp("avif", "mif1");
    const std::size_t data_at = head.size() + kMetaSize + 28 + 8;
    const std::string two = head + meta(data_at, 20) + box("mdat", std::string(20, '\x01')) +
                            box("mdat", std::string(20, '\x02'));
    expect_every_prefix_incomplete(two);
    const Wholeness w = judge_bytes(two.substr(0, data_at + 5));
    EXPECT_EQ(w.reason, "incomplete HEIF: data of item 1 at offset " + std::to_string(data_at) +
                            ".." + std::to_string(data_at + 20) + ", the file has " +
                            std::to_string(data_at + 5) + " bytes");
    // An mdat that runs to the end of the file is whole once the item's data is there.
    const std::size_t open_at = head.size() + kMetaSize + 8;
    const std::string open = head + meta(open_at, 30) + be32(0) + "mdat" + std::string(30, 'd');
    expect_every_prefix_incomplete(open);
    // A damaged location table.
    std::string bad = heif_structure();
    const std::size_t iloc = bad.find("iloc");
    bad[iloc + 4] = 3;  // version 3 does not exist
    EXPECT_EQ(judge_bytes(bad).reason, "damaged HEIF: iloc box");
}

TEST(WholeFile, HeifLargeAndOpenEndedBoxes) {
    // size 1: a 64-bit size follows the type.
    const std::string large =
        bytes({0, 0, 0, 1}) + "mdat" + bytes({0, 0, 0, 0, 0, 0, 0, 26}) + std::string(10, '\x03');
    expect_every_prefix_incomplete(ftyp("heic", "") + box("meta", "") + large);
    // size 0: the last box, up to the end of the file, whatever its length.
    const std::string open = ftyp("avif", "") + box("meta", "") + bytes({0, 0, 0, 0}) + "mdat";
    EXPECT_EQ(judge_bytes(open).verdict, Verdict::whole);  // no item locations to check
    EXPECT_EQ(judge_bytes(open + "more data").verdict, Verdict::whole);
    // ... but then nothing can follow it: no meta ever comes.
    const std::string never = ftyp("avif", "") + bytes({0, 0, 0, 0}) + "mdat" + "data";
    EXPECT_EQ(judge_bytes(never).verdict, Verdict::not_judged);
}

TEST(WholeFile, DamagedHeifIsNotJudged) {
    const std::string head = ftyp("heic", "mif1");
    // A size smaller than the box header.
    Wholeness w = judge_bytes(head + bytes({0, 0, 0, 4}) + "meta" + std::string(40, 'x'));
    EXPECT_EQ(w.verdict, Verdict::not_judged);
    EXPECT_EQ(w.reason, "damaged HEIF: box 'meta' at offset 20 is shorter than its header");
    // A type that is not printable.
    w = judge_bytes(head + bytes({0, 0, 0, 9, 'm', 1, 't', 'a', 0}) + box("mdat", "x"));
    EXPECT_EQ(w.verdict, Verdict::not_judged);
    EXPECT_EQ(w.reason, "damaged HEIF: no box at offset 20");
}

TEST(WholeFile, FileOnDiskGetsTheSameAnswers) {
    TempDir dir;
    const std::string jpeg = jpeg_structure();
    for (std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{30}, jpeg.size() - 1, jpeg.size()}) {
        const stdfs::path p = dir.path() / ("cut-" + std::to_string(n));
        put_file(p, jpeg.substr(0, n));
        const Result<Wholeness> on_disk = judge_file(p, 1 << 20);
        ASSERT_TRUE(on_disk.ok()) << on_disk.error().message();
        const Wholeness in_memory = judge_bytes(jpeg.substr(0, n));
        EXPECT_EQ(on_disk->verdict, in_memory.verdict) << n;
        EXPECT_EQ(on_disk->reason, in_memory.reason) << n;
    }
}

TEST(WholeFile, FileLargerThanTheReadLimitIsNotRead) {
    TempDir dir;
    put_file(dir.path() / "big.jpg", jpeg_structure());
    const Result<Wholeness> w = judge_file(dir.path() / "big.jpg", 10);
    ASSERT_TRUE(w.ok()) << w.error().message();
    EXPECT_EQ(w->verdict, Verdict::not_judged);
    EXPECT_EQ(w->reason, "larger than 10 bytes: not read");
}

TEST(WholeFile, FileThatCannotBeOpenedIsAnError) {
    TempDir dir;
    const Result<Wholeness> missing = judge_file(dir.path() / "missing.jpg", 1 << 20);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().stage, Stage::watch);
    EXPECT_NE(missing.error().reason.find("No such file"), std::string::npos);
    // A symlink is never followed.
    put_file(dir.path() / "real.jpg", jpeg_structure());
    stdfs::create_symlink(dir.path() / "real.jpg", dir.path() / "link.jpg");
    EXPECT_FALSE(judge_file(dir.path() / "link.jpg", 1 << 20).ok());
}

TEST(WholeFile, FifoIsNotJudgedAndNotWaitedOn) {
    TempDir dir;
    const stdfs::path fifo = dir.path() / "pipe.jpg";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const Result<Wholeness> w = judge_file(fifo, 1 << 20);  // O_NONBLOCK: returns at once
    ASSERT_TRUE(w.ok()) << w.error().message();
    EXPECT_EQ(w->verdict, Verdict::not_judged);
    EXPECT_EQ(w->reason, "not a regular file");
}
