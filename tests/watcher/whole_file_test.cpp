// Format walks on hand-built byte structures (no libvips here; real images are judged in
// whole_file_images_test).
#include "watcher/whole_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

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
    for (const std::string& s : {std::string("%PDF-1.7\n"), std::string("GIF89a......"),
                                 std::string("RIFF\x10\0\0\0WAVEfmt ", 16), std::string("x")}) {
        const Wholeness w = judge_bytes(s);
        EXPECT_EQ(w.verdict, Verdict::not_judged) << s;
        EXPECT_EQ(w.reason, "not a JPEG, PNG or WebP");
    }
}

TEST(WholeFile, ShortPrefixOfAMagicIsIncomplete) {
    EXPECT_EQ(judge_bytes("\xFF").reason, "incomplete JPEG: no end-of-image marker");
    EXPECT_EQ(judge_bytes("\xFF\xD8").verdict, Verdict::incomplete);
    EXPECT_EQ(judge_bytes("\x89PN").reason, "incomplete PNG: no IEND chunk");
    EXPECT_EQ(judge_bytes(std::string_view("RIFF\x10\0", 6)).reason,
              "incomplete WebP: 6 of at least 12 bytes");
    EXPECT_EQ(judge_bytes("\xFF\xD7").verdict, Verdict::not_judged);
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
