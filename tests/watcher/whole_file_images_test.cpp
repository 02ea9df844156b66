// Real JPEG, PNG and WebP files made with libvips: whole is whole, every cut is incomplete, a
// trailer is fine, and the file on disk gets the answer the bytes in memory get.
#include <gtest/gtest.h>

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
