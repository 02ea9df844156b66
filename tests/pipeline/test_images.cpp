#include "test_images.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace imgspool::test {

namespace {

Rgb upright_colour(int x, int y, int w, int h) {
    const bool right = x >= w / 2;
    const bool bottom = y >= h / 2;
    if (!bottom) return right ? kGreen : kRed;
    return right ? kWhite : kBlue;
}

// Where stored pixel (i, j) of a sw x sh stored image is displayed once EXIF orientation `o`
// is applied (2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
// 7 transverse, 8 rotate 270 clockwise).
std::pair<int, int> displayed_at(int o, int i, int j, int sw, int sh) {
    switch (o) {
        case 2:
            return {sw - 1 - i, j};
        case 3:
            return {sw - 1 - i, sh - 1 - j};
        case 4:
            return {i, sh - 1 - j};
        case 5:
            return {j, i};
        case 6:
            return {sh - 1 - j, i};
        case 7:
            return {sh - 1 - j, sw - 1 - i};
        case 8:
            return {j, sw - 1 - i};
        default:
            return {i, j};
    }
}

VipsImagePtr from_pixels(const std::vector<unsigned char>& pixels, int w, int h, int bands) {
    VipsImagePtr raw = own(vips_image_new_from_memory_copy(pixels.data(), pixels.size(), w, h,
                                                           bands, VIPS_FORMAT_UCHAR));
    EXPECT_TRUE(raw) << vips_error_buffer();
    // Raw memory is "multiband": say it is sRGB (or grey), so a fourth band counts as alpha.
    const VipsInterpretation kind = bands < 3 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
    VipsImage* typed = nullptr;
    EXPECT_EQ(vips_copy(raw.get(), &typed, "interpretation", kind, nullptr), 0);
    return own(typed);
}

}  // namespace

std::string oriented_quadrants_jpeg(int w, int h, int orientation) {
    const bool swapped = orientation >= 5;
    const int sw = swapped ? h : w;
    const int sh = swapped ? w : h;
    std::vector<unsigned char> pixels;
    pixels.reserve(static_cast<std::size_t>(sw) * sh * 3);
    for (int j = 0; j < sh; ++j) {
        for (int i = 0; i < sw; ++i) {
            const auto [x, y] = displayed_at(orientation, i, j, sw, sh);
            for (double c : upright_colour(x, y, w, h))
                pixels.push_back(static_cast<unsigned char>(c));
        }
    }
    VipsImagePtr stored = from_pixels(pixels, sw, sh, 3);
    VipsImage* tagged = nullptr;
    EXPECT_EQ(vips_copy(stored.get(), &tagged, nullptr), 0);
    VipsImagePtr owner = own(tagged);
    vips_image_set_int(tagged, VIPS_META_ORIENTATION, orientation);
    return save(tagged, Format::jpeg);
}

VipsImagePtr solid(int w, int h, const std::vector<unsigned char>& colour) {
    std::vector<unsigned char> pixels;
    pixels.reserve(static_cast<std::size_t>(w) * h * colour.size());
    for (long long i = 0; i < static_cast<long long>(w) * h; ++i) {
        pixels.insert(pixels.end(), colour.begin(), colour.end());
    }
    return from_pixels(pixels, w, h, static_cast<int>(colour.size()));
}

VipsImagePtr quadrants(int w, int h, bool alpha) {
    const int bands = alpha ? 4 : 3;
    std::vector<unsigned char> pixels;
    pixels.reserve(static_cast<std::size_t>(w) * h * bands);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            for (double c : upright_colour(x, y, w, h))
                pixels.push_back(static_cast<unsigned char>(c));
            if (alpha) pixels.push_back(x < w / 2 ? 0 : 255);
        }
    }
    return from_pixels(pixels, w, h, bands);
}

VipsImagePtr noise(int w, int h) {
    VipsImage* grey = nullptr;
    EXPECT_EQ(vips_gaussnoise(&grey, w, h, "sigma", 60.0, nullptr), 0);
    VipsImagePtr g = own(grey);
    VipsImage* rgb = nullptr;
    EXPECT_EQ(vips_bandjoin_const1(g.get(), &rgb, 0.0, nullptr), 0);
    VipsImagePtr two = own(rgb);
    VipsImage* three = nullptr;
    EXPECT_EQ(vips_bandjoin_const1(two.get(), &three, 128.0, nullptr), 0);
    VipsImagePtr t = own(three);
    VipsImage* cast = nullptr;
    EXPECT_EQ(vips_cast(t.get(), &cast, VIPS_FORMAT_UCHAR, nullptr), 0);
    VipsImagePtr c = own(cast);
    VipsImage* srgb = nullptr;
    EXPECT_EQ(vips_copy(c.get(), &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr), 0);
    return own(srgb);
}

std::string save(VipsImage* image, Format format) {
    void* raw = nullptr;
    std::size_t length = 0;
    int rc = -1;
    switch (format) {
        case Format::jpeg:
            rc = vips_jpegsave_buffer(image, &raw, &length, nullptr);
            break;
        case Format::png:
            rc = vips_pngsave_buffer(image, &raw, &length, nullptr);
            break;
        case Format::webp:
            rc = vips_webpsave_buffer(image, &raw, &length, nullptr);
            break;
    }
    GBuffer buffer(raw);
    EXPECT_EQ(rc, 0) << vips_error_buffer();
    return rc == 0 ? std::string(static_cast<const char*>(raw), length) : std::string();
}

VipsImagePtr load(const std::string& bytes) {
    VipsImage* image = vips_image_new_from_buffer(bytes.data(), bytes.size(), "", nullptr);
    EXPECT_NE(image, nullptr) << vips_error_buffer();
    // Pixels are read lazily from `bytes`: decode now so the image outlives them.
    VipsImagePtr lazy = own(image);
    return lazy ? own(vips_image_copy_memory(lazy.get())) : nullptr;
}

Rgb pixel(VipsImage* image, int x, int y) {
    double* values = nullptr;
    int n = 0;
    EXPECT_EQ(vips_getpoint(image, &values, &n, x, y, nullptr), 0) << vips_error_buffer();
    GBuffer owner(values);
    if (n >= 3) return {values[0], values[1], values[2]};
    if (n >= 1) return {values[0], values[0], values[0]};
    return {-1, -1, -1};
}

bool near(const Rgb& actual, const Rgb& expected, double tolerance) {
    for (int i = 0; i < 3; ++i) {
        if (std::abs(actual[i] - expected[i]) > tolerance) return false;
    }
    return true;
}

}  // namespace imgspool::test
