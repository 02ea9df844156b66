// The progress line of `imgspool process`: counts, rate and ETA, redrawn in place on a terminal.
#include "daemon/progress_display.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace imgspool {
namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(100);
constexpr std::size_t kBarWidth = 24;

// "0:08", "12:34", "1:02:03"
std::string clock_text(double seconds) {
    const auto s = static_cast<long long>(std::llround(seconds));
    char buf[32];
    if (s >= 3600) {
        std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    }
    return buf;
}

std::string one_decimal(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

}  // namespace

ProgressDisplay::ProgressDisplay(std::ostream& out, bool tty, std::size_t total, Clock clock)
    : out_(out), tty_(tty), clock_(std::move(clock)), started_(clock_()), total_(total) {}

bool ProgressDisplay::stderr_is_tty() {
    return isatty(STDERR_FILENO) == 1;
}

void ProgressDisplay::set_total(std::size_t total) {
    std::lock_guard lock(mutex_);
    total_ = total;
}

void ProgressDisplay::job_finished(const JobOutcome& outcome) {
    const auto now = clock_();
    std::lock_guard lock(mutex_);
    ++done_;
    if (!outcome.success) ++failed_;
    if (!tty_ || finished_) return;
    if (!drawn_ || now - last_draw_ >= kRedrawEvery || done_ == total_) draw_locked(now);
}

void ProgressDisplay::finish() {
    const auto now = clock_();
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (tty_) {
        draw_locked(now);
        out_ << '\n' << std::flush;
        return;
    }
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    out_ << "processed " << done_ << (done_ == 1 ? " file: " : " files: ") << done_ - failed_
         << " done, " << failed_ << " failed in " << one_decimal(elapsed) << " s ("
         << one_decimal(rate_locked(now)) << " files/s)\n"
         << std::flush;
}

double ProgressDisplay::rate_locked(std::chrono::steady_clock::time_point now) const {
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    return elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
}

void ProgressDisplay::draw_locked(std::chrono::steady_clock::time_point now) {
    std::string line = "\r";
    if (total_ > 0) {
        const std::size_t filled = std::min(kBarWidth, done_ * kBarWidth / total_);
        line += '[' + std::string(filled, '#') + std::string(kBarWidth - filled, '-') + "]  ";
        line += std::to_string(done_) + "/" + std::to_string(total_) + " files";
    } else {
        line += std::to_string(done_) + " files";
    }
    line += "  " + std::to_string(failed_) + " failed";
    const double rate = rate_locked(now);
    line += "  " + one_decimal(rate) + " files/s";
    if (total_ > 0 && done_ < total_) {
        line += "  ETA " + (rate > 0 ? clock_text(static_cast<double>(total_ - done_) / rate)
                                     : std::string("--:--"));
    } else if (total_ > 0) {
        line += "  took " + clock_text(std::chrono::duration<double>(now - started_).count());
    }
    line += "\x1b[K";  // clear what a longer earlier line left behind
    out_ << line << std::flush;
    last_draw_ = now;
    drawn_ = true;
}

}  // namespace imgspool
