// Progress of `imgspool process` for the person watching it.
//
// On a terminal (tty = true) one line is redrawn in place with \r, at most ~10 times a second:
//   [##########--------------]  45/120 files  2 failed  9.8 files/s  ETA 0:08
// Not on a terminal, nothing is printed while jobs run (the CLI already prints one JSON line per
// file on stdout); finish() prints one summary line:
//   processed 120 files: 118 done, 2 failed in 12.3 s (9.8 files/s)
// Meant for stderr, so stdout stays machine-readable.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <ostream>

#include "pipeline/job.hpp"

namespace imgspool {

class ProgressDisplay final : public JobObserver {
  public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;

    // total: files in the batch (0 = not known yet; no bar or ETA until set_total()).
    ProgressDisplay(std::ostream& out, bool tty, std::size_t total,
                    Clock clock = &std::chrono::steady_clock::now);

    // On std::cerr, drawing in place only when stderr is a terminal (isatty).
    static bool stderr_is_tty();

    void set_total(std::size_t total);
    // Thread-safe; called by the pipeline's workers.
    void job_finished(const JobOutcome& outcome) override;
    // Draws the last state and ends the line (tty) or prints the summary line. Idempotent.
    void finish();

  private:
    void draw_locked(std::chrono::steady_clock::time_point now);
    double rate_locked(std::chrono::steady_clock::time_point now) const;

    std::ostream& out_;
    const bool tty_;
    const Clock clock_;
    const std::chrono::steady_clock::time_point started_;

    std::mutex mutex_;
    std::size_t total_;
    std::size_t done_ = 0;
    std::size_t failed_ = 0;
    std::chrono::steady_clock::time_point last_draw_{};
    bool drawn_ = false;
    bool finished_ = false;
};

}  // namespace imgspool
