#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace tandem::server::metrics {
namespace {

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (error != std::errc()) return "NaN";
  return std::string(buffer, end);
}

void AppendEscaped(std::string* out, const std::string& text, bool escape_quotes) {
  for (char c : text) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '"' && escape_quotes) {
      *out += "\\\"";
    } else {
      *out += c;
    }
  }
}

// `{a="x",b="y"}` plus an optional trailing le label; empty when there are no labels at all.
std::string FormatLabels(const Labels& labels, const std::string* le = nullptr) {
  if (labels.empty() && le == nullptr) return "";
  std::string out = "{";
  for (const auto& [key, value] : labels) {
    if (out.size() > 1) out += ',';
    out += key;
    out += "=\"";
    AppendEscaped(&out, value, /*escape_quotes=*/true);
    out += '"';
  }
  if (le != nullptr) {
    if (out.size() > 1) out += ',';
    out += "le=\"" + *le + "\"";
  }
  out += '}';
  return out;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // le semantics: the first bucket whose upper bound is >= value.
  const size_t index = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative[i] = running;
  }
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

std::vector<double> LatencyBucketsSeconds() {
  return {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
          25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0};
}

struct Registry::Series {
  Labels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> callback;

  void Render(const std::string& name, std::string* out) const;
};

struct Registry::Family {
  std::string help;
  MetricType type;
  std::map<std::string, std::unique_ptr<Series>> series;  // by formatted labels
};

void Registry::Series::Render(const std::string& name, std::string* out) const {
  const std::string label_text = FormatLabels(labels);
  if (histogram == nullptr) {
    std::string value;
    if (callback) {
      value = FormatDouble(callback());
    } else if (counter != nullptr) {
      value = std::to_string(counter->Value());
    } else {
      value = FormatDouble(gauge->Value());
    }
    *out += name + label_text + ' ' + value + '\n';
    return;
  }
  const Histogram::Snapshot snapshot = histogram->Read();
  const std::vector<double>& bounds = histogram->upper_bounds();
  for (size_t i = 0; i <= bounds.size(); ++i) {
    const std::string le = i < bounds.size() ? FormatDouble(bounds[i]) : "+Inf";
    *out += name + "_bucket" + FormatLabels(labels, &le) + ' ' +
            std::to_string(snapshot.cumulative[i]) + '\n';
  }
  *out += name + "_sum" + label_text + ' ' + FormatDouble(snapshot.sum) + '\n';
  *out += name + "_count" + label_text + ' ' + std::to_string(snapshot.count) + '\n';
}

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Series* Registry::GetSeries(const std::string& name, const std::string& help,
                                      MetricType type, const Labels& labels) {
  // Caller holds mu_.
  std::unique_ptr<Family>& family = families_[name];
  if (family == nullptr) {
    family = std::make_unique<Family>();
    family->help = help;
    family->type = type;
  }
  if (family->type != type) std::abort();  // one name, one type: a programming error
  std::unique_ptr<Series>& series = family->series[FormatLabels(labels)];
  if (series == nullptr) {
    series = std::make_unique<Series>();
    series->labels = labels;
  }
  return series.get();
}

Counter* Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series* series = GetSeries(name, help, MetricType::kCounter, labels);
  if (series->counter == nullptr && !series->callback)
    series->counter = std::make_unique<Counter>();
  if (series->counter == nullptr) std::abort();  // already a callback series
  return series->counter.get();
}

Gauge* Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series* series = GetSeries(name, help, MetricType::kGauge, labels);
  if (series->gauge == nullptr && !series->callback) series->gauge = std::make_unique<Gauge>();
  if (series->gauge == nullptr) std::abort();
  return series->gauge.get();
}

Histogram* Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const std::vector<double>& upper_bounds, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series* series = GetSeries(name, help, MetricType::kHistogram, labels);
  if (series->histogram == nullptr) series->histogram = std::make_unique<Histogram>(upper_bounds);
  return series->histogram.get();
}

void Registry::AddCallback(const std::string& name, const std::string& help, MetricType type,
                           std::function<double()> read, const Labels& labels) {
  if (type == MetricType::kHistogram) std::abort();
  std::lock_guard<std::mutex> lock(mu_);
  Series* series = GetSeries(name, help, type, labels);
  if (series->counter != nullptr || series->gauge != nullptr) std::abort();
  series->callback = std::move(read);
}

void Registry::AddCollector(std::function<void()> collect) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& collect : collectors_) collect();
  std::string out;
  for (const auto& [name, family] : families_) {
    out += "# HELP " + name + ' ';
    AppendEscaped(&out, family->help, /*escape_quotes=*/false);
    out += "\n# TYPE " + name + ' ' + TypeName(family->type) + '\n';
    for (const auto& [label_text, series] : family->series) series->Render(name, &out);
  }
  return out;
}

}  // namespace tandem::server::metrics
