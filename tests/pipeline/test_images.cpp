#include "test_images.hpp"

#include <libheif/heif.h>

#include <memory>

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

std::string oriented_quadrants_heic(int w, int h, int orientation) {
    const bool swapped = orientation >= 5;
    const int sw = swapped ? h : w;
    const int sh = swapped ? w : h;
    std::unique_ptr<heif_context, decltype(&heif_context_free)> ctx(heif_context_alloc(),
                                                                    &heif_context_free);
    heif_encoder* raw_encoder = nullptr;
    EXPECT_EQ(
        heif_context_get_encoder_for_format(ctx.get(), heif_compression_HEVC, &raw_encoder).code,
        heif_error_Ok);
    std::unique_ptr<heif_encoder, decltype(&heif_encoder_release)> encoder(raw_encoder,
                                                                           &heif_encoder_release);
    if (!encoder) return {};
    heif_encoder_set_lossy_quality(encoder.get(), 90);
    heif_image* raw_image = nullptr;
    heif_image_create(sw, sh, heif_colorspace_RGB, heif_chroma_interleaved_RGB, &raw_image);
    std::unique_ptr<heif_image, decltype(&heif_image_release)> image(raw_image,
                                                                     &heif_image_release);
    heif_image_add_plane(image.get(), heif_channel_interleaved, sw, sh, 8);
    int stride = 0;
    uint8_t* plane = heif_image_get_plane(image.get(), heif_channel_interleaved, &stride);
    for (int j = 0; j < sh; ++j) {
        for (int i = 0; i < sw; ++i) {
            const auto [x, y] = displayed_at(orientation, i, j, sw, sh);
            const Rgb c = upright_colour(x, y, w, h);
            for (int k = 0; k < 3; ++k) {
                plane[j * stride + i * 3 + k] = static_cast<uint8_t>(c[k]);
            }
        }
    }
    std::unique_ptr<heif_encoding_options, decltype(&heif_encoding_options_free)> options(
        heif_encoding_options_alloc(), &heif_encoding_options_free);
    options->image_orientation = static_cast<heif_orientation>(orientation);
    heif_image_handle* raw_handle = nullptr;
    EXPECT_EQ(
        heif_context_encode_image(ctx.get(), image.get(), encoder.get(), options.get(), &raw_handle)
            .code,
        heif_error_Ok);
    std::unique_ptr<heif_image_handle, decltype(&heif_image_handle_release)> handle(
        raw_handle, &heif_image_handle_release);
    // The EXIF libvips writes for the tag, as an iPhone's HEIC carries it beside the transform.
    VipsImagePtr tagged = quadrants(8, 8);
    vips_image_set_int(tagged.get(), VIPS_META_ORIENTATION, orientation);
    const std::string jpeg = save(tagged.get(), Format::jpeg);
    VipsImagePtr exif_source = load(jpeg);
    const void* exif = nullptr;
    std::size_t exif_length = 0;
    EXPECT_EQ(vips_image_get_blob(exif_source.get(), VIPS_META_EXIF_NAME, &exif, &exif_length), 0);
    EXPECT_EQ(
        heif_context_add_exif_metadata(ctx.get(), handle.get(), exif, static_cast<int>(exif_length))
            .code,
        heif_error_Ok);
    std::string bytes;
    heif_writer writer{};
    writer.writer_api_version = 1;
    writer.write = [](heif_context*, const void* data, size_t size, void* out) {
        static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
        return heif_error{heif_error_Ok, heif_suberror_Unspecified, ""};
    };
    EXPECT_EQ(heif_context_write(ctx.get(), &writer, &bytes).code, heif_error_Ok);
    return bytes;
}

VipsImagePtr animation(int w, int h, int frames) {
    std::vector<VipsImagePtr> owned;
    std::vector<VipsImage*> pages;
    for (int i = 0; i < frames; ++i) {
        const Rgb& c = kFrameColours[i % kFrameColours.size()];
        VipsImage* black = nullptr;
        EXPECT_EQ(vips_black(&black, w, h, "bands", 3, nullptr), 0);
        VipsImagePtr b = own(black);
        VipsImage* filled = nullptr;
        EXPECT_EQ(vips_linear(b.get(), &filled, std::array<double, 3>{1, 1, 1}.data(), c.data(), 3,
                              "uchar", TRUE, nullptr),
                  0);
        owned.push_back(own(filled));
        pages.push_back(owned.back().get());
    }
    VipsImage* joined = nullptr;
    EXPECT_EQ(vips_arrayjoin(pages.data(), &joined, frames, "across", 1, nullptr), 0);
    VipsImagePtr stack = own(joined);
    VipsImage* srgb = nullptr;
    EXPECT_EQ(vips_copy(stack.get(), &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr),
              0);
    VipsImagePtr out = own(srgb);
    vips_image_set_int(out.get(), VIPS_META_PAGE_HEIGHT, h);
    vips_image_set_int(out.get(), VIPS_META_N_PAGES, frames);
    std::vector<int> delays(frames, 100);
    vips_image_set_array_int(out.get(), "delay", delays.data(), frames);
    vips_image_set_int(out.get(), "loop", 0);
    return out;
}

VipsImagePtr subject_at(int w, int h, int cx, int cy, int r) {
    std::vector<unsigned char> pixels;
    pixels.reserve(static_cast<std::size_t>(w) * h * 3);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            const bool inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r;
            const Rgb c = inside ? Rgb{230, 150, 110} : Rgb{120, 128, 120};
            for (double v : c) pixels.push_back(static_cast<unsigned char>(v));
        }
    }
    return from_pixels(pixels, w, h, 3);
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
        case Format::avif:
            rc = vips_heifsave_buffer(image, &raw, &length, "compression",
                                      VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "effort", 0, nullptr);
            break;
        case Format::gif:
            rc = vips_gifsave_buffer(image, &raw, &length, nullptr);
            break;
        case Format::tiff:
            rc = vips_tiffsave_buffer(image, &raw, &length, nullptr);
            break;
        case Format::heic:
            rc = vips_heifsave_buffer(image, &raw, &length, "compression",
                                      VIPS_FOREIGN_HEIF_COMPRESSION_HEVC, nullptr);
            break;
    }
    GBuffer buffer(raw);
    EXPECT_EQ(rc, 0) << vips_error_buffer();
    return rc == 0 ? std::string(static_cast<const char*>(raw), length) : std::string();
}

SourceInfo validated(const std::string& bytes) {
    Result<SourceInfo> info = validate_source(bytes, Limits{});
    EXPECT_TRUE(info.ok()) << (info.ok() ? "" : info.error().reason);
    return info.ok() ? *info : SourceInfo{};
}

std::vector<Rendered> rendered(const std::string& bytes, const Profile& profile) {
    const SourceInfo info = validated(bytes);
    EXPECT_TRUE(check_frames(info, profile).ok());
    Result<RenderResult> r = render(bytes, info, profile);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? r->outputs : std::vector<Rendered>{};
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
