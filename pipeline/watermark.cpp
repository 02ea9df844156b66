// Watermarks: the overlay loaded once with the configuration, and composited per variant.
#include "pipeline/watermark.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>

#include "pipeline/hash.hpp"
#include "pipeline/render.hpp"
#include "pipeline/validate.hpp"
#include "pipeline/watermark_file.hpp"

namespace imgspool {

namespace {

namespace fs = std::filesystem;

Error file_error(const Watermark& w, const std::string& why) {
    return make_error(Stage::config, why, w.image.string());
}

Result<std::string> read_overlay_file(const Watermark& w) {
    std::error_code ec;
    const fs::file_status status = fs::status(w.image, ec);
    if (status.type() == fs::file_type::not_found) return file_error(w, "no such file");
    if (ec) return file_error(w, "cannot read it: " + ec.message());
    if (!fs::is_regular_file(status)) {
        return file_error(w, "not a regular file");
    }
    const std::uintmax_t size = fs::file_size(w.image, ec);
    if (ec) return file_error(w, "cannot read it: " + ec.message());
    if (size > kMaxWatermarkFileBytes) {
        return file_error(w, std::to_string(size) + " bytes, more than the " +
                                 std::to_string(kMaxWatermarkFileBytes) + " allowed");
    }
    std::ifstream in(w.image, std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!in.good() && !in.eof()) {
        return file_error(w, std::string("cannot read it: ") + std::strerror(errno));
    }
    return bytes;
}

// One libvips operation on `in`: its output, or an Error of `stage` saying `what` failed.
template <class Run>
Result<VipsImagePtr> vips_step(Stage stage, const char* what, VipsImage* in, Run&& run) {
    VipsImage* out = nullptr;
    if (run(in, &out) != 0) return vips_failure(stage, what);
    return own(out);
}

// The overlay as compositing wants it: upright, 8-bit sRGB with alpha, decoded into memory.
Result<VipsImagePtr> decode_overlay(const Watermark& w, const std::string& bytes) {
    VipsImagePtr image = own(vips_image_new_from_buffer(bytes.data(), bytes.size(), "", "fail_on",
                                                        VIPS_FAIL_ON_ERROR, nullptr));
    if (!image) {
        Error e = vips_failure(Stage::config, "cannot decode it");
        e.file = w.image.string();
        return e;
    }
    const int width = vips_image_get_width(image.get());
    const int height = vips_image_get_height(image.get());
    if (width > kMaxWatermarkSide || height > kMaxWatermarkSide) {
        return file_error(w, std::to_string(width) + "x" + std::to_string(height) +
                                 " px, larger than the " + std::to_string(kMaxWatermarkSide) + "x" +
                                 std::to_string(kMaxWatermarkSide) + " allowed");
    }
    Result<VipsImagePtr> r =
        vips_step(Stage::config, "cannot orient it", image.get(),
                  [](VipsImage* in, VipsImage** out) { return vips_autorot(in, out, nullptr); });
    if (r && vips_image_get_typeof(r->get(), VIPS_META_ICC_NAME) != 0) {
        r = vips_step(Stage::config, "cannot convert its ICC profile to sRGB", r->get(),
                      [](VipsImage* in, VipsImage** out) {
                          return vips_icc_transform(in, out, "srgb", "embedded", TRUE, nullptr);
                      });
    }
    if (r) {
        // Grey, CMYK and 16-bit images become 8-bit sRGB here; sRGB passes through.
        r = vips_step(Stage::config, "cannot convert it to sRGB", r->get(),
                      [](VipsImage* in, VipsImage** out) {
                          return vips_colourspace(in, out, VIPS_INTERPRETATION_sRGB, nullptr);
                      });
    }
    if (r && vips_image_get_format(r->get()) != VIPS_FORMAT_UCHAR) {
        r = vips_step(
            Stage::config, "cannot convert it to 8 bits", r->get(),
            [](VipsImage* in, VipsImage** out) { return vips_cast_uchar(in, out, nullptr); });
    }
    if (r && !vips_image_hasalpha(r->get())) {
        r = vips_step(
            Stage::config, "cannot add an alpha band to it", r->get(),
            [](VipsImage* in, VipsImage** out) { return vips_addalpha(in, out, nullptr); });
    }
    if (!r) {
        Error e = r.error();
        e.file = w.image.string();
        return e;
    }
    if (vips_image_get_bands(r->get()) != 4) {
        return file_error(w, "has " + std::to_string(vips_image_get_bands(r->get())) +
                                 " bands after conversion to sRGB with alpha, not 4");
    }
    // Decodes every pixel now: damaged data fails here, at load, not in a render.
    VipsImagePtr decoded = own(vips_image_copy_memory(r->get()));
    if (!decoded) {
        Error e = vips_failure(Stage::config, "cannot decode it");
        e.file = w.image.string();
        return e;
    }
    return decoded;
}

// Where the overlay's left (or top) edge goes along one axis: by the start edge, centred, or
// by the end edge, `margin` from the edge it sits by.
enum class Along { start, middle, end };

int offset(Along along, int image, int overlay, int margin) {
    switch (along) {
        case Along::start:
            return margin;
        case Along::middle:
            return (image - overlay) / 2;
        case Along::end:
            return image - overlay - margin;
    }
    return margin;
}

Along horizontal(Gravity g) {
    switch (g) {
        case Gravity::west:
        case Gravity::north_west:
        case Gravity::south_west:
            return Along::start;
        case Gravity::east:
        case Gravity::north_east:
        case Gravity::south_east:
            return Along::end;
        default:
            return Along::middle;
    }
}

Along vertical(Gravity g) {
    switch (g) {
        case Gravity::north:
        case Gravity::north_east:
        case Gravity::north_west:
            return Along::start;
        case Gravity::south:
        case Gravity::south_east:
        case Gravity::south_west:
            return Along::end;
        default:
            return Along::middle;
    }
}

// The space to blend in, so the result keeps the image's bands and depth: a grey image gets a
// grey watermark, a 16-bit one is blended at 16 bits.
VipsInterpretation compositing_space(VipsImage* image) {
    const VipsInterpretation kind = vips_image_guess_interpretation(image);
    const bool grey = vips_image_get_bands(image) - (vips_image_hasalpha(image) ? 1 : 0) < 3;
    const bool deep = kind == VIPS_INTERPRETATION_RGB16 || kind == VIPS_INTERPRETATION_GREY16;
    if (grey) return deep ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W;
    return deep ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_sRGB;
}

}  // namespace

Status load_watermark(Watermark& w) {
    // The configuration is loaded before the daemon starts its workers (and by check-config
    // and tests, which render nothing): libvips may not be started yet.
    if (Status s = init_vips("imgspool"); !s) return s;
    Result<std::string> bytes = read_overlay_file(w);
    if (!bytes) return bytes.error();
    if (!sniff_format(*bytes)) {
        return file_error(w, "not a PNG, WebP or JPEG file");
    }
    Result<VipsImagePtr> decoded = decode_overlay(w, *bytes);
    if (!decoded) return decoded.error();
    auto overlay = std::make_shared<WatermarkOverlay>();
    overlay->image = std::move(*decoded);
    w.overlay = std::move(overlay);
    w.overlay_sha256 = sha256_hex(*bytes);
    return ok_status();
}

Result<VipsImagePtr> apply_watermark(VipsImage* image, const Watermark& w) {
    if (!w.overlay) {
        return make_error(Stage::render, "the watermark image " + w.image.string() +
                                             " was not loaded with the configuration");
    }
    const int width = vips_image_get_width(image);
    const int height = vips_image_get_height(image);
    const int room_w = width - 2 * w.margin;
    const int room_h = height - 2 * w.margin;
    if (width < w.min_width || room_w < 1 || room_h < 1) return share(image);

    VipsImage* overlay = w.overlay->image.get();
    VipsImagePtr mark = share(overlay);
    if (vips_image_get_width(overlay) > room_w || vips_image_get_height(overlay) > room_h) {
        // thumbnail premultiplies the alpha around the resample, so edges do not darken.
        Result<VipsImagePtr> fitted =
            vips_step(Stage::render, "cannot scale the watermark", overlay,
                      [&](VipsImage* in, VipsImage** out) {
                          return vips_thumbnail_image(in, out, room_w, "height", room_h, "size",
                                                      VIPS_SIZE_DOWN, nullptr);
                      });
        if (!fitted) return fitted.error();
        mark = std::move(*fitted);
    }
    if (w.opacity < 1.0) {
        double scale[] = {1.0, 1.0, 1.0, w.opacity};
        double shift[] = {0.0, 0.0, 0.0, 0.0};
        Result<VipsImagePtr> faded =
            vips_step(Stage::render, "cannot apply the watermark's opacity", mark.get(),
                      [&](VipsImage* in, VipsImage** out) {
                          return vips_linear(in, out, scale, shift, 4, "uchar", TRUE, nullptr);
                      });
        if (!faded) return faded.error();
        mark = std::move(*faded);
    }

    const int mark_w = vips_image_get_width(mark.get());
    const int mark_h = vips_image_get_height(mark.get());
    const int x = offset(horizontal(w.gravity), width, mark_w, w.margin);
    const int y = offset(vertical(w.gravity), height, mark_h, w.margin);
    Result<VipsImagePtr> marked = vips_step(
        Stage::render, "cannot composite the watermark", image,
        [&](VipsImage* in, VipsImage** out) {
            return vips_composite2(in, mark.get(), out, VIPS_BLEND_MODE_OVER, "x", x, "y", y,
                                   "compositing_space", compositing_space(in), nullptr);
        });
    if (!marked) return marked.error();
    // composite2 adds an alpha band to an image without one (opaque, so dropping it loses
    // nothing) and may widen the format.
    const int bands = vips_image_get_bands(image);
    if (vips_image_get_bands(marked->get()) != bands) {
        marked = vips_step(Stage::render, "cannot composite the watermark", marked->get(),
                           [&](VipsImage* in, VipsImage** out) {
                               return vips_extract_band(in, out, 0, "n", bands, nullptr);
                           });
        if (!marked) return marked.error();
    }
    const VipsBandFormat format = vips_image_get_format(image);
    if (vips_image_get_format(marked->get()) != format) {
        marked = vips_step(
            Stage::render, "cannot composite the watermark", marked->get(),
            [&](VipsImage* in, VipsImage** out) { return vips_cast(in, out, format, nullptr); });
        if (!marked) return marked.error();
    }
    return marked;
}

}  // namespace imgspool
