// A small thread-safe metrics registry (counters, gauges, histograms with labels) rendered in the
// Prometheus text exposition format 0.0.4.
//
// Each metric family has fixed label names; label values are given when a child is looked up:
//   auto& jobs = registry.counter("jobs_total", "Jobs finished.", {"spool"});
//   jobs.labels({"photos"}).inc();
// Children live as long as the registry, so a reference from labels() may be kept and used from
// any thread. Constant labels (set_const_labels, e.g. node="a") go first in every sample. Family
// lookups take the family's mutex; counter and gauge updates are atomic. Misuse (a bad or duplicate
// name, the wrong number of label values) is a programming error and throws std::invalid_argument.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace imgspool::metrics {

using LabelValues = std::vector<std::string>;

class Counter {
  public:
    void inc(double amount = 1.0);  // amount must be >= 0
    // For totals counted elsewhere (e.g. a watcher's overflow count); must never go down.
    void set(double total) { value_.store(total); }
    double value() const { return value_.load(); }
    void render(std::string& out, const std::string& name, const std::string& labels) const;

  private:
    std::atomic<double> value_{0};
};

class Gauge {
  public:
    void set(double v) { value_.store(v); }
    void add(double delta) { value_.fetch_add(delta); }
    double value() const { return value_.load(); }
    void render(std::string& out, const std::string& name, const std::string& labels) const;

  private:
    std::atomic<double> value_{0};
};

class Histogram {
  public:
    // Upper bounds, strictly increasing; the +Inf bucket is implicit.
    explicit Histogram(std::vector<double> bounds);
    void observe(double v);

    struct Snapshot {
        std::vector<double> bounds;
        std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
        double sum = 0;
        std::uint64_t count = 0;
    };
    Snapshot snapshot() const;
    void render(std::string& out, const std::string& name, const std::string& labels) const;

  private:
    const std::vector<double> bounds_;
    mutable std::mutex mutex_;
    std::vector<std::uint64_t> counts_;  // per bucket (not cumulative), last is +Inf
    double sum_ = 0;
};

// The HELP/TYPE header and the children of one metric name.
class FamilyBase {
  public:
    FamilyBase(std::string name, std::string help, std::string type,
               std::vector<std::string> label_names);
    virtual ~FamilyBase() = default;
    const std::string& name() const { return name_; }
    const std::vector<std::string>& label_names() const { return label_names_; }
    // const_labels: rendered label pairs put first in every sample ("" for none).
    void render(std::string& out, const std::string& const_labels) const;

  protected:
    virtual void render_children(std::string& out, const std::string& const_labels) const = 0;
    void check_arity(const LabelValues& values) const;
    // const_labels then a="x",b="y"
    std::string label_text(const std::string& const_labels, const LabelValues& values) const;

  private:
    std::string name_;
    std::string help_;
    std::string type_;
    std::vector<std::string> label_names_;
};

template <class Metric>
class Family final : public FamilyBase {
  public:
    Family(std::string name, std::string help, std::string type,
           std::vector<std::string> label_names, std::function<std::unique_ptr<Metric>()> make);

    // The child for these label values (one per label name), created on first use.
    Metric& labels(const LabelValues& values);
    // The only child of a family without labels.
    Metric& get() { return labels({}); }

  private:
    void render_children(std::string& out, const std::string& const_labels) const override;

    std::function<std::unique_ptr<Metric>()> make_;
    mutable std::mutex mutex_;
    std::map<LabelValues, std::unique_ptr<Metric>> children_;
};

class Registry {
  public:
    Family<Counter>& counter(std::string name, std::string help,
                             std::vector<std::string> label_names = {});
    Family<Gauge>& gauge(std::string name, std::string help,
                         std::vector<std::string> label_names = {});
    Family<Histogram>& histogram(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> bounds);

    // Labels that every sample of every family carries, in this order and before the family's
    // own (e.g. {{"node", "a"}}: one daemon among several scraped into one Prometheus). Replaces
    // those set before. A name that is invalid, repeated, or also a label of a family (before
    // or after this call) is misuse.
    void set_const_labels(std::vector<std::pair<std::string, std::string>> labels);

    // All families in registration order; children sorted by label values.
    std::string render() const;

  private:
    template <class Metric>
    Family<Metric>& add(std::unique_ptr<Family<Metric>> family);
    // Under mutex_: throws when the family uses a constant label's name.
    void check_no_clash(const FamilyBase& family) const;

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<FamilyBase>> families_;
    std::vector<std::string> const_names_;
    std::string const_text_;  // node="a",... rendered once
};

// Prometheus spellings: "+Inf", "-Inf", "NaN", otherwise the shortest exact decimal.
std::string format_value(double v);
// Label values: \ -> \\, " -> \", newline -> \n.
std::string escape_label_value(const std::string& v);

}  // namespace imgspool::metrics
