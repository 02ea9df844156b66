// Crop to the target's aspect ratio (cover: centred or smart), then one resample to the exact
// size, frame by frame for an animation.
#include "pipeline/frame.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

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

Region framing(int base_w, int base_h, Size target, Fit fit, Crop crop) {
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
    const bool smart = fit == Fit::cover && (cw != base_w || ch != base_h);
    return {(base_w - cw) / 2, (base_h - ch) / 2, cw, ch, smart ? crop : Crop::centre};
}

namespace {

VipsInteresting interesting(Crop crop) {
    return crop == Crop::entropy ? VIPS_INTERESTING_ENTROPY : VIPS_INTERESTING_ATTENTION;
}

// Where libvips' smartcrop puts a crop of r's size in `image` (one frame).
Result<Region> place_smart_crop(VipsImage* image, Region r) {
    VipsImage* out = nullptr;
    int x = 0;
    int y = 0;
    // Entropy has no centre to report; an animation's frames need one place, so it is looked
    // for by attention there.
    if (vips_smartcrop(image, &out, r.width, r.height, "interesting", VIPS_INTERESTING_ATTENTION,
                       "attention_x", &x, "attention_y", &y, nullptr) != 0) {
        return vips_failure(Stage::render, "cannot find the subject for a smart crop");
    }
    VipsImagePtr discard = own(out);
    // As libvips places it: centred on the attention point, inside the image.
    r.left = std::clamp(x - r.width / 2, 0, vips_image_get_width(image) - r.width);
    r.top = std::clamp(y - r.height / 2, 0, vips_image_get_height(image) - r.height);
    return r;
}

// One frame: the region cut (by smartcrop when it is not centred and not placed yet) and
// resampled to the target.
Result<VipsImagePtr> frame_one(VipsImage* base, Size target, const Region& r, bool placed) {
    const int bw = vips_image_get_width(base);
    const int bh = vips_image_get_height(base);
    VipsImagePtr image = share(base);
    if (r.width != bw || r.height != bh) {
        VipsImage* out = nullptr;
        const int rc = r.crop == Crop::centre || placed
                           ? vips_crop(base, &out, r.left, r.top, r.width, r.height, nullptr)
                           : vips_smartcrop(base, &out, r.width, r.height, "interesting",
                                            interesting(r.crop), nullptr);
        if (rc != 0) return vips_failure(Stage::render, "cannot crop");
        image = own(out);
    }
    if (r.width != target.width || r.height != target.height) {
        Result<VipsImagePtr> resized =
            resize(image.get(), static_cast<double>(target.width) / r.width,
                   static_cast<double>(target.height) / r.height);
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

// Frame i of a stack of frames page_height high.
Result<VipsImagePtr> page(VipsImage* stack, int i, int page_height) {
    VipsImage* out = nullptr;
    if (vips_crop(stack, &out, 0, i * page_height, vips_image_get_width(stack), page_height,
                  nullptr) != 0) {
        return vips_failure(Stage::render, "cannot take frame " + std::to_string(i));
    }
    return own(out);
}

// Every frame framed alike; an animation's smart crop is placed on its first frame.
Result<VipsImagePtr> frame_animation(VipsImage* base, Size target, Fit fit, Crop crop) {
    const int page_height = vips_image_get_page_height(base);
    Region r = framing(vips_image_get_width(base), page_height, target, fit, crop);
    bool placed = r.crop == Crop::centre;
    return each_frame(base, [&](VipsImage* frame) -> Result<VipsImagePtr> {
        if (!placed) {
            Result<Region> found = place_smart_crop(frame, r);
            if (!found) return found.error();
            r = *found;
            placed = true;
        }
        return frame_one(frame, target, r, true);
    });
}

}  // namespace

int frame_count(VipsImage* image) {
    const int page = vips_image_get_page_height(image);
    return page > 0 ? vips_image_get_height(image) / page : 1;
}

Result<VipsImagePtr> first_frame(VipsImage* image) {
    if (vips_image_get_page_height(image) == vips_image_get_height(image)) return share(image);
    VipsImage* out = nullptr;
    if (vips_crop(image, &out, 0, 0, vips_image_get_width(image), vips_image_get_page_height(image),
                  nullptr) != 0) {
        return vips_failure(Stage::render, "cannot take the first frame");
    }
    VipsImagePtr frame = own(out);
    vips_image_remove(frame.get(), VIPS_META_PAGE_HEIGHT);
    vips_image_remove(frame.get(), VIPS_META_N_PAGES);
    return frame;
}

Result<VipsImagePtr> each_frame(VipsImage* stack,
                                const std::function<Result<VipsImagePtr>(VipsImage*)>& fn) {
    const int page_height = vips_image_get_page_height(stack);
    const int n = vips_image_get_height(stack) / page_height;
    std::vector<VipsImagePtr> frames;
    for (int i = 0; i < n; ++i) {
        Result<VipsImagePtr> p = page(stack, i, page_height);
        if (!p) return p.error();
        Result<VipsImagePtr> done = fn(p->get());
        if (!done) return done.error();
        frames.push_back(std::move(*done));
    }
    if (n == 1) return std::move(frames.front());
    std::vector<VipsImage*> raw;
    for (const VipsImagePtr& f : frames) raw.push_back(f.get());
    VipsImage* joined = nullptr;
    if (vips_arrayjoin(raw.data(), &joined, n, "across", 1, nullptr) != 0) {
        return vips_failure(Stage::render, "cannot stack the frames");
    }
    VipsImagePtr stacked = own(joined);
    VipsImage* copy = nullptr;
    if (vips_copy(stacked.get(), &copy, nullptr) != 0) {
        return vips_failure(Stage::render, "cannot stack the frames");
    }
    // The first frame's metadata (delays, loop) came along; the page height is the new one.
    VipsImagePtr out = own(copy);
    vips_image_set_int(out.get(), VIPS_META_PAGE_HEIGHT, vips_image_get_height(raw[0]));
    return out;
}

Result<VipsImagePtr> frame(VipsImage* base, Size target, Fit fit, Crop crop) {
    const int page_height = vips_image_get_page_height(base);
    if (page_height < vips_image_get_height(base)) {
        return frame_animation(base, target, fit, crop);
    }
    const Region r =
        framing(vips_image_get_width(base), vips_image_get_height(base), target, fit, crop);
    return frame_one(base, target, r, false);
}

}  // namespace imgspool
