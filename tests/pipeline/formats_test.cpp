// The sources beyond JPEG, PNG and WebP (HEIC, AVIF, GIF, TIFF), AVIF output, animation and
// smart crops, through validate_source, check_frames and render, read back with libvips.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/render.hpp"
#include "pipeline/watermark.hpp"
#include "test_images.hpp"

namespace imgspool {
namespace {

using test::kBlue;
using test::kFrameColours;
using test::kGreen;
using test::kRed;
using test::kWhite;
using test::near;
using test::pixel;
using test::rendered;
using test::validated;

Variant variant(const char* name, int w, int h, Fit fit, std::vector<OutputFormat> outputs,
                Crop crop = Crop::centre) {
    Variant v;
    v.name = name;
    v.width = w;
    v.height = h;
    v.fit = fit;
    v.crop = crop;
    v.outputs = std::move(outputs);
    return v;
}

Profile profile_of(std::vector<Variant> variants) {
    Profile p;
    p.name = "test";
    p.variants = std::move(variants);
    return p;
}

void expect_quadrants(VipsImage* image) {
    const int w = vips_image_get_width(image);
    const int h = vips_image_get_height(image);
    EXPECT_TRUE(near(pixel(image, w / 8, h / 8), kRed));
    EXPECT_TRUE(near(pixel(image, w - 1 - w / 8, h / 8), kGreen));
    EXPECT_TRUE(near(pixel(image, w / 8, h - 1 - h / 8), kBlue));
    EXPECT_TRUE(near(pixel(image, w - 1 - w / 8, h - 1 - h / 8), kWhite));
}

// Every frame of an output, as libvips reads an animation back (n=-1).
VipsImagePtr load_all_frames(const std::string& bytes) {
    const std::optional<Format> format = sniff_format(bytes);
    const char* all = format && has_animation(*format) ? "n=-1" : "";
    VipsImage* image = vips_image_new_from_buffer(bytes.data(), bytes.size(), all, nullptr);
    EXPECT_NE(image, nullptr) << vips_error_buffer();
    VipsImagePtr lazy = own(image);
    return lazy ? own(vips_image_copy_memory(lazy.get())) : nullptr;
}

int frames_of(VipsImage* image) {
    return vips_image_get_height(image) / vips_image_get_page_height(image);
}

TEST(Sources, EachNewFormatIsRecognisedAndMeasuredFromItsHeader) {
    VipsImagePtr image = test::quadrants(320, 200);
    for (Format f : {Format::gif, Format::tiff, Format::heic, Format::avif}) {
        SCOPED_TRACE(format_name(f));
        const SourceInfo info = validated(test::save(image.get(), f));
        EXPECT_EQ(info.format, f);
        EXPECT_EQ(info.width, 320);
        EXPECT_EQ(info.height, 200);
        EXPECT_EQ(info.frames, 1);
    }
}

TEST(Sources, HeicAndTiffBecomeJpegForSourceAndPngWithAlpha) {
    const Profile& web = builtin_profiles().at("web");
    for (Format f : {Format::heic, Format::tiff}) {
        SCOPED_TRACE(format_name(f));
        VipsImagePtr opaque = test::quadrants(500, 400);
        const std::vector<Rendered> out = rendered(test::save(opaque.get(), f), web);
        ASSERT_EQ(out.size(), 7u);
        for (const Rendered& r : out) {
            SCOPED_TRACE(r.variant);
            EXPECT_EQ(sniff_format(r.bytes), r.format);
            EXPECT_TRUE(r.format == Format::jpeg || r.format == Format::webp);
            VipsImagePtr back = test::load(r.bytes);
            ASSERT_TRUE(back);
            EXPECT_EQ(vips_image_get_width(back.get()), r.width);
            EXPECT_EQ(vips_image_get_height(back.get()), r.height);
            expect_quadrants(back.get());
        }
        EXPECT_EQ(out.back().variant, "original");
        EXPECT_EQ(out.back().format, Format::jpeg);
    }
    VipsImagePtr transparent = test::quadrants(400, 400, true);
    const std::vector<Rendered> out = rendered(test::save(transparent.get(), Format::tiff), web);
    EXPECT_EQ(out.back().format, Format::png);
}

TEST(Sources, SourceFallbackIsTheProfilesChoice) {
    Profile p = profile_of({variant("v", 100, 100, Fit::inside, {{std::nullopt, 80}})});
    p.source_fallback = Format::webp;
    VipsImagePtr image = test::quadrants(200, 200);
    const std::vector<Rendered> out = rendered(test::save(image.get(), Format::heic), p);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].format, Format::webp);
    EXPECT_EQ(sniff_format(out[0].bytes), Format::webp);
}

TEST(Sources, AvifAndGifSourcesStayInTheirFormatForSource) {
    const Profile p = profile_of({variant("v", 100, 100, Fit::cover, {{std::nullopt, 80}})});
    VipsImagePtr image = test::quadrants(300, 300);
    for (Format f : {Format::avif, Format::gif}) {
        const std::vector<Rendered> out = rendered(test::save(image.get(), f), p);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0].format, f);
        VipsImagePtr back = test::load(out[0].bytes);
        ASSERT_TRUE(back);
        EXPECT_EQ(vips_image_get_width(back.get()), 100);
        expect_quadrants(back.get());
    }
}

TEST(Sources, AnIphoneHeicIsShownUprightOnceWhateverItsOrientation) {
    for (int orientation : {1, 3, 6, 8}) {
        SCOPED_TRACE("orientation " + std::to_string(orientation));
        const std::string heic = test::oriented_quadrants_heic(400, 240, orientation);
        ASSERT_FALSE(heic.empty());
        const SourceInfo info = validated(heic);
        EXPECT_EQ(info.format, Format::heic);
        const Profile p = profile_of({variant("v", 200, 200, Fit::inside, {{Format::jpeg, 90}})});
        const std::vector<Rendered> out = rendered(heic, p);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0].width, 200);
        EXPECT_EQ(out[0].height, 120);
        VipsImagePtr back = test::load(out[0].bytes);
        ASSERT_TRUE(back);
        expect_quadrants(back.get());
    }
}

TEST(AvifOutput, DecodesBackAtTheVariantsSize) {
    Profile p = profile_of({variant("small", 150, 150, Fit::cover, {{Format::avif, 60}}),
                            variant("large", 640, 640, Fit::inside, {{Format::avif, 60}})});
    VipsImagePtr image = test::quadrants(1000, 700);
    const std::vector<Rendered> out = rendered(test::save(image.get(), Format::jpeg), p);
    ASSERT_EQ(out.size(), 2u);
    const int sizes[2][2] = {{150, 150}, {640, 448}};
    for (std::size_t i = 0; i < out.size(); ++i) {
        EXPECT_EQ(out[i].format, Format::avif);
        EXPECT_EQ(sniff_format(out[i].bytes), Format::avif);
        VipsImagePtr back = test::load(out[i].bytes);
        ASSERT_TRUE(back);
        EXPECT_EQ(vips_image_get_width(back.get()), sizes[i][0]);
        EXPECT_EQ(vips_image_get_height(back.get()), sizes[i][1]);
        expect_quadrants(back.get());
    }
}

TEST(Animation, AnimatedProfileKeepsEveryFrameInWebpAndGifOutputs) {
    Profile p = profile_of({variant("thumb", 100, 100, Fit::cover,
                                    {{Format::webp, 80}, {std::nullopt, 80}, {Format::jpeg, 80}}),
                            variant("whole", 0, 0, Fit::inside, {{Format::webp, 80}})});
    p.animated = true;
    VipsImagePtr anim = test::animation(300, 200, 6);
    for (Format source : {Format::gif, Format::webp}) {
        SCOPED_TRACE(format_name(source));
        const std::string bytes = test::save(anim.get(), source);
        EXPECT_EQ(validated(bytes).frames, 6);
        const std::vector<Rendered> out = rendered(bytes, p);
        ASSERT_EQ(out.size(), source == Format::webp ? 3u : 4u);
        for (const Rendered& r : out) {
            SCOPED_TRACE(r.variant + "." + format_name(r.format));
            VipsImagePtr back = load_all_frames(r.bytes);
            ASSERT_TRUE(back);
            const bool kept = has_animation(r.format);
            EXPECT_EQ(r.frames, kept ? 6 : 1);
            EXPECT_EQ(frames_of(back.get()), kept ? 6 : 1);
            EXPECT_EQ(vips_image_get_width(back.get()), r.width);
            EXPECT_EQ(vips_image_get_page_height(back.get()), r.height);
            for (int i = 0; i < frames_of(back.get()); ++i) {
                EXPECT_TRUE(near(pixel(back.get(), r.width / 2, i * r.height + r.height / 2),
                                 kFrameColours[i % 3]))
                    << "frame " << i;
            }
            if (kept) {
                int* delays = nullptr;
                int n = 0;
                ASSERT_EQ(vips_image_get_array_int(back.get(), "delay", &delays, &n), 0);
                ASSERT_EQ(n, 6);
                EXPECT_EQ(delays[0], 100);
                int loop = -1;
                EXPECT_EQ(vips_image_get_int(back.get(), "loop", &loop), 0);
                EXPECT_EQ(loop, 0);
            }
        }
        EXPECT_EQ(out[0].width, 100);
        EXPECT_EQ(out[0].height, 100);
    }
}

TEST(Animation, StillProfileTakesTheFirstFrame) {
    const Profile p = profile_of({variant("v", 100, 100, Fit::cover, {{Format::webp, 80}})});
    VipsImagePtr anim = test::animation(300, 200, 4);
    const std::vector<Rendered> out = rendered(test::save(anim.get(), Format::gif), p);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].frames, 1);
    VipsImagePtr back = load_all_frames(out[0].bytes);
    ASSERT_TRUE(back);
    EXPECT_EQ(vips_image_get_height(back.get()), 100);
    EXPECT_TRUE(near(pixel(back.get(), 50, 50), kRed));
}

TEST(Animation, AWatermarkMarksEveryFrameAtItsCorner) {
    Watermark w;
    w.image = "/test/white.png";
    w.margin = 4;
    w.opacity = 1.0;
    auto overlay = std::make_shared<WatermarkOverlay>();
    overlay->image = test::solid(20, 10, {255, 255, 255, 255});
    w.overlay = std::move(overlay);
    Variant v = variant("marked", 120, 120, Fit::cover, {{Format::webp, 90}});
    v.watermark = w;
    Profile p = profile_of({v});
    p.animated = true;
    const std::vector<Rendered> out =
        rendered(test::save(test::animation(300, 200, 3).get(), Format::gif), p);
    ASSERT_EQ(out.size(), 1u);
    VipsImagePtr back = load_all_frames(out[0].bytes);
    ASSERT_TRUE(back);
    ASSERT_EQ(frames_of(back.get()), 3);
    for (int i = 0; i < 3; ++i) {
        const int top = i * 120;
        EXPECT_TRUE(near(pixel(back.get(), 120 - 4 - 10, top + 120 - 4 - 5), kWhite, 30))
            << "frame " << i << " has no mark";
        EXPECT_TRUE(near(pixel(back.get(), 30, top + 30), kFrameColours[i], 40)) << "frame " << i;
    }
}

TEST(Animation, PlaceholdersShowTheFirstFrame) {
    Profile p = profile_of({variant("v", 100, 100, Fit::cover, {{Format::webp, 80}})});
    p.animated = true;
    p.placeholders.blurhash = true;
    const std::string gif = test::save(test::animation(300, 200, 6).get(), Format::gif);
    Result<RenderResult> r = render(gif, validated(gif), p);
    ASSERT_TRUE(r.ok()) << r.error().message();
    // The size character: 4x3 components for a landscape picture ('L'), 3x4 for the portrait
    // a stack of 6 frames would be ('T').
    ASSERT_FALSE(r->placeholders.blurhash.empty());
    EXPECT_EQ(r->placeholders.blurhash[0], 'L') << r->placeholders.blurhash;
}

// A GIF of `frames` 1x1 frames on a 100x100 screen, written byte by byte: a frame bomb that
// costs a few bytes per frame.
std::string many_frame_gif(int frames) {
    std::string gif("GIF89a", 6);
    gif += std::string("\x64\x00\x64\x00\x80\x00\x00", 7);  // 100x100, 2-colour global table
    gif += std::string("\x00\x00\x00\xFF\xFF\xFF", 6);
    for (int i = 0; i < frames; ++i) {
        gif += std::string("\x21\xF9\x04\x00\x01\x00\x00\x00", 8);           // 10 ms delay
        gif += std::string("\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00", 10);  // 1x1 at 0,0
        gif += std::string("\x02\x02\x44\x01\x00", 5);                       // one pixel
    }
    gif += ';';
    return gif;
}

TEST(Animation, TenThousandFramesAreRefusedFromTheHeader) {
    const std::string bomb = many_frame_gif(10'000);
    const SourceInfo info = validated(bomb);
    // libnsgif stops counting past 4096 frames: still far more than any profile allows.
    EXPECT_GT(info.frames, 4000);
    Profile still = builtin_profiles().at("web");
    Status st = check_frames(info, still);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().stage, Stage::validate);
    EXPECT_EQ(st.error().reason,
              "GIF has " + std::to_string(info.frames) +
                  " frames, more than profile \"web\" allows (max_frames = 1000)");
}

TEST(Animation, KeptAnimationsAreBoundedByTheirPixels) {
    Profile p = builtin_profiles().at("web");
    p.animated = true;
    p.max_animation_pixels = 1'000'000;
    SourceInfo info;
    info.format = Format::gif;
    info.width = 500;
    info.height = 500;
    info.frames = 5;
    Status st = check_frames(info, p);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().reason.find("animation of 5 frames of 500x500 = 1250000 pixels"),
              std::string::npos);
    p.animated = false;  // only the first frame is decoded
    EXPECT_TRUE(check_frames(info, p).ok());
}

// The share of the output's pixels that belong to the subject (its skin-toned disc).
double subject_share(const std::string& bytes) {
    VipsImagePtr image = test::load(bytes);
    if (!image) return 0;
    const int w = vips_image_get_width(image.get());
    const int h = vips_image_get_height(image.get());
    int hits = 0;
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            // test::load decodes to memory: read the pixels there (getpoint per pixel is slow).
            const auto* p =
                reinterpret_cast<const unsigned char*>(VIPS_IMAGE_ADDR(image.get(), x, y));
            if (near({double(p[0]), double(p[1]), double(p[2])}, {230, 150, 110}, 30)) ++hits;
        }
    }
    return static_cast<double>(hits) / (w * h);
}

TEST(SmartCrop, AttentionAndEntropyKeepAnOffCentreSubjectThatTheCentreCropLoses) {
    // 1200x600 with the subject far right: a square centre crop shows x 300-900 only.
    VipsImagePtr image = test::subject_at(1200, 600, 1020, 300, 130);
    const std::string source = test::save(image.get(), Format::png);
    Profile p = profile_of(
        {variant("centre", 200, 200, Fit::cover, {{Format::png, 90}}),
         variant("attention", 200, 200, Fit::cover, {{Format::png, 90}}, Crop::attention),
         variant("entropy", 200, 200, Fit::cover, {{Format::png, 90}}, Crop::entropy)});
    const std::vector<Rendered> out = rendered(source, p);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_LT(subject_share(out[0].bytes), 0.01);
    // The whole disc is pi x 130^2 of the 600x600 crop: 0.147 of it.
    EXPECT_GT(subject_share(out[1].bytes), 0.13);
    EXPECT_GT(subject_share(out[2].bytes), 0.13);
    EXPECT_NE(out[0].bytes, out[1].bytes);
    for (const Rendered& r : out) {
        EXPECT_EQ(r.width, 200);
        EXPECT_EQ(r.height, 200);
    }
}

}  // namespace
}  // namespace imgspool
