// Synthetic test images made with libvips, and helpers to read rendered bytes back.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "pipeline/profile.hpp"
#include "pipeline/render.hpp"
#include "pipeline/vips_handles.hpp"

namespace imgspool::test {

using Rgb = std::array<double, 3>;

// Upright quadrants: top-left red, top-right green, bottom-left blue, bottom-right white.
// Any flip or rotation moves at least one colour, so orientation can be read back.
inline constexpr Rgb kRed{255, 0, 0};
inline constexpr Rgb kGreen{0, 255, 0};
inline constexpr Rgb kBlue{0, 0, 255};
inline constexpr Rgb kWhite{255, 255, 255};

// An upright w x h quadrant image stored the way a camera with EXIF orientation `orientation`
// would store it (so a viewer applying the tag shows it upright), as a JPEG carrying the tag.
std::string oriented_quadrants_jpeg(int w, int h, int orientation);

// w x h quadrants, optionally with an alpha band that is 0 on the left half, 255 on the right.
VipsImagePtr quadrants(int w, int h, bool alpha = false);

// w x h of one colour: 1 band (grey), 3 (sRGB) or 4 (sRGB with alpha) values.
VipsImagePtr solid(int w, int h, const std::vector<unsigned char>& colour);

// Gaussian noise: compresses badly, so truncating the file cuts real image data.
VipsImagePtr noise(int w, int h);

// `frames` frames of w x h stacked as libvips holds an animation (page-height, a 100 ms delay
// each, loop 0): frame i is filled with colours()[i % 3], red, green, blue.
VipsImagePtr animation(int w, int h, int frames);
inline constexpr std::array<Rgb, 3> kFrameColours{kRed, kGreen, kBlue};

// w x h of a dull grey-green background with one saturated, skin-toned disc of radius r
// centred at (cx, cy): what libvips' attention crop looks for.
VipsImagePtr subject_at(int w, int h, int cx, int cy, int r);

// A HEIC as an iPhone writes one: the upright w x h quadrants stored turned, with the turn in
// the HEIF's own transform boxes (irot/imir) and the matching EXIF orientation tag as well.
std::string oriented_quadrants_heic(int w, int h, int orientation);

// Encodes with the defaults of the format's saver (metadata kept); GIF and WebP keep the
// frames of an animation.
std::string save(VipsImage* image, Format format);

// validate_source with the default limits; fails the current test if the source is refused.
SourceInfo validated(const std::string& bytes);

// The outputs render() makes of a validated source that the profile's frame limits accept;
// fails the current test (and returns none) otherwise.
std::vector<Rendered> rendered(const std::string& bytes, const Profile& profile);

// Decodes bytes; fails the current test (and returns null) if they do not decode.
VipsImagePtr load(const std::string& bytes);

// The first three bands at (x, y), or the single grey band repeated.
Rgb pixel(VipsImage* image, int x, int y);

// Each channel within `tolerance` of `expected`.
bool near(const Rgb& actual, const Rgb& expected, double tolerance = 40);

}  // namespace imgspool::test
