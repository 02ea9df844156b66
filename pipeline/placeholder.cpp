#include "pipeline/placeholder.hpp"

#include <memory>
#include <span>
#include <string>

#include "pipeline/blurhash.hpp"
#include "pipeline/encode.hpp"
#include "pipeline/vips_handles.hpp"

namespace imgspool {

namespace {

// The long side of the copy both placeholders are made from: BlurHash keeps only a few cosine
// components, which 32 px describe as well as the full size does, at a fraction of the work.
constexpr int kSmallSide = 32;

constexpr std::string_view kLqipPrefix = "data:image/webp;base64,";

// An LQIP try: long side in pixels and WebP quality. The first fits nearly every image (the
// tests' photos, quadrants and noise give data: URIs of 140-250 bytes); the rest are for images
// that compress badly even blurred.
struct LqipTry {
    int side;
    int quality;
};
constexpr LqipTry kLqipTries[] = {{20, 40}, {20, 20}, {16, 10}, {12, 1}};

// Fits `image` into side x side (never enlarging), leaving its orientation alone: the decode has
// applied the EXIF orientation already.
Result<VipsImagePtr> shrink(VipsImage* image, int side) {
    VipsImage* out = nullptr;
    if (vips_thumbnail_image(image, &out, side, "height", side, "size", VIPS_SIZE_DOWN, "no_rotate",
                             TRUE, nullptr) != 0) {
        return vips_failure(Stage::render, "cannot shrink the image for its placeholders");
    }
    return own(out);
}

// The image at most kSmallSide px on the long side, as 8-bit sRGB without alpha (flattened onto
// white), in memory.
Result<VipsImagePtr> small_srgb(VipsImage* decoded) {
    Result<VipsImagePtr> small = shrink(decoded, kSmallSide);
    if (!small) return small.error();
    const std::string what = "cannot convert the image for its placeholders";
    VipsImage* out = nullptr;
    // Grey becomes three bands, 16-bit becomes 8-bit; alpha stays as the last band.
    if (vips_colourspace(small->get(), &out, VIPS_INTERPRETATION_sRGB, nullptr) != 0) {
        return vips_failure(Stage::render, what);
    }
    VipsImagePtr image = own(out);
    if (vips_image_hasalpha(image.get())) {
        const double white = 255.0;
        VipsArrayDoublePtr background(VIPS_AREA(vips_array_double_new(&white, 1)));
        if (vips_flatten(image.get(), &out, "background",
                         reinterpret_cast<VipsArrayDouble*>(background.get()), nullptr) != 0) {
            return vips_failure(Stage::render, what);
        }
        image = own(out);
    }
    if (vips_cast(image.get(), &out, VIPS_FORMAT_UCHAR, nullptr) != 0) {
        return vips_failure(Stage::render, what);
    }
    image = own(out);
    if (vips_extract_band(image.get(), &out, 0, "n", 3, nullptr) != 0) {
        return vips_failure(Stage::render, what);
    }
    VipsImagePtr rgb = own(out);
    VipsImagePtr held = own(vips_image_copy_memory(rgb.get()));
    if (!held) return vips_failure(Stage::render, what);
    return held;
}

Result<std::string> blurhash_of(VipsImage* small) {
    const int width = vips_image_get_width(small);
    const int height = vips_image_get_height(small);
    std::size_t size = 0;
    GBuffer pixels(vips_image_write_to_memory(small, &size));
    if (!pixels) return vips_failure(Stage::render, "cannot read the pixels for the BlurHash");
    const bool portrait = height > width;
    return blurhash_encode({static_cast<const std::uint8_t*>(pixels.get()), size}, width, height,
                           portrait ? 3 : 4, portrait ? 4 : 3);
}

std::string data_uri(const std::string& webp) {
    std::unique_ptr<gchar, GFree> base64(
        g_base64_encode(reinterpret_cast<const guchar*>(webp.data()), webp.size()));
    return std::string(kLqipPrefix) + base64.get();
}

Result<std::string> lqip_of(VipsImage* small) {
    std::size_t smallest = 0;
    for (const LqipTry& t : kLqipTries) {
        Result<VipsImagePtr> tiny = shrink(small, t.side);
        if (!tiny) return tiny.error();
        VipsImage* out = nullptr;
        if (vips_gaussblur(tiny->get(), &out, 1.0, nullptr) != 0) {
            return vips_failure(Stage::render, "cannot blur the LQIP");
        }
        VipsImagePtr blurred = own(out);
        // Effort 6: libwebp's smallest output; on a few hundred pixels it costs nothing.
        Result<std::string> webp =
            encode(blurred.get(),
                   {.format = Format::webp, .quality = t.quality, .webp_effort = 6, .strip = true});
        if (!webp) return webp.error();
        std::string uri = data_uri(*webp);
        if (uri.size() < kMaxLqipBytes) return uri;
        smallest = uri.size();
    }
    return make_error(Stage::render, "cannot make an LQIP under " + std::to_string(kMaxLqipBytes) +
                                         " bytes: the smallest try took " +
                                         std::to_string(smallest));
}

}  // namespace

Result<Placeholders> make_placeholders(VipsImage* decoded, const PlaceholderSet& which) {
    Placeholders made;
    if (!which.any()) return made;
    Result<VipsImagePtr> small = small_srgb(decoded);
    if (!small) return small.error();
    if (which.blurhash) {
        Result<std::string> hash = blurhash_of(small->get());
        if (!hash) return hash.error();
        made.blurhash = std::move(*hash);
    }
    if (which.lqip) {
        Result<std::string> uri = lqip_of(small->get());
        if (!uri) return uri.error();
        made.lqip = std::move(*uri);
    }
    return made;
}

}  // namespace imgspool
