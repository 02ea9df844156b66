// Real JPEG, PNG, WebP, GIF, TIFF, HEIC and AVIF files made with libvips: whole is whole, every
// cut is incomplete, a trailer is fine, and the file on disk gets the answer the bytes in memory
// get.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/pipeline/test_images.hpp"
#include "tests/watcher/temp_dir.hpp"
#include "watcher/whole_file.hpp"

namespace stdfs = std::filesystem;
using namespace imgspool;
using imgspool::testing::put_file;
using imgspool::testing::TempDir;
using Verdict = Wholeness::Verdict;

namespace {

std::string jpeg(VipsImage* image, bool progressive, int restart_interval = 0) {
    void* raw = nullptr;
    std::size_t length = 0;
    const int rc = vips_jpegsave_buffer(image, &raw, &length, "interlace", progressive,
                                        "restart_interval", restart_interval, nullptr);
    GBuffer owner(raw);
    EXPECT_EQ(rc, 0) << vips_error_buffer();
    return rc == 0 ? std::string(static_cast<const char*>(raw), length) : std::string();
}

std::string lossless_webp(VipsImage* image) {
    void* raw = nullptr;
    std::size_t length = 0;
    const int rc = vips_webpsave_buffer(image, &raw, &length, "lossless", TRUE, nullptr);
    GBuffer owner(raw);
    EXPECT_EQ(rc, 0) << vips_error_buffer();
    return rc == 0 ? std::string(static_cast<const char*>(raw), length) : std::string();
}

std::string bytes_of(int rc, void* raw, std::size_t length) {
    GBuffer owner(raw);
    EXPECT_EQ(rc, 0) << vips_error_buffer();
    return rc == 0 ? std::string(static_cast<const char*>(raw), length) : std::string();
}

// `image` as `pages` pages stacked vertically, as libvips holds a multi-page image.
VipsImagePtr paged(VipsImage* image, int pages) {
    VipsImage* joined = nullptr;
    std::vector<VipsImage*> copies(static_cast<std::size_t>(pages), image);
    EXPECT_EQ(vips_arrayjoin(copies.data(), &joined, pages, "across", 1, nullptr), 0);
    VipsImagePtr owner = own(joined);
    VipsImage* tagged = nullptr;
    EXPECT_EQ(vips_copy(joined, &tagged, nullptr), 0);
    vips_image_set_int(tagged, "page-height", image->Ysize);
    return own(tagged);
}

std::string gif(VipsImage* image) {
    void* raw = nullptr;
    std::size_t length = 0;
    const int rc = vips_gifsave_buffer(image, &raw, &length, nullptr);
    return bytes_of(rc, raw, length);
}

std::string tiff(VipsImage* image, VipsForeignTiffCompression compression, bool tiled,
                 int tile_size = 32) {
    void* raw = nullptr;
    std::size_t length = 0;
    const int rc =
        vips_tiffsave_buffer(image, &raw, &length, "compression", compression, "tile", tiled,
                             "tile_width", tile_size, "tile_height", tile_size, nullptr);
    return bytes_of(rc, raw, length);
}

std::string heif(VipsImage* image, VipsForeignHeifCompression compression) {
    void* raw = nullptr;
    std::size_t length = 0;
    const int rc = vips_heifsave_buffer(image, &raw, &length, "compression", compression, "effort",
                                        0, nullptr);
    return bytes_of(rc, raw, length);
}

void put_le16(std::string& s, unsigned v) {
    s.push_back(static_cast<char>(v & 0xFF));
    s.push_back(static_cast<char>(v >> 8));
}
void put_le32(std::string& s, unsigned v) {
    put_le16(s, v & 0xFFFF);
    put_le16(s, v >> 16);
}

// `main` with an EXIF APP1 segment right after SOI whose IFD1 holds `thumbnail` as its
// JPEGInterchangeFormat, the way cameras embed a preview: a whole JPEG, FF D9 included.
std::string with_exif_thumbnail(const std::string& main, const std::string& thumbnail) {
    std::string tiff = "II*";
    tiff.push_back('\0');
    put_le32(tiff, 8);   // IFD0
    put_le16(tiff, 0);   // no entries
    put_le32(tiff, 14);  // IFD1
    put_le16(tiff, 2);
    for (const auto& [tag, value] :
         {std::pair<unsigned, unsigned>{0x0201, 44}, {0x0202, unsigned(thumbnail.size())}}) {
        put_le16(tiff, tag);
        put_le16(tiff, 4);  // LONG
        put_le32(tiff, 1);
        put_le32(tiff, value);
    }
    put_le32(tiff, 0);  // no further IFD
    EXPECT_EQ(tiff.size(), 44u);
    const std::string payload = std::string("Exif\0\0", 6) + tiff + thumbnail;
    const std::size_t length = payload.size() + 2;
    EXPECT_LT(length, 65536u);
    std::string app1 = "\xFF\xE1";
    app1.push_back(static_cast<char>(length >> 8));
    app1.push_back(static_cast<char>(length & 0xFF));
    return main.substr(0, 2) + app1 + payload + main.substr(2);
}

std::string verdict_name(Verdict v) {
    switch (v) {
        case Verdict::whole:
            return "whole";
        case Verdict::incomplete:
            return "incomplete";
        case Verdict::not_judged:
            return "not_judged";
    }
    return "?";
}

// Every proper prefix is incomplete, the file is whole, so is the file with a trailer; judged on
// disk at many cut points (each of the first and last 20 among them) the answers are the same.
void expect_whole_only_when_complete(const std::string& file) {
    ASSERT_GT(file.size(), 100u);
    test::load(file);  // a real image: it decodes
    int wrong = 0;
    for (std::size_t n = 0; n < file.size() && wrong < 5; ++n) {
        const Wholeness w = judge_bytes(std::string_view(file).substr(0, n));
        if (w.verdict != Verdict::incomplete) {
            ++wrong;
            ADD_FAILURE() << "cut at " << n << " of " << file.size() << " is "
                          << verdict_name(w.verdict) << ": " << w.reason;
        }
    }
    EXPECT_EQ(judge_bytes(file).verdict, Verdict::whole) << judge_bytes(file).reason;
    EXPECT_EQ(judge_bytes(file + "TRAILER\xFF\xD8\xFF data").verdict, Verdict::whole);

    std::vector<std::size_t> cuts;
    for (std::size_t n = 0; n < 20; ++n) {
        cuts.push_back(n);
        cuts.push_back(file.size() - 1 - n);
    }
    for (std::size_t n = 20; n < file.size(); n += file.size() / 40) cuts.push_back(n);
    cuts.push_back(file.size());
    TempDir dir;
    const stdfs::path path = dir.path() / "upload";
    for (const std::size_t n : cuts) {
        put_file(path, file.substr(0, n));
        const Result<Wholeness> on_disk = judge_file(path, file.size());
        ASSERT_TRUE(on_disk.ok()) << on_disk.error().message();
        const Wholeness in_memory = judge_bytes(std::string_view(file).substr(0, n));
        EXPECT_EQ(on_disk->verdict, in_memory.verdict) << "cut at " << n;
        EXPECT_EQ(on_disk->reason, in_memory.reason) << "cut at " << n;
    }
}

// The file with zeros over everything from `from` on, as a client that reserved the space and
// has written that much leaves it: incomplete.
void expect_reserved_incomplete(const std::string& file, std::size_t from) {
    const std::string reserved = file.substr(0, from) + std::string(file.size() - from, '\0');
    const Wholeness w = judge_bytes(reserved);
    EXPECT_EQ(w.verdict, Verdict::incomplete) << "zeros from " << from << ": " << w.reason;
    EXPECT_NE(w.reason.find("space reserved"), std::string::npos) << w.reason;
}

void expect_not_judged(const std::string& file, const std::string& reason) {
    const Wholeness w = judge_bytes(file);
    EXPECT_EQ(w.verdict, Verdict::not_judged) << w.reason;
    EXPECT_EQ(w.reason, reason);
}

std::uint32_t tiff_u32(const std::string& file, std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(file[at + i]);
    return v;  // little endian, as libtiff writes on this machine
}

}  // namespace

TEST(WholeFileImages, BaselineJpeg) {
    const VipsImagePtr image = test::noise(240, 160);
    expect_whole_only_when_complete(jpeg(image.get(), false));
}

TEST(WholeFileImages, BaselineJpegWithRestartMarkers) {
    const VipsImagePtr image = test::noise(240, 160);
    const std::string file = jpeg(image.get(), false, 2);
    ASSERT_NE(file.find("\xFF\xD0", 0, 2), std::string::npos);
    expect_whole_only_when_complete(file);
}

TEST(WholeFileImages, ProgressiveJpeg) {
    const VipsImagePtr image = test::noise(240, 160);
    const std::string file = jpeg(image.get(), true);
    // More than one scan: SOS markers between entropy-coded data.
    const std::size_t first_scan = file.find("\xFF\xDA", 0, 2);
    ASSERT_NE(first_scan, std::string::npos);
    ASSERT_NE(file.find("\xFF\xDA", first_scan + 2, 2), std::string::npos);
    expect_whole_only_when_complete(file);
}

TEST(WholeFileImages, JpegWithExifThumbnailCutAfterTheThumbnailIsIncomplete) {
    const VipsImagePtr small = test::quadrants(64, 48);
    const std::string thumbnail = test::save(small.get(), Format::jpeg);
    const VipsImagePtr image = test::noise(240, 160);
    const std::string file = with_exif_thumbnail(jpeg(image.get(), false), thumbnail);
    const VipsImagePtr decoded = test::load(file);
    ASSERT_TRUE(decoded);
    EXPECT_NE(vips_image_get_typeof(decoded.get(), VIPS_META_EXIF_NAME), 0u);

    // Right after the thumbnail's own end-of-image marker, inside APP1.
    const std::size_t after_thumbnail = 2 + 4 + 6 + 44 + thumbnail.size();
    ASSERT_EQ(file.substr(after_thumbnail - 2, 2), "\xFF\xD9");
    const Wholeness cut = judge_bytes(std::string_view(file).substr(0, after_thumbnail));
    EXPECT_EQ(cut.verdict, Verdict::incomplete);
    EXPECT_EQ(cut.reason, "incomplete JPEG: no end-of-image marker");
    expect_whole_only_when_complete(file);
}

TEST(WholeFileImages, JpegWithASecondImageAfterItsEnd) {
    // MPF: the second image follows the first one's EOI; even cut short it is only a trailer.
    const VipsImagePtr image = test::noise(240, 160);
    const std::string first = jpeg(image.get(), false);
    const std::string second = test::save(test::quadrants(64, 48).get(), Format::jpeg);
    EXPECT_EQ(judge_bytes(first + second).verdict, Verdict::whole);
    EXPECT_EQ(judge_bytes(first + second.substr(0, second.size() / 2)).verdict, Verdict::whole);
}

TEST(WholeFileImages, Png) {
    const VipsImagePtr image = test::noise(120, 90);
    expect_whole_only_when_complete(test::save(image.get(), Format::png));
}

TEST(WholeFileImages, PngWithAlpha) {
    const VipsImagePtr image = test::quadrants(120, 90, true);
    expect_whole_only_when_complete(test::save(image.get(), Format::png));
}

TEST(WholeFileImages, PngCutAfterItsImageDataBeforeIendIsIncomplete) {
    const VipsImagePtr image = test::noise(120, 90);
    const std::string file = test::save(image.get(), Format::png);
    ASSERT_EQ(file.substr(file.size() - 8, 4), "IEND");
    const std::size_t before_iend = file.size() - 12;
    const Wholeness w = judge_bytes(std::string_view(file).substr(0, before_iend));
    EXPECT_EQ(w.verdict, Verdict::incomplete);
    EXPECT_EQ(w.reason, "incomplete PNG: no IEND chunk");
}

TEST(WholeFileImages, LossyWebp) {
    const VipsImagePtr image = test::noise(120, 90);
    expect_whole_only_when_complete(test::save(image.get(), Format::webp));
}

TEST(WholeFileImages, LosslessWebp) {
    const VipsImagePtr image = test::noise(120, 90);
    expect_whole_only_when_complete(lossless_webp(image.get()));
}

TEST(WholeFileImages, WebpWithAlpha) {
    const VipsImagePtr image = test::quadrants(120, 90, true);
    const std::string file = test::save(image.get(), Format::webp);
    ASSERT_NE(file.find("ALPH"), std::string::npos);
    expect_whole_only_when_complete(file);
}

TEST(WholeFileImages, WebpShorterThanItsRiffSizeSaysHowMuch) {
    const VipsImagePtr image = test::noise(120, 90);
    const std::string file = test::save(image.get(), Format::webp);
    const Wholeness w = judge_bytes(std::string_view(file).substr(0, 100));
    EXPECT_EQ(w.reason, "incomplete WebP: 100 of " + std::to_string(file.size()) + " bytes");
}

TEST(WholeFileImages, Gif) {
    const VipsImagePtr image = test::noise(60, 40);
    const std::string file = gif(image.get());
    ASSERT_EQ(file.back(), ';');
    expect_whole_only_when_complete(file);
    expect_reserved_incomplete(file, file.size() / 2);
    expect_reserved_incomplete(file, file.size() - 1);
    // Something other than the trailer after the last image.
    std::string damaged = file;
    damaged[file.size() - 1] = '\x22';
    expect_not_judged(damaged, "damaged GIF: no block at offset " +
                                   std::to_string(file.size() - 1) + " (found 0x22)");
}

TEST(WholeFileImages, AnimatedGif) {
    const VipsImagePtr frame = test::quadrants(40, 30);
    const VipsImagePtr image = paged(frame.get(), 3);
    const std::string file = gif(image.get());
    // Three image descriptors, each after a graphic control extension.
    std::size_t frames = 0;
    for (std::size_t at = file.find("\x21\xF9\x04"); at != std::string::npos;
         at = file.find("\x21\xF9\x04", at + 1)) {
        ++frames;
    }
    EXPECT_EQ(frames, 3u);
    expect_whole_only_when_complete(file);
    expect_reserved_incomplete(file, file.size() / 3);
}

TEST(WholeFileImages, Tiff) {
    const VipsImagePtr image = test::noise(64, 48);
    const std::string file = tiff(image.get(), VIPS_FOREIGN_TIFF_COMPRESSION_NONE, false);
    ASSERT_EQ(file.substr(0, 4), std::string("II*\0", 4));
    // libtiff writes the IFD after the strips.
    const std::uint32_t ifd = tiff_u32(file, 4);
    EXPECT_GT(ifd, file.size() / 2);
    expect_whole_only_when_complete(file);
    EXPECT_EQ(judge_bytes(std::string_view(file).substr(0, ifd)).reason,
              "incomplete TIFF: IFD at offset " + std::to_string(ifd) + ".." +
                  std::to_string(ifd + 2) + ", the file has " + std::to_string(ifd) + " bytes");
    for (const std::size_t from : {std::size_t{8}, file.size() / 2, std::size_t{ifd},
                                   std::size_t{ifd + 20}, file.size() - 16}) {
        expect_reserved_incomplete(file, from);
    }
    // An IFD that names itself as the next one.
    std::string looped = file;
    const std::size_t entries = static_cast<unsigned char>(looped[ifd]);
    for (int i = 0; i < 4; ++i) looped[ifd + 2 + 12 * entries + i] = file[4 + i];
    expect_not_judged(
        looped, "damaged TIFF: IFD at offset " + std::to_string(ifd) + " is referred to twice");
}

TEST(WholeFileImages, MultiPageTiff) {
    const VipsImagePtr page = test::quadrants(40, 30);
    const VipsImagePtr image = paged(page.get(), 3);
    const std::string file = tiff(image.get(), VIPS_FOREIGN_TIFF_COMPRESSION_NONE, false);
    const VipsImagePtr pages =
        own(vips_image_new_from_buffer(file.data(), file.size(), "", "n", -1, nullptr));
    ASSERT_TRUE(pages) << vips_error_buffer();
    EXPECT_EQ(vips_image_get_n_pages(pages.get()), 3);
    expect_whole_only_when_complete(file);
    expect_reserved_incomplete(file, file.size() / 2);
}

TEST(WholeFileImages, TiledTiff) {
    const VipsImagePtr image = test::noise(80, 70);
    const std::string file = tiff(image.get(), VIPS_FOREIGN_TIFF_COMPRESSION_NONE, true);
    expect_whole_only_when_complete(file);
    expect_reserved_incomplete(file, file.size() - 40);
}

TEST(WholeFileImages, CompressedTiffs) {
    const VipsImagePtr image = test::noise(64, 48);
    for (const auto& [compression, tiled] :
         {std::pair{VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, false},
          std::pair{VIPS_FOREIGN_TIFF_COMPRESSION_LZW, true},
          std::pair{VIPS_FOREIGN_TIFF_COMPRESSION_JPEG, true}}) {
        SCOPED_TRACE(std::to_string(compression) + (tiled ? " tiled" : " in strips"));
        const std::string file = tiff(image.get(), compression, tiled);
        expect_whole_only_when_complete(file);
        expect_reserved_incomplete(file, file.size() / 2);
    }
}

TEST(WholeFileImages, Heic) {
    const VipsImagePtr image = test::noise(64, 48);
    const std::string file = heif(image.get(), VIPS_FOREIGN_HEIF_COMPRESSION_HEVC);
    ASSERT_EQ(file.substr(4, 8), "ftypheic");
    expect_whole_only_when_complete(file);
    const std::size_t mdat_at = file.find("mdat") - 4;
    EXPECT_EQ(judge_bytes(std::string_view(file).substr(0, mdat_at)).reason,
              "incomplete HEIF: no media data (mdat) yet");
    expect_reserved_incomplete(file, mdat_at);
    expect_reserved_incomplete(file, 40);
    // With its mdat's size 0 (up to the end of the file) a cut in the image data is still seen,
    // by the item locations (iloc).
    std::string open = file;
    open.replace(mdat_at, 4, std::string(4, '\0'));
    expect_whole_only_when_complete(open);
    // A box size smaller than a box header.
    std::string damaged = file;
    damaged.replace(mdat_at, 4, std::string("\0\0\0\x04", 4));
    expect_not_judged(damaged, "damaged HEIF: box 'mdat' at offset " + std::to_string(mdat_at) +
                                   " is shorter than its header");
}

TEST(WholeFileImages, Avif) {
    const VipsImagePtr image = test::quadrants(64, 48, true);
    const std::string file = heif(image.get(), VIPS_FOREIGN_HEIF_COMPRESSION_AV1);
    ASSERT_EQ(file.substr(4, 8), "ftypavif");
    expect_whole_only_when_complete(file);
    expect_reserved_incomplete(file, file.find("meta") + 12);
    // A box type that is not printable.
    std::string damaged = file;
    damaged[file.find("mdat")] = '\x01';
    EXPECT_EQ(judge_bytes(damaged).verdict, Verdict::not_judged);
}

TEST(WholeFileImages, TiffLargerThanAReadWindowOnDisk) {
    // 4096 small tiles: the file is larger than judge_file's 64 KiB window, and the tile offsets
    // and byte counts at its end are read in turns, in chunks.
    const VipsImagePtr image = test::quadrants(1024, 1024);
    const std::string file = tiff(image.get(), VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, true, 16);
    ASSERT_GT(file.size(), 64u * 1024);
    const std::uint32_t ifd = tiff_u32(file, 4);
    std::vector<std::size_t> cuts{0, 5, 8, ifd - 1, ifd, ifd + 2, ifd + 100};
    for (std::size_t n = file.size() - 40000; n < file.size(); n += 4001) cuts.push_back(n);
    for (std::size_t n = 0; n < 8; ++n) cuts.push_back(file.size() - 1 - n);
    for (std::size_t n = 1; n < 10; ++n) cuts.push_back(file.size() * n / 10);
    TempDir dir;
    const stdfs::path path = dir.path() / "upload";
    for (const std::size_t n : cuts) {
        put_file(path, file.substr(0, n));
        const Result<Wholeness> on_disk = judge_file(path, file.size());
        ASSERT_TRUE(on_disk.ok()) << on_disk.error().message();
        EXPECT_EQ(on_disk->verdict, Verdict::incomplete)
            << "cut at " << n << ": " << on_disk->reason;
        EXPECT_EQ(on_disk->reason, judge_bytes(std::string_view(file).substr(0, n)).reason);
    }
    put_file(path, file);
    EXPECT_EQ(judge_file(path, file.size())->verdict, Verdict::whole);
    // Reserved space: zeros from half way, and from within the tile arrays.
    for (const std::size_t from : {file.size() / 2, file.size() - 1000}) {
        put_file(path, file.substr(0, from) + std::string(file.size() - from, '\0'));
        const Result<Wholeness> reserved = judge_file(path, file.size());
        ASSERT_TRUE(reserved.ok()) << reserved.error().message();
        EXPECT_EQ(reserved->verdict, Verdict::incomplete) << reserved->reason;
        EXPECT_NE(reserved->reason.find("space reserved"), std::string::npos) << reserved->reason;
    }
}
