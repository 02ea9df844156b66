#include "pipeline/watermark.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "pipeline/watermark_file.hpp"
#include "test_images.hpp"

namespace imgspool {
namespace {

namespace fs = std::filesystem;

using test::near;
using test::pixel;
using test::Rgb;
using test::solid;

constexpr Rgb kRed{255, 0, 0};
constexpr Rgb kWhite{255, 255, 255};

// A watermark whose overlay is `overlay`, as load_watermark would hold it.
Watermark mark(VipsImagePtr overlay, Gravity gravity = Gravity::south_east, int margin = 8,
               double opacity = 1.0, int min_width = 0) {
    Watermark w;
    w.image = "/test/overlay.png";
    w.gravity = gravity;
    w.margin = margin;
    w.opacity = opacity;
    w.min_width = min_width;
    auto overlay_holder = std::make_shared<WatermarkOverlay>();
    overlay_holder->image = std::move(overlay);
    w.overlay = std::move(overlay_holder);
    return w;
}

VipsImagePtr applied(VipsImage* image, const Watermark& w) {
    Result<VipsImagePtr> r = apply_watermark(image, w);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? std::move(*r) : nullptr;
}

std::vector<double> values(VipsImage* image, int x, int y) {
    double* v = nullptr;
    int n = 0;
    EXPECT_EQ(vips_getpoint(image, &v, &n, x, y, nullptr), 0) << vips_error_buffer();
    GBuffer owner(v);
    return std::vector<double>(v, v + n);
}

struct Placement {
    Gravity gravity;
    int left, top;  // of a 20 x 10 overlay on 200 x 100 with margin 8
};

TEST(ApplyWatermark, EachGravityPutsTheOverlayThereWithTheMargin) {
    const Placement placements[] = {
        {Gravity::north_west, 8, 8},  {Gravity::north, 90, 8},   {Gravity::north_east, 172, 8},
        {Gravity::west, 8, 45},       {Gravity::centre, 90, 45}, {Gravity::east, 172, 45},
        {Gravity::south_west, 8, 82}, {Gravity::south, 90, 82},  {Gravity::south_east, 172, 82},
    };
    VipsImagePtr base = solid(200, 100, {255, 255, 255});
    for (const Placement& p : placements) {
        SCOPED_TRACE(gravity_name(p.gravity));
        VipsImagePtr out = applied(base.get(), mark(solid(20, 10, {255, 0, 0, 255}), p.gravity));
        ASSERT_TRUE(out);
        ASSERT_EQ(vips_image_get_width(out.get()), 200);
        ASSERT_EQ(vips_image_get_height(out.get()), 100);
        // Every corner of the overlay is red, the pixels just outside it white.
        for (const auto& [x, y] :
             {std::pair{p.left, p.top}, std::pair{p.left + 19, p.top}, std::pair{p.left, p.top + 9},
              std::pair{p.left + 19, p.top + 9}}) {
            EXPECT_TRUE(near(pixel(out.get(), x, y), kRed, 1)) << x << "," << y;
        }
        for (const auto& [x, y] : {std::pair{p.left - 1, p.top}, std::pair{p.left + 20, p.top},
                                   std::pair{p.left, p.top - 1}, std::pair{p.left, p.top + 10}}) {
            EXPECT_TRUE(near(pixel(out.get(), x, y), kWhite, 1)) << x << "," << y;
        }
    }
}

TEST(ApplyWatermark, OpacityScalesTheOverlaysAlpha) {
    VipsImagePtr base = solid(100, 100, {255, 255, 255});
    VipsImagePtr out =
        applied(base.get(), mark(solid(20, 20, {255, 0, 0, 255}), Gravity::centre, 0, 0.5));
    ASSERT_TRUE(out);
    // Half red over white.
    EXPECT_TRUE(near(pixel(out.get(), 50, 50), {255, 128, 128}, 2)) << pixel(out.get(), 50, 50)[1];
    EXPECT_TRUE(near(pixel(out.get(), 5, 5), kWhite, 0));

    // The overlay's own alpha counts too: half transparent at opacity 0.5 is a quarter.
    out = applied(base.get(), mark(solid(20, 20, {255, 0, 0, 128}), Gravity::centre, 0, 0.5));
    ASSERT_TRUE(out);
    EXPECT_TRUE(near(pixel(out.get(), 50, 50), {255, 191, 191}, 2)) << pixel(out.get(), 50, 50)[1];
}

TEST(ApplyWatermark, ImagesNarrowerThanMinWidthAreLeftAlone) {
    VipsImagePtr narrow = solid(150, 150, {255, 255, 255});
    const Watermark w = mark(solid(20, 20, {255, 0, 0, 255}), Gravity::south_east, 8, 1.0, 400);
    VipsImagePtr out = applied(narrow.get(), w);
    ASSERT_TRUE(out);
    EXPECT_EQ(out.get(), narrow.get());  // the same image, not a copy

    // min_width itself is wide enough.
    VipsImagePtr wide = solid(400, 150, {255, 255, 255});
    out = applied(wide.get(), w);
    ASSERT_TRUE(out);
    EXPECT_TRUE(near(pixel(out.get(), 400 - 8 - 1, 150 - 8 - 1), kRed, 1));
}

TEST(ApplyWatermark, AnOverlayLargerThanTheImageIsScaledDownToFitInsideTheMargins) {
    VipsImagePtr base = solid(100, 100, {255, 255, 255});
    // 400 x 200 into the 80 x 80 inside margins of 10: 80 x 40, at (10, 50) for south-east.
    VipsImagePtr out =
        applied(base.get(), mark(solid(400, 200, {255, 0, 0, 255}), Gravity::south_east, 10));
    ASSERT_TRUE(out);
    EXPECT_EQ(vips_image_get_width(out.get()), 100);
    EXPECT_TRUE(near(pixel(out.get(), 11, 51), kRed, 2));
    EXPECT_TRUE(near(pixel(out.get(), 88, 88), kRed, 2));
    EXPECT_TRUE(near(pixel(out.get(), 50, 45), kWhite, 2));  // above it
    EXPECT_TRUE(near(pixel(out.get(), 5, 95), kWhite, 2));   // in the margin
    EXPECT_TRUE(near(pixel(out.get(), 95, 95), kWhite, 2));

    // A smaller one is never scaled up.
    out = applied(base.get(), mark(solid(10, 10, {255, 0, 0, 255}), Gravity::north_west, 0));
    ASSERT_TRUE(out);
    EXPECT_TRUE(near(pixel(out.get(), 9, 9), kRed, 1));
    EXPECT_TRUE(near(pixel(out.get(), 10, 10), kWhite, 1));
}

TEST(ApplyWatermark, NoRoomInsideTheMarginsLeavesTheImageAlone) {
    VipsImagePtr base = solid(30, 30, {255, 255, 255});
    VipsImagePtr out =
        applied(base.get(), mark(solid(10, 10, {255, 0, 0, 255}), Gravity::centre, 15));
    ASSERT_TRUE(out);
    EXPECT_EQ(out.get(), base.get());
}

TEST(ApplyWatermark, KeepsTheImagesBandsAndFormat) {
    VipsImagePtr rgb = solid(60, 60, {255, 255, 255});
    VipsImagePtr out = applied(rgb.get(), mark(solid(10, 10, {255, 0, 0, 255})));
    ASSERT_TRUE(out);
    EXPECT_EQ(vips_image_get_bands(out.get()), 3);
    EXPECT_EQ(vips_image_get_format(out.get()), VIPS_FORMAT_UCHAR);

    // A grey image stays grey: the overlay is blended as grey.
    VipsImagePtr grey = solid(60, 60, {255});
    out = applied(grey.get(), mark(solid(10, 10, {0, 0, 0, 255}), Gravity::north_west, 0));
    ASSERT_TRUE(out);
    EXPECT_EQ(vips_image_get_bands(out.get()), 1);
    EXPECT_EQ(vips_image_get_format(out.get()), VIPS_FORMAT_UCHAR);
    EXPECT_NEAR(values(out.get(), 5, 5)[0], 0, 1);
    EXPECT_NEAR(values(out.get(), 30, 30)[0], 255, 1);
}

TEST(ApplyWatermark, OverAnImageWithAlphaTheOverlayAddsCoverage) {
    // Fully transparent base: the marked pixels become the overlay, the others stay clear.
    VipsImagePtr clear = solid(60, 60, {0, 0, 255, 0});
    VipsImagePtr out =
        applied(clear.get(), mark(solid(10, 10, {255, 0, 0, 255}), Gravity::north_west, 0, 0.5));
    ASSERT_TRUE(out);
    ASSERT_EQ(vips_image_get_bands(out.get()), 4);
    const std::vector<double> marked = values(out.get(), 5, 5);
    EXPECT_NEAR(marked[0], 255, 1);
    EXPECT_NEAR(marked[1], 0, 1);
    EXPECT_NEAR(marked[3], 128, 2);  // alpha: half the overlay's
    EXPECT_NEAR(values(out.get(), 30, 30)[3], 0, 0);

    // An opaque base stays opaque under a half-transparent overlay.
    VipsImagePtr opaque = solid(60, 60, {255, 255, 255, 255});
    out = applied(opaque.get(), mark(solid(10, 10, {255, 0, 0, 255}), Gravity::north_west, 0, 0.5));
    ASSERT_TRUE(out);
    const std::vector<double> blended = values(out.get(), 5, 5);
    EXPECT_NEAR(blended[1], 128, 2);
    EXPECT_NEAR(blended[3], 255, 0);
}

TEST(ApplyWatermark, AWatermarkWithoutItsOverlayIsAnError) {
    VipsImagePtr base = solid(60, 60, {255, 255, 255});
    Watermark w = mark(solid(10, 10, {255, 0, 0, 255}));
    w.overlay = nullptr;
    Result<VipsImagePtr> r = apply_watermark(base.get(), w);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().stage, Stage::render);
    EXPECT_NE(r.error().reason.find("/test/overlay.png"), std::string::npos) << r.error().reason;
}

// load_watermark reads real files.
class LoadWatermark : public testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("watermark_test." + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path write(const std::string& name, const std::string& bytes) {
        const fs::path path = dir_ / name;
        std::ofstream(path, std::ios::binary) << bytes;
        return path;
    }

    Status load(const fs::path& path) {
        w_.image = path;
        return load_watermark(w_);
    }

    fs::path dir_;
    Watermark w_;
};

TEST_F(LoadWatermark, DecodesIntoMemoryAsSrgbWithAlpha) {
    // Grey without alpha: becomes 4-band sRGB.
    const std::string png = test::save(solid(30, 20, {100}).get(), Format::png);
    ASSERT_TRUE(load(write("grey.png", png)).ok());
    ASSERT_TRUE(w_.overlay);
    VipsImage* overlay = w_.overlay->image.get();
    EXPECT_EQ(vips_image_get_width(overlay), 30);
    EXPECT_EQ(vips_image_get_height(overlay), 20);
    EXPECT_EQ(vips_image_get_bands(overlay), 4);
    EXPECT_EQ(vips_image_get_format(overlay), VIPS_FORMAT_UCHAR);
    EXPECT_EQ(vips_image_get_interpretation(overlay), VIPS_INTERPRETATION_sRGB);
    const std::vector<double> v = values(overlay, 3, 3);
    EXPECT_NEAR(v[0], 100, 1);
    EXPECT_NEAR(v[3], 255, 0);
    EXPECT_EQ(w_.overlay_sha256.size(), 64u);

    // The file is not needed any more.
    fs::remove(dir_ / "grey.png");
    VipsImagePtr base = solid(100, 100, {255, 255, 255});
    EXPECT_TRUE(apply_watermark(base.get(), w_).ok());
}

TEST_F(LoadWatermark, JpegAndWebpLoadToo) {
    VipsImagePtr red = solid(16, 16, {255, 0, 0});
    EXPECT_TRUE(load(write("m.jpg", test::save(red.get(), Format::jpeg))).ok());
    EXPECT_TRUE(
        load(write("m.webp", test::save(solid(16, 16, {255, 0, 0, 128}).get(), Format::webp)))
            .ok());
    EXPECT_NEAR(values(w_.overlay->image.get(), 8, 8)[3], 128, 2);
}

TEST_F(LoadWatermark, RefusesWhatItCannotUseAndSaysWhy) {
    struct Case {
        fs::path path;
        const char* reason;
    };
    const std::string big =
        test::save(solid(kMaxWatermarkSide + 1, 2, {0, 0, 0}).get(), Format::png);
    fs::create_directories(dir_ / "folder.png");
    const Case cases[] = {
        {dir_ / "missing.png", "no such file"},
        {dir_ / "folder.png", "not a regular file"},
        {write("text.png", "this is not an image\n"), "not a PNG, WebP or JPEG file"},
        {write("cut.png", test::save(test::noise(64, 64).get(), Format::png).substr(0, 300)),
         "cannot decode it"},
        {write("big.png", big), "4097x2 px, larger than the 4096x4096 allowed"},
        {write("huge.png", std::string(kMaxWatermarkFileBytes + 1, '\0')), "bytes, more than"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.path.string());
        const Status s = load(c.path);
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.error().stage, Stage::config);
        EXPECT_EQ(s.error().file, c.path.string());
        EXPECT_NE(s.error().reason.find(c.reason), std::string::npos) << s.error().reason;
    }
}

}  // namespace
}  // namespace imgspool
