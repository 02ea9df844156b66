// The image stage: one decode per source, every variant cut from it, each output encoded.
//
// Decode plan: the largest scale any variant needs (capped at 1) decides one
// vips_thumbnail_buffer call, which shrinks on load (JPEG, WebP), auto-orients, converts to
// sRGB and fails on truncated data (and on corrupt data, as the profile's fail_on says). Its
// result is held in memory. Variants are then framed largest first, each from the smallest
// image already framed that shows the same region of the source and is at least its size (web:
// `large` from the decode, `medium` from `large`, `small` from `medium`), else from the decode
// itself. A framed image that is encoded more than once or feeds a smaller variant is held in
// memory too, so no resample runs twice.
// Memory: the decoded image is held while the variants are cut, width x height x bands bytes
// at the decode scale (full size for `web`), per concurrent render, plus the held variants. An
// animation the profile keeps is decoded whole (every frame stacked, page-height set), so that
// is times the frames: what max_animation_pixels bounds.
// "source" outputs are the source's format when browsers show it, else the profile's
// source_fallback (JPEG turning PNG for a source with alpha).
#include "pipeline/render.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "common/log.hpp"
#include "pipeline/encode.hpp"
#include "pipeline/frame.hpp"
#include "pipeline/placeholder.hpp"
#include "pipeline/vips_handles.hpp"
#include "pipeline/watermark.hpp"

namespace imgspool {

namespace {

struct Planned {
    const Variant* variant;
    Size size;
    Region region;  // what it shows of the decoded image
    int from = -1;  // the planned variant it is resampled from; -1: the decoded image
    int uses = 0;   // encodes plus variants resampled from it
    VipsImagePtr image;
};

// Which image each variant is framed from, and how often each framed image is read.
// Returns the order to frame them in: sources before the variants cut from them.
std::vector<int> plan_sources(std::vector<Planned>& plan) {
    std::vector<int> order(plan.size());
    for (std::size_t i = 0; i < plan.size(); ++i) order[i] = static_cast<int>(i);
    auto area = [&](int i) {
        return static_cast<long long>(plan[i].size.width) * plan[i].size.height;
    };
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return area(a) > area(b); });
    for (std::size_t k = 0; k < order.size(); ++k) {
        Planned& p = plan[order[k]];
        for (std::size_t j = 0; j < k; ++j) {
            const Planned& q = plan[order[j]];
            if (q.region != p.region || q.size.width < p.size.width ||
                q.size.height < p.size.height) {
                continue;
            }
            if (p.from < 0 || area(order[j]) < area(p.from)) p.from = order[j];
        }
        if (p.from >= 0) plan[p.from].uses++;
    }
    return order;
}
Size oriented_size(const SourceInfo& info) {
    const bool swapped = info.orientation >= 5 && info.orientation <= 8;
    return swapped ? Size{info.height, info.width} : Size{info.width, info.height};
}

// libvips 8.14's HEIF loader attaches EXIF, XMP and other metadata as blobs that point into
// libheif's buffers, which are freed when the load ends: a later read (webpsave rebuilds the
// EXIF even when stripping) reads freed memory (AddressSanitizer caught it). Such a source's
// outputs carry none of that metadata, whatever keep_metadata says.
void drop_heif_blobs(VipsImage* image) {
    gchar** fields = vips_image_get_fields(image);
    for (gchar** f = fields; f && *f; ++f) {
        const std::string_view name(*f);
        const bool heif_metadata =
            name == VIPS_META_EXIF_NAME || name == VIPS_META_XMP_NAME || name.starts_with("heif-");
        if (heif_metadata && vips_image_get_typeof(image, *f) == VIPS_TYPE_BLOB) {
            vips_image_remove(image, *f);
        }
    }
    g_strfreev(fields);
}

// The source decoded once, auto-oriented and in sRGB, at the smallest scale from which every
// planned variant can still be cut: `scale` of the oriented source size, at most 1.
Result<VipsImagePtr> decode(std::string_view source, const SourceInfo& info, Size oriented,
                            double scale, FailOn fail_on, bool all_frames) {
    const int box_w = std::max(1, static_cast<int>(std::ceil(oriented.width * scale - 1e-6)));
    const int box_h = std::max(1, static_cast<int>(std::ceil(oriented.height * scale - 1e-6)));
    void* buf = const_cast<char*>(source.data());
    VipsImage* out = nullptr;
    // Only transform through ICC when there is an embedded profile: a profile-less image is
    // taken as sRGB already (and CMYK without a profile goes through libvips' CMYK profile).
    // fail_on goes in the loader's option string: libvips 8.14.1's thumbnail_buffer does not
    // pass its own fail_on argument on to the buffer loader, and truncated data then decodes.
    // n=-1: every frame, stacked; thumbnail then scales each frame alike.
    const std::string option_string =
        std::string("fail_on=") + fail_on_name(fail_on) + (all_frames ? ",n=-1" : "");
    const char* loader_options = option_string.c_str();
    const int rc =
        info.has_icc_profile
            ? vips_thumbnail_buffer(buf, source.size(), &out, box_w, "height", box_h, "size",
                                    VIPS_SIZE_DOWN, "option_string", loader_options,
                                    "export_profile", "srgb", nullptr)
            : vips_thumbnail_buffer(buf, source.size(), &out, box_w, "height", box_h, "size",
                                    VIPS_SIZE_DOWN, "option_string", loader_options, nullptr);
    VipsImagePtr lazy = own(out);
    const std::string what =
        std::string("cannot decode the ") + format_name(info.format) + " image";
    if (rc != 0 || !lazy) return vips_failure(Stage::render, what);
    // Runs the whole decode now, so truncated or corrupt data fails here, once.
    VipsImagePtr decoded = own(vips_image_copy_memory(lazy.get()));
    if (!decoded) return vips_failure(Stage::render, what + ", it is damaged or truncated");
    if (info.format == Format::heic || info.format == Format::avif) drop_heif_blobs(decoded.get());
    return decoded;
}

// libvips and GLib report through g_log (e.g. "error in tile 0 x 144" while decoding a truncated
// JPEG); by default that is plain text on stderr, which would break the one-JSON-object-per-line
// log. Route it through our logger instead.
void log_glib_message(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer) {
    const log::Field from{"domain", domain ? domain : "GLib"};
    const char* text = message ? message : "";
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        log::error(text, {from});
    else if (level & G_LOG_LEVEL_WARNING)
        log::warn(text, {from});
    else
        log::debug(text, {from});
}

// What "source" means for this source in this profile.
Format source_output(const Profile& profile, const SourceInfo& info) {
    if (browser_shows(info.format)) return info.format;
    if (profile.source_fallback == Format::jpeg && info.has_alpha) return Format::png;
    return profile.source_fallback;
}

// The formats a variant is encoded to, each once ("the source's format" can name a format the
// variant also lists).
std::vector<Format> output_formats(const Variant& v, Format source) {
    std::vector<Format> formats;
    for (const OutputFormat& o : v.outputs) {
        const Format f = o.format.value_or(source);
        if (std::find(formats.begin(), formats.end(), f) == formats.end()) formats.push_back(f);
    }
    return formats;
}

struct Encoding {
    const Planned* planned;
    EncodeSettings settings;
    std::optional<Result<std::string>> bytes;
};

// Encodes everything, the largest image on a thread of its own while this one does the rest: a
// lone job then waits for the full-size encode (web's `original`, the slowest step) alone, not
// for it plus every crop. Same CPU, two cores used when the machine is otherwise idle.
void encode_all(std::vector<Encoding>& encodings) {
    auto pixels = [](const Encoding& e) {
        return static_cast<long long>(e.planned->size.width) * e.planned->size.height;
    };
    auto largest = std::max_element(
        encodings.begin(), encodings.end(),
        [&](const Encoding& a, const Encoding& b) { return pixels(a) < pixels(b); });
    std::jthread apart;  // joins on every way out
    if (encodings.size() > 1) {
        apart =
            std::jthread([&e = *largest] { e.bytes = encode(e.planned->image.get(), e.settings); });
    }
    for (auto it = encodings.begin(); it != encodings.end(); ++it) {
        if (it == largest && apart.joinable()) continue;
        it->bytes = encode(it->planned->image.get(), it->settings);
    }
    if (apart.joinable()) apart.join();
}

Error in_variant(const Planned& p, Error e) {
    e.reason = "variant \"" + p.variant->name + "\": " + e.reason;
    return e;
}

}  // namespace

Result<RenderResult> render(std::string_view source, const SourceInfo& info,
                            const Profile& profile) {
    const Size oriented = oriented_size(info);
    const Format as_source = source_output(profile, info);
    if (oriented.width <= 0 || oriented.height <= 0) {
        return make_error(Stage::render, "the source has no size (was it validated?)");
    }
    std::vector<Planned> plan;
    double scale = 0.0;
    for (const Variant& v : profile.variants) {
        const Size size = target_size(v, oriented.width, oriented.height);
        plan.push_back({&v, size, {}, -1, 0, nullptr});
        scale = std::max({scale, static_cast<double>(size.width) / oriented.width,
                          static_cast<double>(size.height) / oriented.height});
    }
    Result<VipsImagePtr> base = decode(source, info, oriented, std::min(scale, 1.0),
                                       profile.fail_on, profile.animated && info.animation());
    if (!base) return base.error();
    RenderResult result;
    if (profile.placeholders.any()) {
        // An animation's placeholders show its first frame.
        Result<VipsImagePtr> first = first_frame(base->get());
        if (!first) return first.error();
        Result<Placeholders> made = make_placeholders(first->get(), profile.placeholders);
        if (!made) return made.error();
        result.placeholders = std::move(*made);
    }
    const int base_w = vips_image_get_width(base->get());
    const int frame_h = vips_image_get_page_height(base->get());
    for (Planned& p : plan) {
        p.region = framing(base_w, frame_h, p.size, p.variant->fit, p.variant->crop);
        p.uses = static_cast<int>(output_formats(*p.variant, as_source).size());
    }

    for (int i : plan_sources(plan)) {
        Planned& p = plan[i];
        // A variant cut from another shows the same region already: only resample it.
        Result<VipsImagePtr> framed =
            p.from < 0 ? frame(base->get(), p.size, p.variant->fit, p.variant->crop)
                       : frame(plan[p.from].image.get(), p.size, Fit::inside);
        if (!framed) return in_variant(p, framed.error());
        p.image = std::move(*framed);
        if (p.uses > 1 && p.image.get() != base->get()) {
            p.image = own(vips_image_copy_memory(p.image.get()));
            if (!p.image) return in_variant(p, vips_failure(Stage::render, "cannot resample"));
        }
    }

    // Watermarks go on what is encoded only: every variant is framed by now, so none is cut
    // from a marked image. One encoded more than once is marked once, into memory.
    for (Planned& p : plan) {
        if (!p.variant->watermark) continue;
        // An animation is marked frame by frame.
        Result<VipsImagePtr> marked = each_frame(p.image.get(), [&](VipsImage* frame) {
            return apply_watermark(frame, *p.variant->watermark);
        });
        if (!marked) return in_variant(p, marked.error());
        p.image = std::move(*marked);
        if (output_formats(*p.variant, as_source).size() > 1) {
            p.image = own(vips_image_copy_memory(p.image.get()));
            if (!p.image) return in_variant(p, vips_failure(Stage::render, "cannot watermark"));
        }
    }

    // Every output to encode, in the profile's order.
    std::vector<Encoding> encodings;
    for (const Planned& p : plan) {
        for (const Format format : output_formats(*p.variant, as_source)) {
            int quality = 0;
            for (const OutputFormat& o : p.variant->outputs) {
                if (o.format.value_or(as_source) == format) {
                    quality = o.quality;
                    break;
                }
            }
            encodings.push_back(
                {&p,
                 {format, quality, profile.jpeg_progressive, profile.png_compression,
                  profile.webp_effort, profile.avif_effort, !profile.keep_metadata},
                 std::nullopt});
        }
    }
    encode_all(encodings);

    for (Encoding& e : encodings) {
        const Planned& p = *e.planned;
        if (!*e.bytes) return in_variant(p, e.bytes->error());
        const int frames = has_animation(e.settings.format) ? frame_count(p.image.get()) : 1;
        result.outputs.push_back({p.variant->name, e.settings.format, p.size.width, p.size.height,
                                  std::move(**e.bytes), frames});
    }
    return result;
}

Status init_vips(const char* argv0) {
    static std::once_flag once;
    static std::optional<Error> failure;
    std::call_once(once, [argv0] {
        g_log_set_default_handler(&log_glib_message, nullptr);
        if (VIPS_INIT(argv0) != 0) {
            failure = vips_failure(Stage::internal, "cannot start libvips");
            return;
        }
        vips_cache_set_max(0);
        vips_leak_set(FALSE);
    });
    if (failure) return *failure;
    return ok_status();
}

}  // namespace imgspool
