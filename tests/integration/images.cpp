#include "tests/integration/images.hpp"

#include <vips/vips.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace imgspool::it {
namespace {

struct Unref {
    void operator()(void* p) const { g_object_unref(p); }
};
using ImagePtr = std::unique_ptr<VipsImage, Unref>;

void ensure_vips() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (VIPS_INIT("imgspool-integration-test") != 0) {
            throw std::runtime_error("vips_init failed");
        }
    });
}

[[noreturn]] void vips_fail(const char* what) {
    std::string msg = std::string(what) + ": " + vips_error_buffer();
    vips_error_clear();
    throw std::runtime_error(msg);
}

ImagePtr own(VipsImage* image) {
    return ImagePtr(image);
}

// A smooth colour gradient (seeded) with Gaussian noise on top: looks like a photo to a codec.
ImagePtr make_pixels(const ImageSpec& spec) {
    ensure_vips();
    VipsImage* raw = nullptr;
    if (vips_xyz(&raw, spec.width, spec.height, nullptr) != 0) vips_fail("vips_xyz");
    ImagePtr xy = own(raw);
    // Bands: x, y. Make three bands from them: x-ramp, y-ramp and a seed-dependent diagonal.
    const double sx = 255.0 / spec.width;
    const double sy = 255.0 / spec.height;
    const double shift = (spec.seed * 37) % 256;
    double a[3] = {sx, sy, 0.5 * sx};
    double b[3] = {shift * 0.25, 0.0, shift};
    VipsImage* x = nullptr;
    VipsImage* y = nullptr;
    if (vips_extract_band(xy.get(), &x, 0, nullptr) != 0) vips_fail("extract_band");
    ImagePtr xp = own(x);
    if (vips_extract_band(xy.get(), &y, 1, nullptr) != 0) vips_fail("extract_band");
    ImagePtr yp = own(y);
    VipsImage* sum = nullptr;
    if (vips_add(xp.get(), yp.get(), &sum, nullptr) != 0) vips_fail("add");
    ImagePtr sump = own(sum);
    VipsImage* in3[3] = {xp.get(), yp.get(), sump.get()};
    VipsImage* joined = nullptr;
    if (vips_bandjoin(in3, &joined, 3, nullptr) != 0) vips_fail("bandjoin");
    ImagePtr joinedp = own(joined);
    VipsImage* ramp = nullptr;
    if (vips_linear(joinedp.get(), &ramp, a, b, 3, nullptr) != 0) vips_fail("linear");
    ImagePtr rampp = own(ramp);

    VipsImage* noise = nullptr;
    if (vips_gaussnoise(&noise, spec.width, spec.height, "mean", 0.0, "sigma", spec.noise, "seed",
                        static_cast<int>(spec.seed), nullptr) != 0) {
        vips_fail("gaussnoise");
    }
    ImagePtr noisep = own(noise);
    VipsImage* noisy = nullptr;
    if (vips_add(rampp.get(), noisep.get(), &noisy, nullptr) != 0) vips_fail("add noise");
    ImagePtr noisyp = own(noisy);
    VipsImage* wrapped = nullptr;
    if (vips_remainder_const1(noisyp.get(), &wrapped, 256.0, nullptr) != 0) vips_fail("remainder");
    ImagePtr wrappedp = own(wrapped);
    VipsImage* bytes = nullptr;
    if (vips_cast_uchar(wrappedp.get(), &bytes, nullptr) != 0) vips_fail("cast");
    ImagePtr bytesp = own(bytes);
    VipsImage* srgb = nullptr;
    if (vips_copy(bytesp.get(), &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr) != 0) {
        vips_fail("copy");
    }
    return own(srgb);
}

std::string take_buffer(void* buf, size_t len) {
    std::string out(static_cast<const char*>(buf), len);
    g_free(buf);
    return out;
}

}  // namespace

std::string make_jpeg(const ImageSpec& spec, int quality, int orientation) {
    ImagePtr pixels = make_pixels(spec);
    // Metadata must be set on a private copy.
    VipsImage* copy = nullptr;
    if (vips_copy(pixels.get(), &copy, nullptr) != 0) vips_fail("copy");
    ImagePtr img = own(copy);
    vips_image_set_int(img.get(), VIPS_META_ORIENTATION, orientation);
    vips_image_set_string(img.get(), "exif-ifd0-ImageDescription", "imgspool test image");
    void* buf = nullptr;
    size_t len = 0;
    if (vips_jpegsave_buffer(img.get(), &buf, &len, "Q", quality, nullptr) != 0) {
        vips_fail("jpegsave_buffer");
    }
    return take_buffer(buf, len);
}

std::string make_png(const ImageSpec& spec) {
    ImagePtr pixels = make_pixels(spec);
    void* buf = nullptr;
    size_t len = 0;
    if (vips_pngsave_buffer(pixels.get(), &buf, &len, "compression", 1, nullptr) != 0) {
        vips_fail("pngsave_buffer");
    }
    return take_buffer(buf, len);
}

std::string make_solid_png(int width, int height, const std::array<double, 3>& rgb) {
    ensure_vips();
    VipsImage* black = nullptr;
    if (vips_black(&black, width, height, "bands", 3, nullptr) != 0) vips_fail("black");
    ImagePtr blackp = own(black);
    double a[3] = {1, 1, 1};
    double b[3] = {rgb[0], rgb[1], rgb[2]};
    VipsImage* coloured = nullptr;
    if (vips_linear(blackp.get(), &coloured, a, b, 3, "uchar", TRUE, nullptr) != 0) {
        vips_fail("linear");
    }
    ImagePtr colouredp = own(coloured);
    VipsImage* srgb = nullptr;
    if (vips_copy(colouredp.get(), &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr) !=
        0) {
        vips_fail("copy");
    }
    ImagePtr srgbp = own(srgb);
    void* buf = nullptr;
    size_t len = 0;
    if (vips_pngsave_buffer(srgbp.get(), &buf, &len, nullptr) != 0) vips_fail("pngsave_buffer");
    return take_buffer(buf, len);
}

std::string gif_bytes() {
    // GIF89a, 1x1, global colour table of 2 entries, one white pixel.
    static const unsigned char kGif[] = {
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};
    return std::string(reinterpret_cast<const char*>(kGif), sizeof kGif);
}

std::string magic_format(std::string_view b) {
    auto starts = [&](std::string_view m) { return b.substr(0, m.size()) == m; };
    if (starts(std::string_view("\xFF\xD8\xFF", 3))) return "jpeg";
    if (starts(std::string_view("\x89PNG\r\n\x1A\n", 8))) return "png";
    if (b.size() >= 12 && starts("RIFF") && b.substr(8, 4) == "WEBP") return "webp";
    if (starts("GIF87a") || starts("GIF89a")) return "gif";
    return "unknown";
}

ReadBack read_image_buffer(const std::string& bytes, Strictness strictness) {
    ensure_vips();
    ReadBack rb;
    // fail_on makes libvips report truncated (or also corrupt) data instead of padding it.
    const VipsFailOn fail_on =
        strictness == Strictness::warning ? VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_TRUNCATED;
    VipsImage* raw =
        vips_image_new_from_buffer(bytes.data(), bytes.size(), "", "fail_on", fail_on, nullptr);
    if (!raw) {
        rb.error = vips_error_buffer();
        vips_error_clear();
        return rb;
    }
    ImagePtr img = own(raw);
    double avg = 0;
    if (vips_avg(img.get(), &avg, nullptr) != 0) {  // decodes every pixel
        rb.error = vips_error_buffer();
        vips_error_clear();
        return rb;
    }
    rb.ok = true;
    rb.width = vips_image_get_width(img.get());
    rb.height = vips_image_get_height(img.get());
    rb.orientation = vips_image_get_orientation(img.get());
    rb.has_exif = vips_image_get_typeof(img.get(), VIPS_META_EXIF_NAME) != 0;
    rb.has_xmp = vips_image_get_typeof(img.get(), VIPS_META_XMP_NAME) != 0;
    return rb;
}

ReadBack read_image(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ReadBack rb;
        rb.error = "cannot open " + path.string();
        return rb;
    }
    std::ostringstream s;
    s << in.rdbuf();
    return read_image_buffer(s.str());
}

std::array<double, 3> read_pixel(const std::filesystem::path& path, int x, int y) {
    ensure_vips();
    ImagePtr img = own(vips_image_new_from_file(path.c_str(), nullptr));
    if (!img) vips_fail("new_from_file");
    double* values = nullptr;
    int n = 0;
    if (vips_getpoint(img.get(), &values, &n, x, y, nullptr) != 0) vips_fail("getpoint");
    std::array<double, 3> rgb{values[0], values[n >= 3 ? 1 : 0], values[n >= 3 ? 2 : 0]};
    g_free(values);
    return rgb;
}

}  // namespace imgspool::it
