// Owners for libvips handles, and turning libvips' error buffer into an Error.
// Private to the imaging code; nothing outside pipeline/ includes it.
#pragma once

#include <vips/vips.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace imgspool {

struct GObjectUnref {
    void operator()(void* object) const { g_object_unref(object); }
};
struct GFree {
    void operator()(void* memory) const { g_free(memory); }
};

struct VipsAreaUnref {
    void operator()(VipsArea* area) const { vips_area_unref(area); }
};

using VipsImagePtr = std::unique_ptr<VipsImage, GObjectUnref>;
using GBuffer = std::unique_ptr<void, GFree>;
using VipsArrayDoublePtr = std::unique_ptr<VipsArea, VipsAreaUnref>;

// The image an operation wrote into `out`; null when the operation failed.
inline VipsImagePtr own(VipsImage* image) {
    return VipsImagePtr(image);
}

// A second owner of the same image (libvips images are immutable once built).
inline VipsImagePtr share(VipsImage* image) {
    g_object_ref(image);
    return VipsImagePtr(image);
}

// "<what>: <libvips' message>", and libvips' error buffer cleared. The buffer is
// process-wide: under concurrent failures a message may carry another thread's text too.
inline Error vips_failure(Stage stage, std::string_view what) {
    std::unique_ptr<char, GFree> text(vips_error_buffer_copy());
    std::string detail = text ? text.get() : "";
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    for (char& c : detail) {
        if (c == '\n') c = ' ';
    }
    std::string reason(what);
    if (!detail.empty()) reason += ": " + detail;
    return make_error(stage, std::move(reason));
}

}  // namespace imgspool
