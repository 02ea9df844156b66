// BlurHash, as the reference implementation has it: each component (i, j) is the mean of the
// linear-light image times cos(pi i x / width) cos(pi j y / height); the DC (0, 0) is sent as an
// sRGB colour, the AC ones relative to the largest of them, each channel quantised to 19 steps
// after a square-root companding, all in base 83.
#include "pipeline/blurhash.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

namespace imgspool {

namespace {

constexpr std::string_view kBase83 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

void append_base83(std::string& out, int value, int digits) {
    int divisor = 1;
    for (int i = 1; i < digits; ++i) divisor *= 83;
    for (; divisor >= 1; divisor /= 83) out += kBase83[(value / divisor) % 83];
}

double srgb_to_linear(std::uint8_t value) {
    const double v = value / 255.0;
    return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
}

int linear_to_srgb(double value) {
    const double v = std::clamp(value, 0.0, 1.0);
    if (v <= 0.0031308) return static_cast<int>(std::round(v * 12.92 * 255));
    return static_cast<int>(std::round((1.055 * std::pow(v, 1 / 2.4) - 0.055) * 255));
}

double sign_pow(double value, double exponent) {
    return std::copysign(std::pow(std::abs(value), exponent), value);
}

int quantise_ac(double value, double maximum) {
    return std::clamp(static_cast<int>(std::floor(sign_pow(value / maximum, 0.5) * 9 + 9.5)), 0,
                      18);
}

}  // namespace

Result<std::string> blurhash_encode(std::span<const std::uint8_t> rgb, int width, int height,
                                    int x_components, int y_components) {
    if (x_components < 1 || x_components > 9 || y_components < 1 || y_components > 9) {
        return make_error(Stage::render, "BlurHash components must be 1-9 each, got " +
                                             std::to_string(x_components) + "x" +
                                             std::to_string(y_components));
    }
    if (width < 1 || height < 1 ||
        rgb.size() != static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3) {
        return make_error(Stage::render, "BlurHash input is not " + std::to_string(width) + "x" +
                                             std::to_string(height) + " RGB pixels");
    }
    std::vector<double> linear(rgb.size());
    std::transform(rgb.begin(), rgb.end(), linear.begin(), srgb_to_linear);
    // cos(pi i x / width) for every component and column, and likewise for rows.
    auto basis = [](int components, int length) {
        std::vector<double> table(static_cast<std::size_t>(components) * length);
        for (int i = 0; i < components; ++i) {
            for (int p = 0; p < length; ++p) {
                table[static_cast<std::size_t>(i) * length + p] =
                    std::cos(std::numbers::pi * i * p / length);
            }
        }
        return table;
    };
    const std::vector<double> cos_x = basis(x_components, width);
    const std::vector<double> cos_y = basis(y_components, height);

    std::vector<std::array<double, 3>> factors;
    for (int j = 0; j < y_components; ++j) {
        for (int i = 0; i < x_components; ++i) {
            std::array<double, 3> sum{};
            for (int y = 0; y < height; ++y) {
                const double cy = cos_y[static_cast<std::size_t>(j) * height + y];
                for (int x = 0; x < width; ++x) {
                    const double b = cos_x[static_cast<std::size_t>(i) * width + x] * cy;
                    const std::size_t at = (static_cast<std::size_t>(y) * width + x) * 3;
                    for (int c = 0; c < 3; ++c) sum[c] += b * linear[at + c];
                }
            }
            const double scale = (i == 0 && j == 0 ? 1.0 : 2.0) / (width * height);
            for (double& s : sum) s *= scale;
            factors.push_back(sum);
        }
    }

    std::string hash;
    append_base83(hash, (x_components - 1) + (y_components - 1) * 9, 1);
    double maximum = 1;
    if (factors.size() > 1) {
        double largest = 0;
        for (std::size_t k = 1; k < factors.size(); ++k) {
            for (double v : factors[k]) largest = std::max(largest, std::abs(v));
        }
        const int quantised = std::clamp(static_cast<int>(std::floor(largest * 166 - 0.5)), 0, 82);
        maximum = (quantised + 1) / 166.0;
        append_base83(hash, quantised, 1);
    } else {
        append_base83(hash, 0, 1);
    }
    const std::array<double, 3>& dc = factors.front();
    append_base83(
        hash, (linear_to_srgb(dc[0]) << 16) + (linear_to_srgb(dc[1]) << 8) + linear_to_srgb(dc[2]),
        4);
    for (std::size_t k = 1; k < factors.size(); ++k) {
        const std::array<double, 3>& f = factors[k];
        append_base83(hash,
                      quantise_ac(f[0], maximum) * 19 * 19 + quantise_ac(f[1], maximum) * 19 +
                          quantise_ac(f[2], maximum),
                      2);
    }
    return hash;
}

}  // namespace imgspool
