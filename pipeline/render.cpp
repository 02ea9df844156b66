// The image stage: one decode per source, every variant cut from it, each output encoded.
//
// Decode plan: the largest scale any variant needs (capped at 1) decides one
// vips_thumbnail_buffer call, which shrinks on load (JPEG, WebP), auto-orients, converts to
// sRGB and fails on truncated data. Its result is held in memory and every variant is framed
// from it, so a profile with a source-size variant (web's `original`) decodes at full size
// once and the thumbnails are resampled from that, while the AI presets decode shrunk.
// Memory: the decoded image is held while the variants are cut, width x height x bands bytes
// at the decode scale (full size for `web`), per concurrent render.
#include "pipeline/render.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <set>

#include "common/log.hpp"
#include "pipeline/encode.hpp"
#include "pipeline/frame.hpp"
#include "pipeline/vips_handles.hpp"

namespace imgspool {

namespace {

struct Planned {
    const Variant* variant;
    Size size;
};

Size oriented_size(const SourceInfo& info) {
    const bool swapped = info.orientation >= 5 && info.orientation <= 8;
    return swapped ? Size{info.height, info.width} : Size{info.width, info.height};
}

// The source decoded once, auto-oriented and in sRGB, at the smallest scale from which every
// planned variant can still be cut: `scale` of the oriented source size, at most 1.
Result<VipsImagePtr> decode(std::string_view source, const SourceInfo& info, Size oriented,
                            double scale) {
    const int box_w = std::max(1, static_cast<int>(std::ceil(oriented.width * scale - 1e-6)));
    const int box_h = std::max(1, static_cast<int>(std::ceil(oriented.height * scale - 1e-6)));
    void* buf = const_cast<char*>(source.data());
    VipsImage* out = nullptr;
    // Only transform through ICC when there is an embedded profile: a profile-less image is
    // taken as sRGB already (and CMYK without a profile goes through libvips' CMYK profile).
    // fail_on goes in the loader's option string: libvips 8.14.1's thumbnail_buffer does not
    // pass its own fail_on argument on to the buffer loader, and truncated data then decodes.
    const char* loader_options = "fail_on=truncated";
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

}  // namespace

Result<std::vector<Rendered>> render(std::string_view source, const SourceInfo& info,
                                     const Profile& profile) {
    const Size oriented = oriented_size(info);
    if (oriented.width <= 0 || oriented.height <= 0) {
        return make_error(Stage::render, "the source has no size (was it validated?)");
    }
    std::vector<Planned> plan;
    double scale = 0.0;
    for (const Variant& v : profile.variants) {
        const Size size = target_size(v, oriented.width, oriented.height);
        plan.push_back({&v, size});
        scale = std::max({scale, static_cast<double>(size.width) / oriented.width,
                          static_cast<double>(size.height) / oriented.height});
    }
    Result<VipsImagePtr> base = decode(source, info, oriented, std::min(scale, 1.0));
    if (!base) return base.error();

    std::vector<Rendered> rendered;
    for (const Planned& p : plan) {
        Result<VipsImagePtr> framed = frame(base->get(), p.size, p.variant->fit);
        if (!framed) {
            Error e = framed.error();
            e.reason = "variant \"" + p.variant->name + "\": " + e.reason;
            return e;
        }
        // "The source's format" can name a format the variant also lists: encode it once.
        std::set<Format> done;
        for (const OutputFormat& o : p.variant->outputs) {
            const Format format = o.format.value_or(info.format);
            if (!done.insert(format).second) continue;
            const EncodeSettings settings{format, o.quality, profile.jpeg_progressive,
                                          profile.png_compression, !profile.keep_metadata};
            Result<std::string> bytes = encode(framed->get(), settings);
            if (!bytes) {
                Error e = bytes.error();
                e.reason = "variant \"" + p.variant->name + "\": " + e.reason;
                return e;
            }
            rendered.push_back(
                {p.variant->name, format, p.size.width, p.size.height, std::move(*bytes)});
        }
    }
    return rendered;
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
