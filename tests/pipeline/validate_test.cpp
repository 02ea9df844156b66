#include "pipeline/validate.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_images.hpp"

namespace imgspool {
namespace {

using namespace std::literals;
using test::quadrants;
using test::save;

std::string reason_of(std::string_view data, const Limits& limits = {}) {
    Result<SourceInfo> r = validate_source(data, limits);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "";
    EXPECT_EQ(r.error().stage, Stage::validate);
    return r.error().reason;
}

std::uint32_t crc32(std::string_view bytes) {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char b : bytes) {
        crc ^= b;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
            static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
    return be32(static_cast<std::uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

// A PNG whose IHDR claims width x height RGB but whose IDAT holds a few bytes only: what a
// decompression bomb's header looks like.
std::string png_claiming(std::uint32_t width, std::uint32_t height) {
    const std::string ihdr = be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
    const std::string idat("\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9);
    return std::string("\x89PNG\r\n\x1A\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", idat) +
           png_chunk("IEND", "");
}

TEST(SniffFormat, ReadsMagicBytesOnly) {
    VipsImagePtr image = quadrants(120, 110);
    EXPECT_EQ(sniff_format(save(image.get(), Format::jpeg)), Format::jpeg);
    EXPECT_EQ(sniff_format(save(image.get(), Format::png)), Format::png);
    EXPECT_EQ(sniff_format(save(image.get(), Format::webp)), Format::webp);
    EXPECT_EQ(sniff_format(save(image.get(), Format::gif)), Format::gif);
    EXPECT_EQ(sniff_format(save(image.get(), Format::tiff)), Format::tiff);
    EXPECT_EQ(sniff_format(save(image.get(), Format::heic)), Format::heic);
    EXPECT_EQ(sniff_format(save(image.get(), Format::avif)), Format::avif);
    EXPECT_EQ(sniff_format("GIF87a\x01\x00"sv), Format::gif);
    EXPECT_EQ(sniff_format("MM\x00*\x00\x00\x00\x08"sv), Format::tiff);
    EXPECT_EQ(sniff_format("\x00\x00\x00\x18"
                           "ftypmif1\x00\x00\x00\x00mif1avif"sv),
              Format::avif);
    EXPECT_EQ(sniff_format("\x00\x00\x00\x18"
                           "ftypisom\x00\x00\x00\x00isommp41"sv),
              std::nullopt);
    EXPECT_EQ(sniff_format("GIF90a"), std::nullopt);
    EXPECT_EQ(sniff_format("%PDF-1.7\n"), std::nullopt);
    EXPECT_EQ(sniff_format("RIFF\x10\x00\x00\x00WAVEfmt "sv), std::nullopt);
    EXPECT_EQ(sniff_format("RIFF\x10\x00\x00\x00WEBPVP8 "sv), Format::webp);
    EXPECT_EQ(sniff_format("RIFF"), std::nullopt);
    EXPECT_EQ(sniff_format(""), std::nullopt);
    EXPECT_EQ(sniff_format("\xFF\xD8"), std::nullopt);
}

TEST(ValidateSource, AcceptsEachFormatAndReportsItsHeader) {
    VipsImagePtr image = quadrants(320, 200);
    for (Format f : {Format::jpeg, Format::png, Format::webp}) {
        const std::string bytes = save(image.get(), f);
        Result<SourceInfo> info = validate_source(bytes, Limits{});
        ASSERT_TRUE(info.ok()) << info.error().reason;
        EXPECT_EQ(info->format, f);
        EXPECT_EQ(info->width, 320);
        EXPECT_EQ(info->height, 200);
        EXPECT_EQ(info->orientation, 1);
        EXPECT_EQ(info->bytes, bytes.size());
        EXPECT_FALSE(info->has_icc_profile);
    }
}

TEST(ValidateSource, RejectsAnEmptyFile) {
    EXPECT_EQ(reason_of(""), "empty file (0 bytes)");
}

TEST(ValidateSource, RejectsFilesOverTheByteLimit) {
    VipsImagePtr image = quadrants(200, 200);
    const std::string bytes = save(image.get(), Format::png);
    Limits limits;
    limits.max_bytes = bytes.size() - 1;
    EXPECT_EQ(reason_of(bytes, limits), "file is " + std::to_string(bytes.size()) +
                                            " bytes, larger than the limit of " +
                                            std::to_string(bytes.size() - 1) + " bytes");
    limits.max_bytes = bytes.size();
    EXPECT_TRUE(validate_source(bytes, limits).ok());
}

TEST(ValidateSource, RejectsOtherTypesByMagicBytes) {
    EXPECT_EQ(reason_of("%PDF-1.7\n%..."),
              "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC image (starts with 25 50 44 46)");
    EXPECT_EQ(reason_of("BM\x10\x00\x10\x00"sv),
              "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC image (starts with 42 4D 10 00)");
    EXPECT_EQ(reason_of("x"),
              "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC image (starts with 78)");
}

TEST(ValidateSource, RejectsImagesBelowTheMinimumSize) {
    VipsImagePtr image = quadrants(90, 90);
    EXPECT_EQ(reason_of(save(image.get(), Format::jpeg)),
              "image is 90x90, smaller than the minimum 100x100");
    VipsImagePtr narrow = quadrants(99, 400);
    EXPECT_EQ(reason_of(save(narrow.get(), Format::png)),
              "image is 99x400, smaller than the minimum 100x100");
}

TEST(ValidateSource, RejectsImagesAboveTheMaximumSize) {
    VipsImagePtr image = quadrants(600, 200);
    Limits limits;
    limits.max_width = 500;
    limits.max_height = 500;
    EXPECT_EQ(reason_of(save(image.get(), Format::webp), limits),
              "image is 600x200, larger than the maximum 500x500");
}

TEST(ValidateSource, RejectsAPixelBombFromItsHeaderBeforeDecoding) {
    const std::string bomb = png_claiming(30000, 30000);
    Limits roomy;
    roomy.max_width = 100000;
    roomy.max_height = 100000;
    const std::string reason = reason_of(bomb, roomy);
    EXPECT_EQ(reason,
              "image is 30000x30000 = 900000000 pixels, more than the limit of 100000000 "
              "(decompression bomb protection)");
    // With the default limits the pixel count is reported too, not just the width.
    EXPECT_NE(reason_of(bomb).find("decompression bomb"), std::string::npos);
    // Within every limit, the same kind of header is accepted: the check is the pixel count.
    Result<SourceInfo> small = validate_source(png_claiming(3000, 3000), Limits{});
    ASSERT_TRUE(small.ok()) << small.error().reason;
    EXPECT_EQ(small->width, 3000);
}

TEST(ValidateSource, RejectsADamagedHeader) {
    std::string bytes = "\xFF\xD8\xFF";
    bytes += std::string(200, '\x42');
    const std::string reason = reason_of(bytes);
    EXPECT_EQ(reason.rfind("cannot read the JPEG header, the file is damaged", 0), 0u) << reason;
    const std::string png = png_claiming(200, 200);
    std::string bad_crc = png;
    bad_crc[30] ^= 0x01;  // inside the IHDR CRC
    EXPECT_EQ(reason_of(bad_crc).rfind("cannot read the PNG header", 0), 0u);
}

TEST(ValidateSource, ReadsTheExifOrientationAndStoredDimensions) {
    for (int orientation = 1; orientation <= 8; ++orientation) {
        const std::string bytes = test::oriented_quadrants_jpeg(300, 200, orientation);
        Result<SourceInfo> info = validate_source(bytes, Limits{});
        ASSERT_TRUE(info.ok()) << info.error().reason;
        EXPECT_EQ(info->orientation, orientation);
        const bool swapped = orientation >= 5;
        EXPECT_EQ(info->width, swapped ? 200 : 300) << orientation;
        EXPECT_EQ(info->height, swapped ? 300 : 200) << orientation;
    }
}

TEST(ValidateSource, NotesAnEmbeddedIccProfile) {
    VipsImagePtr image = quadrants(200, 200);
    VipsImage* tagged = nullptr;
    ASSERT_EQ(vips_icc_transform(image.get(), &tagged, "p3", "input_profile", "srgb", nullptr), 0)
        << vips_error_buffer();
    VipsImagePtr owner = own(tagged);
    Result<SourceInfo> info = validate_source(save(tagged, Format::jpeg), Limits{});
    ASSERT_TRUE(info.ok()) << info.error().reason;
    EXPECT_TRUE(info->has_icc_profile);
}

// A folder of its own under /tmp, removed with everything in it.
class ValidateSourceFile : public ::testing::Test {
  protected:
    void SetUp() override {
        char dir_template[] = "/tmp/imgspool-validate-XXXXXX";
        ASSERT_NE(mkdtemp(dir_template), nullptr);
        dir_ = dir_template;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::filesystem::path write(const std::string& name, const std::string& bytes) {
        const std::filesystem::path path = dir_ / name;
        std::ofstream(path, std::ios::binary) << bytes;
        return path;
    }

    // The file's reason, checked to be the one validate_source gives for the same bytes.
    std::string file_reason(const std::string& bytes, const Limits& limits = {}) {
        Result<SourceInfo> r = validate_source_file(write("source", bytes), limits);
        EXPECT_FALSE(r.ok());
        if (r.ok()) return "";
        EXPECT_EQ(r.error().stage, Stage::validate);
        EXPECT_FALSE(r.error().transient);
        EXPECT_EQ(r.error().reason, reason_of(bytes, limits));
        return r.error().reason;
    }

    std::filesystem::path dir_;
};

TEST_F(ValidateSourceFile, ReadsEachFormatsHeaderFromTheFile) {
    VipsImagePtr image = quadrants(320, 200);
    for (Format f : {Format::jpeg, Format::png, Format::webp}) {
        const std::string bytes = save(image.get(), f);
        Result<SourceInfo> info = validate_source_file(write("image", bytes), Limits{});
        ASSERT_TRUE(info.ok()) << info.error().reason;
        EXPECT_EQ(info->format, f);
        EXPECT_EQ(info->width, 320);
        EXPECT_EQ(info->height, 200);
        EXPECT_EQ(info->bytes, bytes.size());
    }
    const std::string rotated = test::oriented_quadrants_jpeg(300, 200, 6);
    Result<SourceInfo> info = validate_source_file(write("rotated.jpg", rotated), Limits{});
    ASSERT_TRUE(info.ok()) << info.error().reason;
    EXPECT_EQ(info->orientation, 6);
    EXPECT_EQ(info->width, 200);
}

TEST_F(ValidateSourceFile, GivesTheReasonsOfTheInMemoryCheck) {
    EXPECT_EQ(file_reason(""), "empty file (0 bytes)");
    EXPECT_EQ(file_reason("plain text, not an image\n"),
              "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC image (starts with 70 6C 61 69)");
    EXPECT_EQ(file_reason("x"),
              "not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC image (starts with 78)");
    VipsImagePtr small = quadrants(90, 90);
    EXPECT_EQ(file_reason(save(small.get(), Format::jpeg)),
              "image is 90x90, smaller than the minimum 100x100");
    const std::string png = save(quadrants(200, 200).get(), Format::png);
    Limits tight;
    tight.max_bytes = png.size() - 1;
    EXPECT_EQ(file_reason(png, tight), "file is " + std::to_string(png.size()) +
                                           " bytes, larger than the limit of " +
                                           std::to_string(png.size() - 1) + " bytes");
    Limits roomy;
    roomy.max_width = 100000;
    roomy.max_height = 100000;
    EXPECT_NE(file_reason(png_claiming(30000, 30000), roomy).find("decompression bomb"),
              std::string::npos);
    std::string damaged = "\xFF\xD8\xFF";
    damaged += std::string(200, '\x42');
    EXPECT_EQ(file_reason(damaged).rfind("cannot read the JPEG header, the file is damaged", 0),
              0u);
}

TEST_F(ValidateSourceFile, ReadsOnlyTheHeaderOfAPixelBomb) {
    // 3000x3000 claimed with a few bytes of data: the header passes, nothing is decoded.
    Result<SourceInfo> info = validate_source_file(write("bomb.png", png_claiming(3000, 3000)), {});
    ASSERT_TRUE(info.ok()) << info.error().reason;
    EXPECT_EQ(info->width, 3000);
    EXPECT_EQ(info->height, 3000);
}

TEST_F(ValidateSourceFile, RefusesWhatIsNotARegularFile) {
    const std::string jpeg = save(quadrants(200, 200).get(), Format::jpeg);
    const std::filesystem::path target = write("real.jpg", jpeg);
    const std::filesystem::path link = dir_ / "link.jpg";
    std::filesystem::create_symlink(target, link);
    Result<SourceInfo> via_link = validate_source_file(link, Limits{});
    ASSERT_FALSE(via_link.ok());
    EXPECT_EQ(via_link.error().stage, Stage::validate);
    EXPECT_EQ(via_link.error().reason.rfind("cannot open the file: ", 0), 0u)
        << via_link.error().reason;

    const std::filesystem::path fifo = dir_ / "fifo.jpg";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    Result<SourceInfo> from_fifo = validate_source_file(fifo, Limits{});
    ASSERT_FALSE(from_fifo.ok());
    EXPECT_EQ(from_fifo.error().reason, "not a regular file");

    Result<SourceInfo> folder = validate_source_file(dir_, Limits{});
    ASSERT_FALSE(folder.ok());
    EXPECT_EQ(folder.error().reason, "not a regular file");

    Result<SourceInfo> missing = validate_source_file(dir_ / "missing.jpg", Limits{});
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().reason, "cannot open the file: No such file or directory");
    EXPECT_FALSE(missing.error().transient);
}

TEST_F(ValidateSourceFile, LeavesNoDescriptorOpen) {
    const std::string jpeg = save(quadrants(200, 200).get(), Format::jpeg);
    const std::filesystem::path path = write("image.jpg", jpeg);
    auto open_fds = [] {
        return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                             std::filesystem::directory_iterator{});
    };
    const auto before = open_fds();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(validate_source_file(path, Limits{}).ok());
    EXPECT_FALSE(validate_source_file(write("text", "hello"), Limits{}).ok());
    EXPECT_EQ(open_fds(), before);
}

}  // namespace
}  // namespace imgspool
