#include "pipeline/webp_metadata.hpp"

#include <gtest/gtest.h>

#include "test_images.hpp"

namespace imgspool {
namespace {

// A WebP with EXIF (libvips always writes some) and an ICC profile.
std::string webp_with_metadata() {
    VipsImagePtr image = test::quadrants(160, 120);
    VipsImage* tagged = nullptr;
    EXPECT_EQ(vips_icc_transform(image.get(), &tagged, "p3", "input_profile", "srgb", nullptr), 0);
    VipsImagePtr owner = own(tagged);
    return test::save(tagged, Format::webp);
}

TEST(StripWebpMetadata, DropsExifAndIccChunksAndFlags) {
    const std::string original = webp_with_metadata();
    ASSERT_NE(original.find("EXIF"), std::string::npos);
    ASSERT_NE(original.find("ICCP"), std::string::npos);
    Result<std::string> stripped = strip_webp_metadata(original);
    ASSERT_TRUE(stripped.ok()) << stripped.error().reason;
    EXPECT_LT(stripped->size(), original.size());
    EXPECT_EQ(stripped->find("EXIF"), std::string::npos);
    EXPECT_EQ(stripped->find("ICCP"), std::string::npos);
    ASSERT_EQ(stripped->substr(12, 4), "VP8X");
    EXPECT_EQ(static_cast<unsigned char>((*stripped)[20]) & 0x2C, 0);
    const std::uint32_t riff_size = static_cast<unsigned char>((*stripped)[4]) |
                                    static_cast<unsigned char>((*stripped)[5]) << 8 |
                                    static_cast<unsigned char>((*stripped)[6]) << 16 |
                                    static_cast<unsigned char>((*stripped)[7]) << 24;
    EXPECT_EQ(riff_size, stripped->size() - 8);

    VipsImagePtr back = test::load(*stripped);
    ASSERT_TRUE(back);
    EXPECT_EQ(vips_image_get_width(back.get()), 160);
    EXPECT_EQ(vips_image_get_typeof(back.get(), VIPS_META_EXIF_NAME), 0u);
    EXPECT_EQ(vips_image_get_typeof(back.get(), VIPS_META_ICC_NAME), 0u);
    EXPECT_TRUE(test::near(test::pixel(back.get(), 150, 110), test::kWhite));
}

TEST(StripWebpMetadata, LeavesASimpleWebpUnchanged) {
    // A hand-made simple-format header followed by one (empty) VP8 chunk.
    const std::string simple = std::string("RIFF\x0c\x00\x00\x00WEBPVP8 \x00\x00\x00\x00", 20);
    Result<std::string> stripped = strip_webp_metadata(simple);
    ASSERT_TRUE(stripped.ok());
    EXPECT_EQ(*stripped, simple);
}

TEST(StripWebpMetadata, RejectsMalformedContainers) {
    EXPECT_FALSE(strip_webp_metadata("RIFF").ok());
    EXPECT_FALSE(strip_webp_metadata(std::string("RIFF\x0c\x00\x00\x00WAVEfmt ", 16)).ok());
    std::string cut = webp_with_metadata();
    cut.resize(cut.size() - 10);
    Result<std::string> r = strip_webp_metadata(cut);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().stage, Stage::render);
    EXPECT_NE(r.error().reason.find("cut short"), std::string::npos);
}

}  // namespace
}  // namespace imgspool
