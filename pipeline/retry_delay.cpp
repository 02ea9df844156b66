#include "pipeline/retry_delay.hpp"

#include <algorithm>

namespace imgspool {

std::chrono::milliseconds retry_delay(int deferrals, const RetrySettings& settings,
                                      std::mt19937_64& rng) {
    const auto cap = std::max(settings.cap, settings.first);
    auto d = settings.first;
    for (int i = 0; i < deferrals && d < cap; ++i) d *= 2;
    d = std::min(d, cap);
    std::uniform_int_distribution<long long> pick(d.count() / 2, d.count());
    return std::chrono::milliseconds(pick(rng));
}

}  // namespace imgspool
