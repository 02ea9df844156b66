#include "pipeline/render.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "pipeline/watermark.hpp"
#include "test_images.hpp"

namespace imgspool {
namespace {

using test::kBlue;
using test::kGreen;
using test::kRed;
using test::kWhite;
using test::near;
using test::pixel;
using test::rendered;
using test::validated;

Error render_error(const std::string& bytes, const Profile& profile) {
    Result<RenderResult> r = render(bytes, validated(bytes), profile);
    EXPECT_FALSE(r.ok());
    return r.ok() ? Error{} : r.error();
}

const Profile& builtin(const char* name) {
    return builtin_profiles().at(name);
}

Variant variant(const char* name, int w, int h, Fit fit, std::vector<OutputFormat> outputs) {
    Variant v;
    v.name = name;
    v.width = w;
    v.height = h;
    v.fit = fit;
    v.outputs = std::move(outputs);
    return v;
}

// Smaller than any source in these tests, so the decode shrinks on load.
Profile thumbs_profile() {
    Profile p;
    p.name = "thumbs";
    p.variants = {variant("box", 120, 120, Fit::inside, {{Format::jpeg, 85}}),
                  variant("square", 60, 60, Fit::cover, {{Format::png, 85}})};
    return p;
}

// Decodes one output and checks what every output must be: its format, its size, upright.
VipsImagePtr check_output(const Rendered& r, bool upright_quadrants = true) {
    SCOPED_TRACE(r.variant + "." + format_extension(r.format));
    EXPECT_EQ(sniff_format(r.bytes), r.format);
    VipsImagePtr image = test::load(r.bytes);
    if (!image) return nullptr;
    EXPECT_EQ(vips_image_get_width(image.get()), r.width);
    EXPECT_EQ(vips_image_get_height(image.get()), r.height);
    if (upright_quadrants) {
        const int x0 = r.width / 8, x1 = r.width - 1 - r.width / 8;
        const int y0 = r.height / 8, y1 = r.height - 1 - r.height / 8;
        EXPECT_TRUE(near(pixel(image.get(), x0, y0), kRed));
        EXPECT_TRUE(near(pixel(image.get(), x1, y0), kGreen));
        EXPECT_TRUE(near(pixel(image.get(), x0, y1), kBlue));
        EXPECT_TRUE(near(pixel(image.get(), x1, y1), kWhite));
    }
    return image;
}

struct Expected {
    const char* variant;
    Format format;
    int width;
    int height;
};

void expect_outputs(const std::vector<Rendered>& outputs, const std::vector<Expected>& expected) {
    ASSERT_EQ(outputs.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(outputs[i].variant, expected[i].variant);
        EXPECT_EQ(outputs[i].format, expected[i].format) << expected[i].variant;
        EXPECT_EQ(outputs[i].width, expected[i].width) << expected[i].variant;
        EXPECT_EQ(outputs[i].height, expected[i].height) << expected[i].variant;
    }
}

std::string quadrants_as(int w, int h, Format f, bool alpha = false) {
    VipsImagePtr image = test::quadrants(w, h, alpha);
    return test::save(image.get(), f);
}

TEST(Render, WebProfileOnAJpeg) {
    const std::string source = quadrants_as(1000, 700, Format::jpeg);
    const std::vector<Rendered> out = rendered(source, builtin("web"));
    expect_outputs(out, {{"small", Format::jpeg, 150, 150},
                         {"small", Format::webp, 150, 150},
                         {"medium", Format::jpeg, 400, 400},
                         {"medium", Format::webp, 400, 400},
                         // 800x800 would enlarge: the centred square at source scale instead.
                         {"large", Format::jpeg, 700, 700},
                         {"large", Format::webp, 700, 700},
                         {"original", Format::jpeg, 1000, 700}});
    for (const Rendered& r : out) {
        VipsImagePtr image = check_output(r);
        ASSERT_TRUE(image);
        EXPECT_EQ(vips_image_get_typeof(image.get(), VIPS_META_EXIF_NAME), 0u) << r.variant;
        if (r.format == Format::jpeg) {
            int multiscan = 0;
            ASSERT_EQ(vips_image_get_int(image.get(), "jpeg-multiscan", &multiscan), 0);
            EXPECT_EQ(multiscan, 1) << "progressive JPEG expected for " << r.variant;
        }
    }
}

TEST(Render, WebProfileOnAPngWithAlphaKeepsAlpha) {
    const std::string source = quadrants_as(600, 400, Format::png, true);
    const std::vector<Rendered> out = rendered(source, builtin("web"));
    expect_outputs(out, {{"small", Format::png, 150, 150},
                         {"small", Format::webp, 150, 150},
                         {"medium", Format::png, 400, 400},
                         {"medium", Format::webp, 400, 400},
                         {"large", Format::png, 400, 400},
                         {"large", Format::webp, 400, 400},
                         {"original", Format::png, 600, 400}});
    for (const Rendered& r : out) {
        VipsImagePtr image = check_output(r, false);
        ASSERT_TRUE(image);
        ASSERT_EQ(vips_image_get_bands(image.get()), 4) << r.variant;
        double* values = nullptr;
        int n = 0;
        ASSERT_EQ(vips_getpoint(image.get(), &values, &n, 2, r.height / 2, nullptr), 0);
        GBuffer owner(values);
        EXPECT_LT(values[3], 10) << "left edge stays transparent in " << r.variant;
        EXPECT_TRUE(near(pixel(image.get(), r.width - 3, 2), kGreen)) << r.variant;
    }
}

TEST(Render, JpegOutputOfATransparentPngIsFlattenedOntoWhite) {
    const std::string source = quadrants_as(400, 400, Format::png, true);
    const std::vector<Rendered> out = rendered(source, builtin("dall-e"));
    ASSERT_EQ(out.size(), 2u);
    VipsImagePtr image = check_output(out[0], false);
    ASSERT_TRUE(image);
    EXPECT_EQ(out[0].format, Format::jpeg);
    EXPECT_EQ(vips_image_get_bands(image.get()), 3);
    EXPECT_TRUE(near(pixel(image.get(), 20, 20), kWhite, 10));
    EXPECT_TRUE(near(pixel(image.get(), 380, 380), kWhite, 10));
    EXPECT_TRUE(near(pixel(image.get(), 380, 20), kGreen));
}

TEST(Render, WebpSourceIsEncodedOncePerVariant) {
    const std::string source = quadrants_as(500, 500, Format::webp);
    const std::vector<Rendered> out = rendered(source, builtin("web"));
    expect_outputs(out, {{"small", Format::webp, 150, 150},
                         {"medium", Format::webp, 400, 400},
                         {"large", Format::webp, 500, 500},
                         {"original", Format::webp, 500, 500}});
    for (const Rendered& r : out) EXPECT_TRUE(check_output(r));
}

TEST(Render, AiPresetsFitInsideWithoutEnlarging) {
    const std::string source = quadrants_as(1200, 800, Format::jpeg);
    expect_outputs(rendered(source, builtin("dall-e")),
                   {{"normal", Format::jpeg, 1024, 683}, {"hq", Format::webp, 1200, 800}});
    expect_outputs(rendered(source, builtin("sora")),
                   {{"normal", Format::jpeg, 1080, 720}, {"hq", Format::webp, 1200, 800}});
    const std::vector<Rendered> sd = rendered(source, builtin("stable-diffusion"));
    expect_outputs(sd, {{"normal", Format::jpeg, 768, 512}, {"hq", Format::webp, 1200, 800}});
    for (const Rendered& r : sd) EXPECT_TRUE(check_output(r));
}

TEST(Render, ShrinkOnLoadStillFramesEveryVariant) {
    const std::string source = quadrants_as(1200, 800, Format::jpeg);
    const std::vector<Rendered> out = rendered(source, thumbs_profile());
    expect_outputs(out, {{"box", Format::jpeg, 120, 80}, {"square", Format::png, 60, 60}});
    for (const Rendered& r : out) EXPECT_TRUE(check_output(r));
}

TEST(Render, EveryExifOrientationComesOutUpright) {
    Profile sizes = thumbs_profile();
    sizes.variants.push_back(variant("full", 0, 0, Fit::inside, {{Format::webp, 85}}));
    for (int orientation = 1; orientation <= 8; ++orientation) {
        SCOPED_TRACE("orientation " + std::to_string(orientation));
        const std::string source = test::oriented_quadrants_jpeg(360, 240, orientation);
        // Upright the image is 360x240 whatever the stored dimensions are.
        const std::vector<Rendered> web = rendered(source, builtin("web"));
        expect_outputs(web, {{"small", Format::jpeg, 150, 150},
                             {"small", Format::webp, 150, 150},
                             {"medium", Format::jpeg, 240, 240},
                             {"medium", Format::webp, 240, 240},
                             {"large", Format::jpeg, 240, 240},
                             {"large", Format::webp, 240, 240},
                             {"original", Format::jpeg, 360, 240}});
        for (const Rendered& r : web) {
            VipsImagePtr image = check_output(r);
            ASSERT_TRUE(image);
            EXPECT_EQ(vips_image_get_orientation(image.get()), 1);
        }
        const std::vector<Rendered> shrunk = rendered(source, thumbs_profile());
        expect_outputs(shrunk, {{"box", Format::jpeg, 120, 80}, {"square", Format::png, 60, 60}});
        for (const Rendered& r : shrunk) EXPECT_TRUE(check_output(r));
    }
}

TEST(Render, KeepMetadataKeepsExifButNotTheOrientationTag) {
    Profile keep = builtin("web");
    keep.keep_metadata = true;
    const std::string source = test::oriented_quadrants_jpeg(360, 240, 6);
    for (const Rendered& r : rendered(source, keep)) {
        VipsImagePtr image = check_output(r);
        ASSERT_TRUE(image);
        EXPECT_NE(vips_image_get_typeof(image.get(), VIPS_META_EXIF_NAME), 0u) << r.variant;
        // Pixels are already upright: a viewer must not rotate them again.
        EXPECT_EQ(vips_image_get_orientation(image.get()), 1) << r.variant;
    }
}

TEST(Render, CmykJpegBecomesSrgb) {
    VipsImagePtr black = nullptr;
    VipsImage* raw = nullptr;
    ASSERT_EQ(vips_black(&raw, 300, 200, "bands", 4, nullptr), 0);
    black = own(raw);
    const double ink[] = {0, 255, 255, 0};  // magenta + yellow = red
    const double none[] = {0, 0, 0, 0};
    VipsImage* red = nullptr;
    ASSERT_EQ(vips_linear(black.get(), &red, const_cast<double*>(none), const_cast<double*>(ink), 4,
                          "uchar", TRUE, nullptr),
              0);
    VipsImagePtr red_owner = own(red);
    VipsImage* cmyk = nullptr;
    ASSERT_EQ(vips_copy(red, &cmyk, "interpretation", VIPS_INTERPRETATION_CMYK, nullptr), 0);
    VipsImagePtr cmyk_owner = own(cmyk);
    const std::string source = test::save(cmyk, Format::jpeg);
    ASSERT_EQ(validated(source).format, Format::jpeg);

    for (const Rendered& r : rendered(source, builtin("web"))) {
        VipsImagePtr image = check_output(r, false);
        ASSERT_TRUE(image);
        EXPECT_EQ(vips_image_get_bands(image.get()), 3) << r.variant;
        const test::Rgb p = pixel(image.get(), r.width / 2, r.height / 2);
        EXPECT_GT(p[0], 180) << r.variant;
        EXPECT_LT(p[1], 90) << r.variant;
        EXPECT_LT(p[2], 90) << r.variant;
    }
}

TEST(Render, EmbeddedIccProfileIsConvertedToSrgb) {
    // A flat sRGB colour stored as Display P3 values with the P3 profile embedded.
    VipsImage* raw = nullptr;
    ASSERT_EQ(vips_black(&raw, 300, 200, "bands", 3, nullptr), 0);
    VipsImagePtr black = own(raw);
    const double colour[] = {200, 30, 30};
    const double one[] = {1, 1, 1};
    VipsImage* flat = nullptr;
    ASSERT_EQ(vips_linear(black.get(), &flat, const_cast<double*>(one), const_cast<double*>(colour),
                          3, "uchar", TRUE, nullptr),
              0);
    VipsImagePtr flat_owner = own(flat);
    VipsImage* srgb = nullptr;
    ASSERT_EQ(vips_copy(flat, &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr), 0);
    VipsImagePtr srgb_owner = own(srgb);
    VipsImage* p3 = nullptr;
    ASSERT_EQ(vips_icc_transform(srgb, &p3, "p3", "input_profile", "srgb", nullptr), 0)
        << vips_error_buffer();
    VipsImagePtr p3_owner = own(p3);
    const test::Rgb stored = pixel(p3, 10, 10);
    ASSERT_FALSE(near(stored, {200, 30, 30}, 10)) << "P3 values should differ from sRGB";
    const std::string source = test::save(p3, Format::jpeg);

    for (const Rendered& r : rendered(source, thumbs_profile())) {
        VipsImagePtr image = check_output(r, false);
        ASSERT_TRUE(image);
        EXPECT_TRUE(near(pixel(image.get(), 5, 5), {200, 30, 30}, 10)) << r.variant;
    }
}

std::string truncated(const std::string& bytes) {
    return bytes.substr(0, bytes.size() * 6 / 10);
}

TEST(Render, TruncatedJpegFails) {
    VipsImagePtr image = test::noise(600, 400);
    const std::string source = truncated(test::save(image.get(), Format::jpeg));
    for (const char* profile : {"web", "stable-diffusion"}) {
        const Error e = render_error(source, builtin(profile));
        EXPECT_EQ(e.stage, Stage::render) << profile;
        EXPECT_NE(e.reason.find("cannot decode the jpeg image"), std::string::npos) << e.reason;
    }
    EXPECT_EQ(render_error(source, thumbs_profile()).stage, Stage::render);
}

TEST(Render, TruncatedPngFails) {
    VipsImagePtr image = test::noise(600, 400);
    const std::string source = truncated(test::save(image.get(), Format::png));
    const Error e = render_error(source, builtin("web"));
    EXPECT_EQ(e.stage, Stage::render);
    EXPECT_NE(e.reason.find("cannot decode the png image"), std::string::npos) << e.reason;
    EXPECT_EQ(render_error(source, thumbs_profile()).stage, Stage::render);
}

TEST(Render, CorruptPngDataFails) {
    VipsImagePtr image = test::noise(600, 400);
    std::string source = test::save(image.get(), Format::png);
    const std::size_t idat = source.find("IDAT");
    ASSERT_NE(idat, std::string::npos);
    for (std::size_t i = idat + 200; i < idat + 300; ++i) source[i] = static_cast<char>(~source[i]);
    EXPECT_EQ(render_error(source, builtin("web")).stage, Stage::render);
}

// A JPEG whose entropy-coded data has a run of garbage in its middle: no 0xFF among it, so no
// marker appears, and the headers and the end-of-image marker are intact. Only a decode notices:
// libjpeg runs out of data before the last block ("premature end of data segment") and reports
// it as a warning.
std::string corrupt_jpeg() {
    std::string bytes = quadrants_as(600, 400, Format::jpeg);
    const std::size_t sos = bytes.find("\xFF\xDA", 0, 2);
    EXPECT_NE(sos, std::string::npos);
    if (sos == std::string::npos) return bytes;
    const std::size_t data = sos + 2 +
                             (static_cast<unsigned char>(bytes[sos + 2]) << 8 |
                              static_cast<unsigned char>(bytes[sos + 3]));
    const std::size_t end = bytes.size() - 2;  // FF D9
    for (std::size_t i = data + (end - data) * 3 / 8; i < data + (end - data) * 5 / 8; ++i) {
        bytes[i] = '\x55';
    }
    return bytes;
}

Profile failing_on(FailOn fail_on) {
    Profile p = thumbs_profile();
    p.fail_on = fail_on;
    return p;
}

TEST(Render, CorruptJpegDataFailsUnderTheDefaultWithTheDecodersReason) {
    const std::string source = corrupt_jpeg();
    EXPECT_EQ(thumbs_profile().fail_on, FailOn::warning);
    for (const Profile* profile : {&builtin("web"), &builtin("dall-e")}) {
        const Error e = render_error(source, *profile);
        EXPECT_EQ(e.stage, Stage::render) << profile->name;
        EXPECT_NE(e.reason.find("cannot decode the jpeg image"), std::string::npos) << e.reason;
        EXPECT_NE(e.reason.find("Corrupt JPEG data"), std::string::npos) << e.reason;
    }
}

TEST(Render, CorruptJpegDataRendersUnderFailOnTruncated) {
    const std::string source = corrupt_jpeg();
    expect_outputs(rendered(source, failing_on(FailOn::truncated)),
                   {{"box", Format::jpeg, 120, 80}, {"square", Format::png, 60, 60}});
}

TEST(Render, CorruptJpegDataRendersUnderFailOnErrorAsLibjpegCallsItAWarning) {
    const std::string source = corrupt_jpeg();
    EXPECT_EQ(rendered(source, failing_on(FailOn::error)).size(), 2u);
}

TEST(Render, TruncatedJpegFailsUnderEveryFailOn) {
    VipsImagePtr image = test::noise(600, 400);
    const std::string source = truncated(test::save(image.get(), Format::jpeg));
    for (FailOn f : {FailOn::truncated, FailOn::error, FailOn::warning}) {
        const Error e = render_error(source, failing_on(f));
        EXPECT_EQ(e.stage, Stage::render) << fail_on_name(f);
        EXPECT_NE(e.reason.find("Premature end of"), std::string::npos) << e.reason;
    }
}

double mean_abs_difference(VipsImage* a, VipsImage* b) {
    VipsImage* diff = nullptr;
    EXPECT_EQ(vips_subtract(a, b, &diff, nullptr), 0);
    VipsImagePtr d = own(diff);
    VipsImage* magnitude = nullptr;
    EXPECT_EQ(vips_abs(d.get(), &magnitude, nullptr), 0);
    VipsImagePtr m = own(magnitude);
    double mean = 255;
    EXPECT_EQ(vips_avg(m.get(), &mean, nullptr), 0);
    return mean;
}

TEST(Render, VariantsCutFromALargerOneMatchVariantsCutFromTheDecode) {
    // `small` comes after `big` in the plan (same square framing, cut from it), yet is output
    // in the profile's order and shows what it shows when rendered on its own.
    const std::string source = quadrants_as(1000, 700, Format::png);
    Profile both;
    both.name = "both";
    both.variants = {variant("small", 90, 90, Fit::cover, {{Format::png, 85}}),
                     variant("big", 400, 400, Fit::cover, {{Format::png, 85}, {Format::webp, 85}})};
    Profile alone;
    alone.name = "alone";
    alone.variants = {both.variants[0]};
    const std::vector<Rendered> cascaded = rendered(source, both);
    const std::vector<Rendered> direct = rendered(source, alone);
    expect_outputs(cascaded, {{"small", Format::png, 90, 90},
                              {"big", Format::png, 400, 400},
                              {"big", Format::webp, 400, 400}});
    ASSERT_EQ(direct.size(), 1u);
    VipsImagePtr a = check_output(cascaded[0]);
    VipsImagePtr b = check_output(direct[0]);
    ASSERT_TRUE(a && b);
    EXPECT_LT(mean_abs_difference(a.get(), b.get()), 2.0);
}

TEST(Render, ConcurrentRendersAgreeWithASerialOne) {
    const std::string source = test::oriented_quadrants_jpeg(400, 300, 6);
    const std::vector<Rendered> expected = rendered(source, builtin("web"));
    ASSERT_FALSE(expected.empty());
    std::vector<std::vector<Rendered>> results(4);
    std::vector<std::thread> threads;
    for (auto& result : results) {
        threads.emplace_back([&] {
            Result<RenderResult> r = render(source, validated(source), builtin("web"));
            if (r.ok()) result = std::move(r->outputs);
        });
    }
    for (std::thread& t : threads) t.join();
    for (const auto& result : results) {
        ASSERT_EQ(result.size(), expected.size());
        for (std::size_t i = 0; i < expected.size(); ++i) {
            EXPECT_EQ(result[i].bytes, expected[i].bytes) << expected[i].variant;
        }
    }
}

// An opaque red 64 x 32 overlay, south-east with a 16 px margin, on variants 400 px wide or more.
Watermark red_watermark() {
    Watermark w;
    w.image = "/test/red.png";
    w.gravity = Gravity::south_east;
    w.margin = 16;
    w.opacity = 1.0;
    w.min_width = 400;
    auto overlay = std::make_shared<WatermarkOverlay>();
    overlay->image = test::solid(64, 32, {255, 0, 0, 255});
    w.overlay = std::move(overlay);
    w.overlay_sha256 = std::string(64, '0');
    return w;
}

TEST(Render, WatermarksGoOnMarkedVariantsWideEnoughAndNotOnThoseCutFromThem) {
    Profile p;
    p.name = "marked";
    p.variants = {variant("large", 800, 800, Fit::cover, {{std::nullopt, 90}, {Format::webp, 90}}),
                  // Cut from large's image: must not show large's watermark.
                  variant("medium", 400, 400, Fit::cover, {{Format::png, 85}}),
                  // Marked but narrower than min_width.
                  variant("small", 150, 150, Fit::cover, {{Format::png, 85}})};
    p.variants[0].watermark = red_watermark();
    p.variants[2].watermark = red_watermark();
    ASSERT_TRUE(validate_profile(p).ok());
    // The bottom-right quadrant, where the overlay goes, is white.
    const std::vector<Rendered> out = rendered(quadrants_as(1200, 1200, Format::jpeg), p);
    expect_outputs(out, {{"large", Format::jpeg, 800, 800},
                         {"large", Format::webp, 800, 800},
                         {"medium", Format::png, 400, 400},
                         {"small", Format::png, 150, 150}});
    for (const Rendered& r : out) {
        SCOPED_TRACE(r.variant + "." + format_extension(r.format));
        VipsImagePtr image = test::load(r.bytes);
        ASSERT_TRUE(image);
        EXPECT_TRUE(near(pixel(image.get(), r.width / 8, r.height / 8), kRed));
        // Where the overlay would sit at this size if it had been scaled with large's image:
        // x 720..783, y 752..783 at 800 px.
        const double s = r.width / 800.0;
        const int x0 = static_cast<int>(720 * s) + 1, x1 = static_cast<int>(783 * s) - 1;
        const int y0 = static_cast<int>(752 * s) + 1, y1 = static_cast<int>(783 * s) - 1;
        const bool marked = r.variant == "large";
        for (const auto& [x, y] : {std::pair{x0, y0}, std::pair{x1, y0}, std::pair{x0, y1},
                                   std::pair{x1, y1}, std::pair{(x0 + x1) / 2, (y0 + y1) / 2}}) {
            EXPECT_TRUE(near(pixel(image.get(), x, y), marked ? kRed : kWhite, 30))
                << x << "," << y;
        }
        // The margin and the white beside the overlay stay white.
        EXPECT_TRUE(near(pixel(image.get(), r.width - 4, r.height - 4), kWhite, 30));
        EXPECT_TRUE(near(pixel(image.get(), x0 - 12, (y0 + y1) / 2), kWhite, 30));
    }
}

}  // namespace
}  // namespace imgspool
