#include "pipeline/encode.hpp"

#include <gtest/gtest.h>

#include "pipeline/validate.hpp"
#include "test_images.hpp"

namespace imgspool {
namespace {

std::string encoded(VipsImage* image, const EncodeSettings& settings) {
    Result<std::string> r = encode(image, settings);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().reason);
    return r.ok() ? *r : std::string();
}

TEST(Encode, WritesEachFormat) {
    VipsImagePtr image = test::quadrants(200, 120);
    for (Format f : {Format::jpeg, Format::png, Format::webp}) {
        EncodeSettings s;
        s.format = f;
        const std::string bytes = encoded(image.get(), s);
        EXPECT_EQ(sniff_format(bytes), f);
        VipsImagePtr back = test::load(bytes);
        ASSERT_TRUE(back);
        EXPECT_EQ(vips_image_get_width(back.get()), 200);
        EXPECT_EQ(vips_image_get_height(back.get()), 120);
    }
}

TEST(Encode, JpegFlattensAlphaOntoWhite) {
    VipsImagePtr image = test::quadrants(200, 200, true);
    EncodeSettings s;
    s.format = Format::jpeg;
    VipsImagePtr back = test::load(encoded(image.get(), s));
    ASSERT_TRUE(back);
    EXPECT_EQ(vips_image_get_bands(back.get()), 3);
    EXPECT_TRUE(test::near(test::pixel(back.get(), 20, 20), test::kWhite, 10));  // was clear red
    EXPECT_TRUE(test::near(test::pixel(back.get(), 180, 20), test::kGreen));
}

TEST(Encode, PngAndWebpKeepAlpha) {
    VipsImagePtr image = test::quadrants(200, 200, true);
    for (Format f : {Format::png, Format::webp}) {
        EncodeSettings s;
        s.format = f;
        VipsImagePtr back = test::load(encoded(image.get(), s));
        ASSERT_TRUE(back);
        EXPECT_EQ(vips_image_get_bands(back.get()), 4) << format_name(f);
    }
}

TEST(Encode, ProgressiveJpegOnlyWhenAsked) {
    VipsImagePtr image = test::quadrants(200, 200);
    for (bool progressive : {true, false}) {
        EncodeSettings s;
        s.format = Format::jpeg;
        s.progressive = progressive;
        VipsImagePtr back = test::load(encoded(image.get(), s));
        ASSERT_TRUE(back);
        int multiscan = -1;
        ASSERT_EQ(vips_image_get_int(back.get(), "jpeg-multiscan", &multiscan), 0);
        EXPECT_EQ(multiscan, progressive ? 1 : 0);
    }
}

TEST(Encode, QualityAndCompressionChangeTheBytes) {
    VipsImagePtr image = test::noise(200, 200);
    EncodeSettings low;
    low.format = Format::webp;
    low.quality = 20;
    EncodeSettings high = low;
    high.quality = 95;
    EXPECT_LT(encoded(image.get(), low).size(), encoded(image.get(), high).size());
    EncodeSettings fast;
    fast.format = Format::png;
    fast.png_compression = 0;
    EncodeSettings small = fast;
    small.png_compression = 9;
    EXPECT_GT(encoded(image.get(), fast).size(), encoded(image.get(), small).size());
}

TEST(Encode, WebpEffortReachesTheEncoder) {
    VipsImagePtr image = test::noise(200, 200);
    EncodeSettings quick;
    quick.format = Format::webp;
    quick.webp_effort = 0;
    EncodeSettings thorough = quick;
    thorough.webp_effort = 6;
    const std::string a = encoded(image.get(), quick);
    const std::string b = encoded(image.get(), thorough);
    EXPECT_NE(a, b);
    for (const std::string* bytes : {&a, &b}) {
        VipsImagePtr back = test::load(*bytes);
        ASSERT_TRUE(back);
        EXPECT_EQ(vips_image_get_width(back.get()), 200);
    }
}

TEST(Encode, StripDropsExifAndKeepingItKeepsIt) {
    VipsImagePtr source = test::load(test::oriented_quadrants_jpeg(200, 200, 1));
    ASSERT_TRUE(source);
    ASSERT_NE(vips_image_get_typeof(source.get(), VIPS_META_EXIF_NAME), 0u);
    for (Format f : {Format::jpeg, Format::png, Format::webp}) {
        EncodeSettings s;
        s.format = f;
        s.strip = true;
        VipsImagePtr stripped = test::load(encoded(source.get(), s));
        ASSERT_TRUE(stripped);
        EXPECT_EQ(vips_image_get_typeof(stripped.get(), VIPS_META_EXIF_NAME), 0u) << format_name(f);
        s.strip = false;
        VipsImagePtr kept = test::load(encoded(source.get(), s));
        ASSERT_TRUE(kept);
        EXPECT_NE(vips_image_get_typeof(kept.get(), VIPS_META_EXIF_NAME), 0u) << format_name(f);
    }
}

}  // namespace
}  // namespace imgspool
