// Renders a profile's derivatives from one in-memory source with libvips.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/profile.hpp"
#include "pipeline/validate.hpp"
#include "store/job_records.hpp"

namespace imgspool {

struct Rendered {
    std::string variant;  // Variant::name
    Format format;
    int width = 0;
    int height = 0;
    std::string bytes;  // the encoded file
    int frames = 1;     // an animation kept (WebP, GIF outputs of an animated profile)
};

struct RenderResult {
    std::vector<Rendered> outputs;  // one per (variant, output)
    Placeholders placeholders;      // those the profile asks for (pipeline/placeholder.hpp)
};

// Decodes as few times as possible (shrink-on-load, smaller sizes cut from one shrunk image),
// auto-orients from EXIF, converts to sRGB, strips metadata unless the profile keeps it, keeps
// an animation's frames when the profile is animated (width and height are one frame's), and
// fails (Stage::render) on truncated data, and on corrupt data as strictly as the profile's
// fail_on says (the decoder's message is in the reason).
Result<RenderResult> render(std::string_view source, const SourceInfo& info,
                            const Profile& profile);

// Once per process, before any worker starts: vips_init, cache off, leak checks off.
Status init_vips(const char* argv0);

}  // namespace imgspool
