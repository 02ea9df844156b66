// How long a deferred job waits before its next run: capped exponential backoff with jitter,
// so a store that comes back is not hit by every deferred job in the same second.
#pragma once

#include <chrono>
#include <random>

namespace imgspool {

struct RetrySettings {
    std::chrono::milliseconds first{5000};  // [daemon] retry_min_s
    std::chrono::milliseconds cap{300000};  // [daemon] retry_max_s
};

// The wait after the (deferrals + 1)-th deferral: uniform in [d/2, d] with
// d = min(cap, first * 2^deferrals).
std::chrono::milliseconds retry_delay(int deferrals, const RetrySettings& settings,
                                      std::mt19937_64& rng);

}  // namespace imgspool
