// The BlurHash encoder on known vectors, and the placeholders render() makes: what a page can
// rely on (a valid WebP data: URI under 1 KiB, of the image's shape and colours; a BlurHash of
// the expected length), computed from the upright image and only when the profile asks.
#include "pipeline/placeholder.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "pipeline/blurhash.hpp"
#include "pipeline/render.hpp"
#include "test_images.hpp"

namespace imgspool {
namespace {

using test::kBlue;
using test::kGreen;
using test::kRed;
using test::kWhite;
using test::near;
using test::pixel;

constexpr std::string_view kPrefix = "data:image/webp;base64,";

std::vector<std::uint8_t> uniform(int w, int h, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    std::vector<std::uint8_t> rgb;
    for (int i = 0; i < w * h; ++i) rgb.insert(rgb.end(), {r, g, b});
    return rgb;
}

std::string hash_of(const std::vector<std::uint8_t>& rgb, int w, int h, int x, int y) {
    Result<std::string> hash = blurhash_encode(rgb, w, h, x, y);
    EXPECT_TRUE(hash.ok()) << (hash.ok() ? "" : hash.error().message());
    return hash.ok() ? *hash : std::string();
}

constexpr std::string_view kBase83 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

// Black is zero in linear light, so only its size flag is not 0: "L" (4 x 3 components:
// 3 + 2 x 9 = 21), "0" (the AC maximum quantised to 0), the colour 000000 as 4 base-83 digits,
// then every AC component at the middle of its range, 9 x 19 x 19 + 9 x 19 + 9 = 3429 = "fQ".
TEST(BlurHash, BlackIsTheKnownString) {
    EXPECT_EQ(hash_of(uniform(8, 6, 0, 0, 0), 8, 6, 4, 3), "L00000fQfQfQfQfQfQfQfQfQfQfQ");
}

// The DC component is the mean colour, back in sRGB. (BlurHash samples its cosines at x = 0 ..
// width - 1, not at pixel centres, so even a uniform image has small AC components.)
TEST(BlurHash, TheDcComponentIsTheColourOfAUniformImage) {
    // 0xFF0000 = 16711680 = 29 x 83^3 + 18 x 83^2 + 70 x 83 + 45: "T", "I", ":", "j". One
    // component: size flag 0, maximum 0, no AC.
    EXPECT_EQ(hash_of(uniform(8, 6, 255, 0, 0), 8, 6, 1, 1), "00TI:j");
    EXPECT_EQ(hash_of(uniform(8, 6, 255, 0, 0), 8, 6, 4, 3).substr(2, 4), "TI:j");
    // 8-bit sRGB survives the trip to linear light and back: 0x12C881.
    EXPECT_EQ(hash_of(uniform(5, 7, 18, 200, 129), 5, 7, 1, 1), "002Cv4");
}

TEST(BlurHash, LengthAndSizeFlagFollowTheComponents) {
    const auto rgb = uniform(16, 16, 10, 20, 30);
    for (int x = 1; x <= 9; ++x) {
        for (int y = 1; y <= 9; ++y) {
            const std::string hash = hash_of(rgb, 16, 16, x, y);
            ASSERT_EQ(hash.size(), static_cast<std::size_t>(4 + 2 * x * y)) << x << "x" << y;
            // The first character is (x - 1) + (y - 1) x 9 in base 83.
            EXPECT_EQ(hash[0], kBase83[(x - 1) + (y - 1) * 9]) << x << "x" << y;
        }
    }
}

TEST(BlurHash, RefusesWhatItCannotEncode) {
    const auto rgb = uniform(4, 4, 0, 0, 0);
    EXPECT_FALSE(blurhash_encode(rgb, 4, 4, 0, 3).ok());
    EXPECT_FALSE(blurhash_encode(rgb, 4, 4, 4, 10).ok());
    Result<std::string> short_buffer = blurhash_encode(rgb, 5, 4, 4, 3);
    ASSERT_FALSE(short_buffer.ok());
    EXPECT_EQ(short_buffer.error().stage, Stage::render);
    EXPECT_NE(short_buffer.error().reason.find("5x4"), std::string::npos);
}

// The WebP inside an LQIP data: URI, decoded; fails the test unless it is one.
VipsImagePtr lqip_image(const std::string& uri) {
    EXPECT_TRUE(uri.starts_with(kPrefix)) << uri;
    EXPECT_LT(uri.size(), kMaxLqipBytes);
    if (!uri.starts_with(kPrefix)) return nullptr;
    gsize length = 0;
    GBuffer webp(g_base64_decode(uri.c_str() + kPrefix.size(), &length));
    const std::string bytes(static_cast<const char*>(webp.get()), length);
    EXPECT_EQ(bytes.substr(0, 4), "RIFF");
    EXPECT_EQ(bytes.substr(8, 4), "WEBP");
    EXPECT_EQ(bytes.find("EXIF"), std::string::npos) << "metadata left in the LQIP";
    VipsImage* out = nullptr;
    EXPECT_EQ(vips_webpload_buffer(webp.get(), length, &out, nullptr), 0) << vips_error_buffer();
    VipsImagePtr lazy = own(out);
    return lazy ? own(vips_image_copy_memory(lazy.get())) : nullptr;
}

Placeholders made(VipsImage* image, PlaceholderSet which = {true, true}) {
    Result<Placeholders> p = make_placeholders(image, which);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message());
    return p.ok() ? *p : Placeholders{};
}

TEST(Lqip, IsATinyWebPOfTheImagesShapeAndColours) {
    VipsImagePtr source = test::quadrants(400, 300);
    const Placeholders p = made(source.get());
    VipsImagePtr lqip = lqip_image(p.lqip);
    ASSERT_TRUE(lqip);
    EXPECT_EQ(vips_image_get_width(lqip.get()), 20);
    EXPECT_EQ(vips_image_get_height(lqip.get()), 15);
    // Blurred, so the quadrants' centres, not their edges, keep their colours.
    EXPECT_TRUE(near(pixel(lqip.get(), 4, 3), kRed, 60));
    EXPECT_TRUE(near(pixel(lqip.get(), 15, 3), kGreen, 60));
    EXPECT_TRUE(near(pixel(lqip.get(), 4, 11), kBlue, 60));
    EXPECT_TRUE(near(pixel(lqip.get(), 15, 11), kWhite, 60));
    EXPECT_EQ(p.blurhash.size(), 28u);  // 4 x 3 components
    RecordProperty("lqip_bytes", static_cast<int>(p.lqip.size()));
}

TEST(Lqip, APortraitImageKeepsItsShapeAndGetsThreeByFourComponents) {
    VipsImagePtr source = test::quadrants(300, 600);
    const Placeholders p = made(source.get());
    VipsImagePtr lqip = lqip_image(p.lqip);
    ASSERT_TRUE(lqip);
    EXPECT_EQ(vips_image_get_width(lqip.get()), 10);
    EXPECT_EQ(vips_image_get_height(lqip.get()), 20);
    ASSERT_EQ(p.blurhash.size(), 28u);
    EXPECT_EQ(p.blurhash[0], 'T');  // (3 - 1) + (4 - 1) x 9 = 29
}

// Noise compresses worst of all: the URI must still fit.
TEST(Lqip, NoiseStillFitsUnderOneKiB) {
    VipsImagePtr source = test::noise(1000, 700);
    const Placeholders p = made(source.get());
    EXPECT_TRUE(lqip_image(p.lqip));
    RecordProperty("lqip_bytes", static_cast<int>(p.lqip.size()));
}

TEST(Lqip, TransparencyIsFlattenedOntoWhite) {
    // Alpha 0 on the left half: red and blue are not seen there.
    VipsImagePtr source = test::quadrants(400, 300, /*alpha=*/true);
    const Placeholders p = made(source.get());
    VipsImagePtr lqip = lqip_image(p.lqip);
    ASSERT_TRUE(lqip);
    EXPECT_EQ(vips_image_get_bands(lqip.get()), 3);
    EXPECT_TRUE(near(pixel(lqip.get(), 3, 3), kWhite, 60));
    EXPECT_TRUE(near(pixel(lqip.get(), 3, 11), kWhite, 60));
    EXPECT_TRUE(near(pixel(lqip.get(), 16, 3), kGreen, 60));
}

TEST(Placeholders, OnlyWhatIsAskedForIsMade) {
    VipsImagePtr source = test::quadrants(64, 48);
    EXPECT_EQ(made(source.get(), {}), Placeholders{});
    const Placeholders hash_only = made(source.get(), {.blurhash = true});
    EXPECT_EQ(hash_only.blurhash.size(), 28u);
    EXPECT_TRUE(hash_only.lqip.empty());
    const Placeholders lqip_only = made(source.get(), {.lqip = true});
    EXPECT_TRUE(lqip_only.blurhash.empty());
    EXPECT_TRUE(lqip_only.lqip.starts_with(kPrefix));
}

// Grey and 16-bit images become 8-bit sRGB first: black is black whatever its encoding.
TEST(Placeholders, GreyAndSixteenBitImagesAreConvertedFirst) {
    VipsImage* out = nullptr;
    ASSERT_EQ(vips_black(&out, 64, 48, nullptr), 0);
    VipsImagePtr black = own(out);
    ASSERT_EQ(vips_copy(black.get(), &out, "interpretation", VIPS_INTERPRETATION_B_W, nullptr), 0);
    VipsImagePtr grey = own(out);
    ASSERT_EQ(vips_cast(grey.get(), &out, VIPS_FORMAT_USHORT, nullptr), 0);
    VipsImagePtr wide = own(out);
    ASSERT_EQ(vips_copy(wide.get(), &out, "interpretation", VIPS_INTERPRETATION_GREY16, nullptr),
              0);
    VipsImagePtr grey16 = own(out);
    for (VipsImage* image : {grey.get(), grey16.get()}) {
        const Placeholders p = made(image);
        EXPECT_EQ(p.blurhash, "L00000fQfQfQfQfQfQfQfQfQfQfQ");
        VipsImagePtr lqip = lqip_image(p.lqip);
        ASSERT_TRUE(lqip);
        EXPECT_TRUE(near(pixel(lqip.get(), 10, 7), {0, 0, 0}, 10));
    }
}

Profile small_profile(PlaceholderSet which) {
    Profile p;
    p.name = "small";
    Variant v;
    v.name = "small";
    v.width = 100;
    v.height = 100;
    v.outputs = {{Format::jpeg, 80}};
    p.variants = {v};
    p.placeholders = which;
    return p;
}

Result<RenderResult> render_jpeg(const std::string& jpeg, const Profile& profile) {
    Result<SourceInfo> info = validate_source(jpeg, Limits{});
    if (!info) return info.error();
    return render(jpeg, *info, profile);
}

// render() makes them from the decoded image, after the EXIF orientation is applied: the LQIP
// shows the quadrants upright (a JPEG stored rotated, tagged orientation 6).
TEST(Placeholders, RenderMakesThemFromTheUprightImageWhenTheProfileAsks) {
    const std::string jpeg = test::oriented_quadrants_jpeg(400, 300, 6);
    Result<RenderResult> r = render_jpeg(jpeg, small_profile({true, true}));
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->outputs.size(), 1u);
    EXPECT_EQ(r->placeholders.blurhash.size(), 28u);
    VipsImagePtr lqip = lqip_image(r->placeholders.lqip);
    ASSERT_TRUE(lqip);
    EXPECT_EQ(vips_image_get_width(lqip.get()), 20);
    EXPECT_TRUE(near(pixel(lqip.get(), 4, 3), kRed, 60));
    EXPECT_TRUE(near(pixel(lqip.get(), 15, 11), kWhite, 60));

    Result<RenderResult> without = render_jpeg(jpeg, small_profile({}));
    ASSERT_TRUE(without.ok()) << without.error().message();
    EXPECT_EQ(without->placeholders, Placeholders{});
    EXPECT_EQ(without->outputs.size(), 1u);
}

TEST(Placeholders, AskingForThemChangesTheProfileFingerprint) {
    const std::string none = small_profile({}).fingerprint();
    EXPECT_NE(small_profile({true, false}).fingerprint(), none);
    EXPECT_NE(small_profile({false, true}).fingerprint(), none);
    EXPECT_NE(small_profile({true, true}).fingerprint(),
              small_profile({true, false}).fingerprint());
}

}  // namespace
}  // namespace imgspool
