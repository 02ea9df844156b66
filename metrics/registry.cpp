// Metric values, families and their rendering in the Prometheus text format 0.0.4.
#include "metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace imgspool::metrics {
namespace {

bool valid_name(const std::string& name, bool colon_allowed) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                            (colon_allowed && c == ':');
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) return false;
    }
    return true;
}

// HELP text: \ -> \\, newline -> \n.
std::string escape_help(const std::string& help) {
    std::string out;
    for (const char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void sample_line(std::string& out, const std::string& name, const std::string& labels,
                 const std::string& value) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
    }
    out += ' ';
    out += value;
    out += '\n';
}

void check_bounds(const std::vector<double>& bounds) {
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
            throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
        }
    }
}

}  // namespace

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    const auto result = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, result.ptr);
}

std::string escape_label_value(const std::string& v) {
    std::string out;
    out.reserve(v.size());
    for (const char c : v) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void Counter::inc(double amount) {
    if (!(amount >= 0)) throw std::invalid_argument("a counter can only go up");
    value_.fetch_add(amount);
}

void Counter::render(std::string& out, const std::string& name, const std::string& labels) const {
    sample_line(out, name, labels, format_value(value()));
}

void Gauge::render(std::string& out, const std::string& name, const std::string& labels) const {
    sample_line(out, name, labels, format_value(value()));
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
    check_bounds(bounds_);
}

void Histogram::observe(double v) {
    // The first bucket whose upper bound is >= v; past the last bound is +Inf.
    const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
    std::lock_guard lock(mutex_);
    ++counts_[static_cast<std::size_t>(bucket)];
    sum_ += v;
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.bounds = bounds_;
    std::lock_guard lock(mutex_);
    std::uint64_t running = 0;
    for (const auto n : counts_) {
        running += n;
        s.cumulative.push_back(running);
    }
    s.sum = sum_;
    s.count = running;
    return s;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
    const Snapshot s = snapshot();
    const std::string prefix = labels.empty() ? "" : labels + ",";
    for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
        const std::string le = i < s.bounds.size() ? format_value(s.bounds[i]) : "+Inf";
        sample_line(out, name + "_bucket", prefix + "le=\"" + le + "\"",
                    std::to_string(s.cumulative[i]));
    }
    sample_line(out, name + "_sum", labels, format_value(s.sum));
    sample_line(out, name + "_count", labels, std::to_string(s.count));
}

FamilyBase::FamilyBase(std::string name, std::string help, std::string type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(std::move(type)),
      label_names_(std::move(label_names)) {
    if (!valid_name(name_, true)) throw std::invalid_argument("bad metric name: " + name_);
    for (const auto& label : label_names_) {
        if (!valid_name(label, false) || label.starts_with("__") ||
            (type_ == "histogram" && label == "le")) {
            throw std::invalid_argument("bad label name for " + name_ + ": " + label);
        }
    }
}

void FamilyBase::render(std::string& out, const std::string& const_labels) const {
    out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
    out += "# TYPE " + name_ + " " + type_ + "\n";
    render_children(out, const_labels);
}

void FamilyBase::check_arity(const LabelValues& values) const {
    if (values.size() != label_names_.size()) {
        throw std::invalid_argument(name_ + " takes " + std::to_string(label_names_.size()) +
                                    " label values, got " + std::to_string(values.size()));
    }
}

std::string FamilyBase::label_text(const std::string& const_labels,
                                   const LabelValues& values) const {
    std::string out = const_labels;
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!out.empty()) out += ',';
        out += label_names_[i] + "=\"" + escape_label_value(values[i]) + "\"";
    }
    return out;
}

template <class Metric>
Family<Metric>::Family(std::string name, std::string help, std::string type,
                       std::vector<std::string> label_names,
                       std::function<std::unique_ptr<Metric>()> make)
    : FamilyBase(std::move(name), std::move(help), std::move(type), label_names),
      make_(std::move(make)) {
    // Without labels the single child always exists, so it is exposed as 0 from the start.
    if (label_names.empty()) children_.emplace(LabelValues{}, make_());
}

template <class Metric>
Metric& Family<Metric>::labels(const LabelValues& values) {
    check_arity(values);
    std::lock_guard lock(mutex_);
    auto& child = children_[values];
    if (!child) child = make_();
    return *child;
}

template <class Metric>
void Family<Metric>::render_children(std::string& out, const std::string& const_labels) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, child] : children_) {
        child->render(out, name(), label_text(const_labels, values));
    }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

template <class Metric>
Family<Metric>& Registry::add(std::unique_ptr<Family<Metric>> family) {
    std::lock_guard lock(mutex_);
    for (const auto& existing : families_) {
        if (existing->name() == family->name()) {
            throw std::invalid_argument("metric registered twice: " + family->name());
        }
    }
    check_no_clash(*family);
    auto& ref = *family;
    families_.push_back(std::move(family));
    return ref;
}

Family<Counter>& Registry::counter(std::string name, std::string help,
                                   std::vector<std::string> label_names) {
    return add(std::make_unique<Family<Counter>>(std::move(name), std::move(help), "counter",
                                                 std::move(label_names),
                                                 [] { return std::make_unique<Counter>(); }));
}

Family<Gauge>& Registry::gauge(std::string name, std::string help,
                               std::vector<std::string> label_names) {
    return add(std::make_unique<Family<Gauge>>(std::move(name), std::move(help), "gauge",
                                               std::move(label_names),
                                               [] { return std::make_unique<Gauge>(); }));
}

Family<Histogram>& Registry::histogram(std::string name, std::string help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds) {
    check_bounds(bounds);  // now rather than at the first observation
    return add(std::make_unique<Family<Histogram>>(
        std::move(name), std::move(help), "histogram", std::move(label_names),
        [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); }));
}

void Registry::check_no_clash(const FamilyBase& family) const {
    for (const auto& label : family.label_names()) {
        if (std::find(const_names_.begin(), const_names_.end(), label) != const_names_.end()) {
            throw std::invalid_argument("label " + label + " of " + family.name() +
                                        " is also a constant label");
        }
    }
}

void Registry::set_const_labels(std::vector<std::pair<std::string, std::string>> labels) {
    std::vector<std::string> names;
    std::string text;
    for (const auto& [name, value] : labels) {
        if (!valid_name(name, false) || name.starts_with("__") || name == "le" ||
            std::find(names.begin(), names.end(), name) != names.end()) {
            throw std::invalid_argument("bad constant label name: " + name);
        }
        names.push_back(name);
        if (!text.empty()) text += ',';
        text += name + "=\"" + escape_label_value(value) + "\"";
    }
    std::lock_guard lock(mutex_);
    const_names_.swap(names);
    try {
        for (const auto& family : families_) check_no_clash(*family);
    } catch (...) {
        const_names_.swap(names);  // the labels set before stay
        throw;
    }
    const_text_ = std::move(text);
}

std::string Registry::render() const {
    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& family : families_) family->render(out, const_text_);
    return out;
}

}  // namespace imgspool::metrics
