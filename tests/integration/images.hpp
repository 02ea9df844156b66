// Test images made with libvips, and output files read back with libvips.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

namespace imgspool::it {

struct ImageSpec {
    int width = 640;
    int height = 480;
    unsigned seed = 1;    // different seeds give different pixels (and so different hashes)
    double noise = 12.0;  // sigma of the noise over a gradient; higher = larger JPEGs
};

// A JPEG with an EXIF block (orientation `orientation`, plus an image description), so tests
// can prove the outputs are stripped.
std::string make_jpeg(const ImageSpec& spec, int quality = 90, int orientation = 1);
std::string make_png(const ImageSpec& spec);

// A w x h PNG of one opaque sRGB colour (a watermark overlay).
std::string make_solid_png(int width, int height, const std::array<double, 3>& rgb);

// A valid 1x1 GIF (smaller than any size imgspool takes).
std::string gif_bytes();

// "jpeg", "png", "webp", "gif" or "unknown", from the first bytes only.
std::string magic_format(std::string_view bytes);

// What libvips reads back from a file.
struct ReadBack {
    bool ok = false;
    std::string error;  // when !ok
    int width = 0;
    int height = 0;
    int orientation = 1;
    bool has_exif = false;
    bool has_xmp = false;
};
// How strict a decode is: `warning` fails on any decoder warning (corrupt data included),
// `truncated` only on data that ends early.
enum class Strictness { warning, truncated };
// Decodes the whole image (so truncated data fails) and reports its header facts.
ReadBack read_image(const std::filesystem::path& path);
ReadBack read_image_buffer(const std::string& bytes, Strictness strictness = Strictness::warning);
// The first three bands of the pixel at (x, y) of an image file; throws when it cannot be read.
std::array<double, 3> read_pixel(const std::filesystem::path& path, int x, int y);

}  // namespace imgspool::it
