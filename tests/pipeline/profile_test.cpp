#include "pipeline/profile.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "pipeline/watermark.hpp"

namespace imgspool {
namespace {

Variant variant(int w, int h, Fit fit, bool enlarge = false) {
    Variant v;
    v.name = "v";
    v.width = w;
    v.height = h;
    v.fit = fit;
    v.enlarge = enlarge;
    v.outputs = {{Format::jpeg, 85}};
    return v;
}

Profile simple_profile() {
    Profile p;
    p.name = "custom";
    p.variants = {variant(300, 200, Fit::inside)};
    return p;
}

std::string config_error(const Status& s) {
    EXPECT_FALSE(s.ok());
    if (s.ok()) return "";
    EXPECT_EQ(s.error().stage, Stage::config);
    return s.error().reason;
}

std::string reason_of(const Profile& p) {
    return config_error(validate_profile(p));
}

TEST(Formats, NamesExtensionsAndMimeTypes) {
    EXPECT_STREQ(format_name(Format::jpeg), "jpeg");
    EXPECT_STREQ(format_extension(Format::jpeg), "jpg");
    EXPECT_STREQ(format_mime(Format::webp), "image/webp");
    EXPECT_STREQ(format_extension(Format::png), "png");
    EXPECT_STREQ(format_extension(Format::tiff), "tif");
    EXPECT_STREQ(format_mime(Format::avif), "image/avif");
    EXPECT_EQ(parse_output_format("jpg"), Format::jpeg);
    EXPECT_EQ(parse_output_format("jpeg"), Format::jpeg);
    EXPECT_EQ(parse_output_format("webp"), Format::webp);
    EXPECT_EQ(parse_output_format("avif"), Format::avif);
    EXPECT_EQ(parse_output_format("gif"), Format::gif);
    // Browsers show neither: sources only.
    EXPECT_EQ(parse_output_format("tiff"), std::nullopt);
    EXPECT_EQ(parse_output_format("heic"), std::nullopt);
    EXPECT_EQ(parse_output_format("bmp"), std::nullopt);
}

TEST(Formats, ThisLibvipsEncodesAvifAndGif) {
    // Debian 12's libvips 8.14 with libheif (libaom) and cgif: the builds we ship.
    EXPECT_TRUE(available_encoders().avif);
    EXPECT_TRUE(available_encoders().gif);
}

TEST(ProfileChecks, AnAvifOutputNeedsAnAvifEncoder) {
    Profile p = builtin_profiles().at("web");
    p.name = "modern";
    p.variants[0].outputs.push_back({Format::avif, 60});
    EXPECT_TRUE(validate_profile(p, Encoders{true, true}).ok());
    EXPECT_NE(config_error(validate_profile(p, Encoders{false, true})).find("cannot encode AVIF"),
              std::string::npos);
    Profile fallback = builtin_profiles().at("web");
    fallback.source_fallback = Format::avif;
    EXPECT_NE(config_error(validate_profile(fallback, Encoders{false, true}))
                  .find("source_fallback: AVIF output needs"),
              std::string::npos);
}

TEST(ProfileChecks, SmartCropNeedsCoverAndEffortsHaveRanges) {
    Profile p = builtin_profiles().at("dall-e");
    p.variants[0].crop = Crop::attention;
    EXPECT_NE(config_error(validate_profile(p)).find("crop = \"attention\" needs fit = \"cover\""),
              std::string::npos);
    Profile q = builtin_profiles().at("web");
    q.avif_effort = 10;
    EXPECT_NE(config_error(validate_profile(q)).find("avif_effort 10 is outside 0-9"),
              std::string::npos);
    Profile r = builtin_profiles().at("web");
    r.source_fallback = Format::tiff;
    EXPECT_NE(config_error(validate_profile(r)).find("not a format browsers show"),
              std::string::npos);
}

TEST(BuiltinProfiles, AllFourExistAndAreValid) {
    const auto& profiles = builtin_profiles();
    ASSERT_EQ(profiles.size(), 4u);
    for (const char* name : {"web", "dall-e", "sora", "stable-diffusion"}) {
        ASSERT_TRUE(profiles.count(name)) << name;
        const Profile& p = profiles.at(name);
        EXPECT_EQ(p.name, name);
        EXPECT_TRUE(validate_profile(p).ok()) << validate_profile(p).error().reason;
        EXPECT_FALSE(p.keep_metadata);
        for (const Variant& v : p.variants) EXPECT_FALSE(v.enlarge) << name << "/" << v.name;
    }
}

TEST(BuiltinProfiles, WebHasCoverThumbnailsInSourceFormatAndWebpPlusTheOriginal) {
    const Profile& web = builtin_profiles().at("web");
    ASSERT_EQ(web.variants.size(), 4u);
    const int sizes[] = {150, 400, 800};
    for (int i = 0; i < 3; ++i) {
        const Variant& v = web.variants[i];
        EXPECT_EQ(v.width, sizes[i]);
        EXPECT_EQ(v.height, sizes[i]);
        EXPECT_EQ(v.fit, Fit::cover);
        ASSERT_EQ(v.outputs.size(), 2u);
        EXPECT_EQ(v.outputs[0].format, std::nullopt);
        EXPECT_EQ(v.outputs[1].format, Format::webp);
        EXPECT_EQ(v.outputs[1].quality, 85);
    }
    EXPECT_EQ(web.variants[0].name, "small");
    const Variant& original = web.variants[3];
    EXPECT_EQ(original.name, "original");
    EXPECT_EQ(original.width, 0);
    EXPECT_EQ(original.height, 0);
    ASSERT_EQ(original.outputs.size(), 1u);
    EXPECT_EQ(original.outputs[0].format, std::nullopt);
    EXPECT_EQ(original.outputs[0].quality, 85);
    EXPECT_TRUE(web.jpeg_progressive);
    EXPECT_EQ(web.png_compression, 3);
    EXPECT_EQ(web.webp_effort, 2);
}

TEST(BuiltinProfiles, DecodeStrictlyLikeSharp) {
    for (const auto& [name, profile] : builtin_profiles()) {
        EXPECT_EQ(profile.fail_on, FailOn::warning) << name;
    }
    EXPECT_EQ(Profile{}.fail_on, FailOn::warning);
}

TEST(FailOnNames, RoundTripAndNothingElseParses) {
    for (FailOn f : {FailOn::truncated, FailOn::error, FailOn::warning}) {
        EXPECT_EQ(parse_fail_on(fail_on_name(f)), f);
    }
    EXPECT_STREQ(fail_on_name(FailOn::truncated), "truncated");
    for (const char* other : {"", "none", "Warning", "warnings", "true"}) {
        EXPECT_EQ(parse_fail_on(other), std::nullopt) << other;
    }
}

TEST(BuiltinProfiles, AiPresetsFitInsideWithJpegNormalAndWebpHq) {
    struct Expected {
        const char* name;
        int nw, nh, nq, hw, hh;
    };
    for (const Expected& e : {Expected{"dall-e", 1024, 1024, 80, 2048, 2048},
                              Expected{"sora", 1280, 720, 85, 1920, 1080},
                              Expected{"stable-diffusion", 768, 768, 80, 1536, 1536}}) {
        const Profile& p = builtin_profiles().at(e.name);
        ASSERT_EQ(p.variants.size(), 2u) << e.name;
        const Variant& normal = p.variants[0];
        const Variant& hq = p.variants[1];
        EXPECT_EQ(normal.name, "normal");
        EXPECT_EQ(normal.width, e.nw);
        EXPECT_EQ(normal.height, e.nh);
        EXPECT_EQ(normal.fit, Fit::inside);
        ASSERT_EQ(normal.outputs.size(), 1u);
        EXPECT_EQ(normal.outputs[0].format, Format::jpeg);
        EXPECT_EQ(normal.outputs[0].quality, e.nq);
        EXPECT_EQ(hq.name, "hq");
        EXPECT_EQ(hq.width, e.hw);
        EXPECT_EQ(hq.height, e.hh);
        EXPECT_EQ(hq.fit, Fit::inside);
        ASSERT_EQ(hq.outputs.size(), 1u);
        EXPECT_EQ(hq.outputs[0].format, Format::webp);
        EXPECT_EQ(hq.outputs[0].quality, 95);
    }
}

TEST(TargetSize, ZeroBoxMeansTheSourceSize) {
    EXPECT_EQ(target_size(variant(0, 0, Fit::inside), 1234, 567), (Size{1234, 567}));
    EXPECT_EQ(target_size(variant(0, 0, Fit::cover), 1234, 567), (Size{1234, 567}));
}

TEST(TargetSize, CoverFillsTheBoxExactlyWhenTheSourceIsLarger) {
    EXPECT_EQ(target_size(variant(150, 150, Fit::cover), 4000, 3000), (Size{150, 150}));
    EXPECT_EQ(target_size(variant(400, 400, Fit::cover), 400, 900), (Size{400, 400}));
    EXPECT_EQ(target_size(variant(1280, 720, Fit::cover), 3000, 3000), (Size{1280, 720}));
}

TEST(TargetSize, CoverWithoutEnlargingCropsToTheBoxAspectAtSourceScale) {
    // 600x400 into 800x800: the largest centred square at source scale.
    EXPECT_EQ(target_size(variant(800, 800, Fit::cover), 600, 400), (Size{400, 400}));
    // Only one side short: 1000x300 into 800x800 -> 300x300, never wider than the box.
    EXPECT_EQ(target_size(variant(800, 800, Fit::cover), 1000, 300), (Size{300, 300}));
    // A 16:9 box from a small 4:3 source keeps 16:9.
    EXPECT_EQ(target_size(variant(1920, 1080, Fit::cover), 800, 600), (Size{800, 450}));
    EXPECT_EQ(target_size(variant(1080, 1920, Fit::cover), 800, 600), (Size{338, 600}));
}

TEST(TargetSize, CoverWithEnlargeAlwaysFillsTheBox) {
    EXPECT_EQ(target_size(variant(800, 800, Fit::cover, true), 600, 400), (Size{800, 800}));
}

TEST(TargetSize, InsideKeepsTheAspectRatio) {
    EXPECT_EQ(target_size(variant(1024, 1024, Fit::inside), 4000, 3000), (Size{1024, 768}));
    EXPECT_EQ(target_size(variant(1280, 720, Fit::inside), 1200, 800), (Size{1080, 720}));
    EXPECT_EQ(target_size(variant(1920, 1080, Fit::inside), 3000, 4000), (Size{810, 1080}));
}

TEST(TargetSize, InsideNeverEnlargesUnlessAsked) {
    EXPECT_EQ(target_size(variant(2048, 2048, Fit::inside), 500, 300), (Size{500, 300}));
    EXPECT_EQ(target_size(variant(1000, 1000, Fit::inside, true), 500, 300), (Size{1000, 600}));
}

TEST(TargetSize, InsideRoundsToNearestAndKeepsAtLeastOnePixel) {
    EXPECT_EQ(target_size(variant(100, 100, Fit::inside), 1000, 333), (Size{100, 33}));
    EXPECT_EQ(target_size(variant(100, 100, Fit::inside), 1000, 336), (Size{100, 34}));
    EXPECT_EQ(target_size(variant(100, 100, Fit::inside), 10000, 10), (Size{100, 1}));
}

TEST(ValidateProfile, AcceptsASimpleCustomProfile) {
    EXPECT_TRUE(validate_profile(simple_profile()).ok());
}

TEST(ValidateProfile, RejectsBadNames) {
    Profile p = simple_profile();
    p.name = "";
    EXPECT_NE(reason_of(p).find("name"), std::string::npos);
    p.name = "my profile";
    EXPECT_NE(reason_of(p).find("A-Z a-z 0-9 _ -"), std::string::npos);
    p = simple_profile();
    p.variants[0].name = "../x";
    EXPECT_NE(reason_of(p).find("variant name \"../x\""), std::string::npos);
    p.variants[0].name = "";
    EXPECT_NE(reason_of(p).find("variant name"), std::string::npos);
}

TEST(ValidateProfile, RejectsDuplicateVariantNames) {
    Profile p = simple_profile();
    p.variants.push_back(p.variants[0]);
    EXPECT_NE(reason_of(p).find("defined twice"), std::string::npos);
}

TEST(ValidateProfile, RejectsHalfZeroOrNegativeSizes) {
    Profile p = simple_profile();
    p.variants[0].height = 0;
    EXPECT_NE(reason_of(p).find("300x0"), std::string::npos);
    p.variants[0].width = -5;
    p.variants[0].height = -5;
    EXPECT_NE(reason_of(p).find("-5x-5"), std::string::npos);
    p.variants[0].width = 0;
    p.variants[0].height = 0;
    EXPECT_TRUE(validate_profile(p).ok());
}

TEST(ValidateProfile, RejectsQualityOutsideOneToHundred) {
    Profile p = simple_profile();
    p.variants[0].outputs[0].quality = 0;
    EXPECT_NE(reason_of(p).find("quality 0 is outside 1-100"), std::string::npos);
    p.variants[0].outputs[0].quality = 101;
    EXPECT_NE(reason_of(p).find("quality 101"), std::string::npos);
}

TEST(ValidateProfile, RejectsPngCompressionOutsideZeroToNine) {
    Profile p = simple_profile();
    p.png_compression = 10;
    EXPECT_NE(reason_of(p).find("png_compression 10 is outside 0-9"), std::string::npos);
    p.png_compression = -1;
    EXPECT_NE(reason_of(p).find("png_compression -1"), std::string::npos);
}

TEST(ValidateProfile, RejectsWebpEffortOutsideZeroToSix) {
    Profile p = simple_profile();
    p.webp_effort = 7;
    EXPECT_NE(reason_of(p).find("webp_effort 7 is outside 0-6"), std::string::npos);
    p.webp_effort = -1;
    EXPECT_NE(reason_of(p).find("webp_effort -1"), std::string::npos);
    p.webp_effort = 6;
    EXPECT_TRUE(validate_profile(p).ok());
}

TEST(ValidateProfile, RejectsProfilesWithoutVariantsOrOutputs) {
    Profile p = simple_profile();
    p.variants.clear();
    EXPECT_NE(reason_of(p).find("no variants"), std::string::npos);
    p = simple_profile();
    p.variants[0].outputs.clear();
    EXPECT_NE(reason_of(p).find("no outputs"), std::string::npos);
}

TEST(ValidateProfile, RejectsTheSameFormatTwiceInOneVariant) {
    Profile p = simple_profile();
    p.variants[0].outputs = {{Format::webp, 80}, {Format::webp, 90}};
    EXPECT_NE(reason_of(p).find("lists the webp output twice"), std::string::npos);
    p.variants[0].outputs = {{std::nullopt, 80}, {std::nullopt, 90}};
    EXPECT_NE(reason_of(p).find("lists the source output twice"), std::string::npos);
    // The same format in two different variants is fine.
    p = simple_profile();
    Variant second = p.variants[0];
    second.name = "second";
    p.variants.push_back(second);
    EXPECT_TRUE(validate_profile(p).ok());
}

TEST(Fingerprint, IsStableHexAndIndependentOfTheProfileName) {
    const Profile& web = builtin_profiles().at("web");
    const std::string fp = web.fingerprint();
    EXPECT_EQ(fp.size(), 64u);
    EXPECT_EQ(fp.find_first_not_of("0123456789abcdef"), std::string::npos);
    Profile copy = web;
    EXPECT_EQ(copy.fingerprint(), fp);
    copy.name = "renamed";
    EXPECT_EQ(copy.fingerprint(), fp);
    EXPECT_NE(builtin_profiles().at("dall-e").fingerprint(),
              builtin_profiles().at("sora").fingerprint());
}

TEST(Fingerprint, ChangesWhenAnySettingChanges) {
    const Profile base = builtin_profiles().at("web");
    const std::vector<std::pair<const char*, std::function<void(Profile&)>>> changes = {
        {"keep_metadata", [](Profile& p) { p.keep_metadata = true; }},
        {"jpeg_progressive", [](Profile& p) { p.jpeg_progressive = false; }},
        {"png_compression", [](Profile& p) { p.png_compression = 6; }},
        {"webp_effort", [](Profile& p) { p.webp_effort = 4; }},
        {"fail_on", [](Profile& p) { p.fail_on = FailOn::truncated; }},
        {"variant name", [](Profile& p) { p.variants[0].name = "tiny"; }},
        {"width", [](Profile& p) { p.variants[0].width = 151; }},
        {"height", [](Profile& p) { p.variants[0].height = 151; }},
        {"fit", [](Profile& p) { p.variants[0].fit = Fit::inside; }},
        {"enlarge", [](Profile& p) { p.variants[0].enlarge = true; }},
        {"format", [](Profile& p) { p.variants[0].outputs[0].format = Format::png; }},
        {"quality", [](Profile& p) { p.variants[0].outputs[1].quality = 86; }},
        {"extra output",
         [](Profile& p) {
             p.variants[3].outputs.push_back({Format::webp, 85});
         }},
        {"dropped variant", [](Profile& p) { p.variants.pop_back(); }},
        {"variant order", [](Profile& p) { std::swap(p.variants[0], p.variants[1]); }},
    };
    for (const auto& [what, change] : changes) {
        Profile changed = base;
        change(changed);
        EXPECT_NE(changed.fingerprint(), base.fingerprint()) << what;
    }
}

// A watermark as the config loader leaves it (overlay decoded, file hashed).
Watermark loaded_watermark() {
    Watermark w;
    w.image = "/etc/imgspool/mark.png";
    w.overlay = std::make_shared<WatermarkOverlay>();
    w.overlay_sha256 = std::string(64, 'a');
    return w;
}

TEST(ValidateProfile, ChecksWatermarks) {
    Profile p = simple_profile();
    p.variants[0].watermark = loaded_watermark();
    EXPECT_TRUE(validate_profile(p).ok());
    p.variants[0].watermark->opacity = 0;
    EXPECT_NE(reason_of(p).find("opacity must be > 0 and <= 1"), std::string::npos);
    p.variants[0].watermark = loaded_watermark();
    p.variants[0].watermark->margin = -1;
    EXPECT_NE(reason_of(p).find("margin and min_width must be >= 0"), std::string::npos);
    p.variants[0].watermark = loaded_watermark();
    p.variants[0].watermark->overlay = nullptr;
    EXPECT_NE(reason_of(p).find("/etc/imgspool/mark.png is not loaded"), std::string::npos);
}

TEST(GravityNames, RoundTripAndNothingElseParses) {
    for (Gravity g :
         {Gravity::centre, Gravity::north, Gravity::south, Gravity::east, Gravity::west,
          Gravity::north_east, Gravity::north_west, Gravity::south_east, Gravity::south_west}) {
        EXPECT_EQ(parse_gravity(gravity_name(g)), g);
    }
    EXPECT_EQ(gravity_name(Gravity::south_east), std::string("south-east"));
    EXPECT_FALSE(parse_gravity("center"));
    EXPECT_FALSE(parse_gravity("southeast"));
}

TEST(Fingerprint, WatermarkSettingsAndOverlayBytesCountButNotThePath) {
    Profile base = builtin_profiles().at("web");
    const std::string unmarked = base.fingerprint();
    base.variants[2].watermark = loaded_watermark();
    EXPECT_NE(base.fingerprint(), unmarked);
    const std::vector<std::pair<const char*, std::function<void(Watermark&)>>> changes = {
        {"overlay bytes", [](Watermark& w) { w.overlay_sha256 = std::string(64, 'b'); }},
        {"gravity", [](Watermark& w) { w.gravity = Gravity::north_west; }},
        {"margin", [](Watermark& w) { w.margin = 17; }},
        {"opacity", [](Watermark& w) { w.opacity = 0.50000001; }},
        {"min_width", [](Watermark& w) { w.min_width = 1; }},
    };
    for (const auto& [what, change] : changes) {
        Profile changed = base;
        change(*changed.variants[2].watermark);
        EXPECT_NE(changed.fingerprint(), base.fingerprint()) << what;
    }
    // The same bytes under another name render the same.
    Profile moved = base;
    moved.variants[2].watermark->image = "/srv/marks/copy.png";
    EXPECT_EQ(moved.fingerprint(), base.fingerprint());
}

}  // namespace
}  // namespace imgspool
