// Centre crop to the target's aspect ratio (cover), then one resample to the exact size.
#include "pipeline/frame.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace imgspool {

namespace {

// Resampling with alpha needs premultiplied values, or transparent pixels bleed their colour.
Result<VipsImagePtr> resize(VipsImage* in, double hscale, double vscale) {
    const bool alpha = vips_image_hasalpha(in);
    VipsImagePtr premultiplied;
    if (alpha) {
        VipsImage* out = nullptr;
        if (vips_premultiply(in, &out, nullptr) != 0) {
            return vips_failure(Stage::render, "cannot premultiply alpha");
        }
        premultiplied = own(out);
    }
    VipsImage* out = nullptr;
    if (vips_resize(alpha ? premultiplied.get() : in, &out, hscale, "vscale", vscale, nullptr) !=
        0) {
        return vips_failure(Stage::render, "cannot resize");
    }
    VipsImagePtr resized = own(out);
    if (!alpha) return resized;
    VipsImage* unpremultiplied = nullptr;
    if (vips_unpremultiply(resized.get(), &unpremultiplied, nullptr) != 0) {
        return vips_failure(Stage::render, "cannot unpremultiply alpha");
    }
    VipsImagePtr straight = own(unpremultiplied);
    VipsImage* cast = nullptr;
    if (vips_cast(straight.get(), &cast, in->BandFmt, nullptr) != 0) {
        return vips_failure(Stage::render, "cannot cast back after resizing");
    }
    return own(cast);
}

}  // namespace

Region framing(int base_w, int base_h, Size target, Fit fit) {
    int cw = base_w;
    int ch = base_h;
    if (fit == Fit::cover) {
        const double aspect = static_cast<double>(target.width) / target.height;
        if (static_cast<long long>(base_w) * target.height >
            static_cast<long long>(base_h) * target.width) {
            cw = std::clamp(static_cast<int>(std::lround(base_h * aspect)), 1, base_w);
        } else {
            ch = std::clamp(static_cast<int>(std::lround(base_w / aspect)), 1, base_h);
        }
    }
    return {(base_w - cw) / 2, (base_h - ch) / 2, cw, ch};
}

Result<VipsImagePtr> frame(VipsImage* base, Size target, Fit fit) {
    const int bw = vips_image_get_width(base);
    const int bh = vips_image_get_height(base);
    const Region r = framing(bw, bh, target, fit);
    const int cw = r.width;
    const int ch = r.height;
    VipsImagePtr image = share(base);
    if (cw != bw || ch != bh) {
        VipsImage* out = nullptr;
        if (vips_crop(base, &out, r.left, r.top, cw, ch, nullptr) != 0) {
            return vips_failure(Stage::render, "cannot crop");
        }
        image = own(out);
    }
    if (cw != target.width || ch != target.height) {
        Result<VipsImagePtr> resized = resize(image.get(), static_cast<double>(target.width) / cw,
                                              static_cast<double>(target.height) / ch);
        if (!resized) return resized.error();
        image = std::move(*resized);
    }
    const int w = vips_image_get_width(image.get());
    const int h = vips_image_get_height(image.get());
    if (w != target.width || h != target.height) {
        return make_error(Stage::render, "resampling produced " + std::to_string(w) + "x" +
                                             std::to_string(h) + " instead of " +
                                             std::to_string(target.width) + "x" +
                                             std::to_string(target.height));
    }
    return image;
}

}  // namespace imgspool
