#include "pipeline/frame.hpp"

#include <gtest/gtest.h>

#include "test_images.hpp"

namespace imgspool {
namespace {

using test::kBlue;
using test::kGreen;
using test::kRed;
using test::kWhite;
using test::near;
using test::pixel;

VipsImagePtr framed(VipsImage* base, Size target, Fit fit) {
    Result<VipsImagePtr> r = frame(base, target, fit);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().reason);
    return r.ok() ? std::move(*r) : nullptr;
}

void expect_quadrants(VipsImage* image) {
    const int w = vips_image_get_width(image);
    const int h = vips_image_get_height(image);
    const int x0 = w / 8, x1 = w - 1 - w / 8, y0 = h / 8, y1 = h - 1 - h / 8;
    EXPECT_TRUE(near(pixel(image, x0, y0), kRed));
    EXPECT_TRUE(near(pixel(image, x1, y0), kGreen));
    EXPECT_TRUE(near(pixel(image, x0, y1), kBlue));
    EXPECT_TRUE(near(pixel(image, x1, y1), kWhite));
}

TEST(Frame, ProducesExactlyTheTargetSize) {
    VipsImagePtr base = test::quadrants(997, 613);
    const Size targets[] = {{150, 150}, {400, 400},  {613, 613},  {1, 1},   {997, 613},
                            {333, 205}, {1280, 720}, {720, 1280}, {13, 500}};
    for (Fit fit : {Fit::cover, Fit::inside}) {
        for (Size t : targets) {
            VipsImagePtr out = framed(base.get(), t, fit);
            ASSERT_TRUE(out);
            EXPECT_EQ(vips_image_get_width(out.get()), t.width);
            EXPECT_EQ(vips_image_get_height(out.get()), t.height);
        }
    }
}

TEST(Framing, CoverIsTheLargestCentredRegionOfTheTargetAspect) {
    EXPECT_EQ(framing(4032, 3024, {800, 800}, Fit::cover), (Region{504, 0, 3024, 3024}));
    EXPECT_EQ(framing(3024, 4032, {150, 150}, Fit::cover), (Region{0, 504, 3024, 3024}));
    EXPECT_EQ(framing(1000, 1000, {1280, 720}, Fit::cover), (Region{0, 218, 1000, 563}));
    // Targets of the same aspect ratio show the same region: one can be cut from the other.
    EXPECT_EQ(framing(4032, 3024, {150, 150}, Fit::cover),
              framing(4032, 3024, {800, 800}, Fit::cover));
}

TEST(Framing, InsideIsTheWholeImage) {
    EXPECT_EQ(framing(4032, 3024, {800, 600}, Fit::inside), (Region{0, 0, 4032, 3024}));
    EXPECT_EQ(framing(600, 200, {10, 10}, Fit::inside), (Region{0, 0, 600, 200}));
}

TEST(Frame, CoverCutsTheCentre) {
    // 600x200: a centred 200x200 square spans x 200..399, where all four quadrants meet.
    VipsImagePtr base = test::quadrants(600, 200);
    VipsImagePtr out = framed(base.get(), {100, 100}, Fit::cover);
    ASSERT_TRUE(out);
    expect_quadrants(out.get());
    // The left edge of the crop is red, not the far-left red of the source: check the middle.
    EXPECT_TRUE(near(pixel(out.get(), 45, 10), kRed));
    EXPECT_TRUE(near(pixel(out.get(), 55, 10), kGreen));
}

TEST(Frame, InsideKeepsTheWholeImage) {
    VipsImagePtr base = test::quadrants(600, 200);
    VipsImagePtr out = framed(base.get(), {300, 100}, Fit::inside);
    ASSERT_TRUE(out);
    expect_quadrants(out.get());
    EXPECT_TRUE(near(pixel(out.get(), 5, 5), kRed));
    EXPECT_TRUE(near(pixel(out.get(), 294, 94), kWhite));
}

TEST(Frame, SameSizeIsTheImageItself) {
    VipsImagePtr base = test::quadrants(320, 240);
    VipsImagePtr out = framed(base.get(), {320, 240}, Fit::inside);
    ASSERT_TRUE(out);
    EXPECT_EQ(out.get(), base.get());
}

TEST(Frame, AlphaSurvivesResamplingWithoutDarkFringes) {
    // Left half fully transparent: its colour must not bleed into the opaque right half.
    VipsImagePtr base = test::quadrants(400, 400, true);
    VipsImagePtr out = framed(base.get(), {100, 100}, Fit::cover);
    ASSERT_TRUE(out);
    EXPECT_EQ(vips_image_get_bands(out.get()), 4);
    EXPECT_EQ(vips_image_get_format(out.get()), VIPS_FORMAT_UCHAR);
    double* values = nullptr;
    int n = 0;
    ASSERT_EQ(vips_getpoint(out.get(), &values, &n, 52, 10, nullptr), 0);
    GBuffer owner(values);
    ASSERT_EQ(n, 4);
    EXPECT_GT(values[3], 200);  // opaque
    EXPECT_TRUE(near({values[0], values[1], values[2]}, kGreen, 60));
}

}  // namespace
}  // namespace imgspool
