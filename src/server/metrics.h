// A small thread-safe metrics registry rendered in the Prometheus text format (version 0.0.4).
//
// Hot path: Counter, Gauge and Histogram are updated with relaxed atomics through pointers
// obtained once (at setup, or on first use and cached by the caller); only creating a series
// and rendering take the registry's mutex. Series live as long as the registry, so the
// pointers stay valid.
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

namespace tandem::server::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { kCounter, kGauge, kHistogram };

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Fixed upper bounds (ascending; +Inf is implicit). An observation increments one bucket;
// cumulative counts are computed when read.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, last is +Inf
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds: 25 us .. 5 s, roughly 1-2.5-5 steps.
std::vector<double> LatencyBucketsSeconds();

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each returns the series of `name` with exactly `labels`, creating it (and the family, with
  // `help`) on first use. Asking for an existing name with another type is a programming error
  // (aborts). Takes the registry mutex: keep the pointer instead of calling per request.
  Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge* GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram* GetHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& upper_bounds, const Labels& labels = {});
  // A counter or gauge whose value is read from `read` at render time.
  void AddCallback(const std::string& name, const std::string& help, MetricType type,
                   std::function<double()> read, const Labels& labels = {});
  // Runs before each render, before any callback: e.g. takes one snapshot that several
  // callbacks then read, so a scrape is consistent and the source is queried once.
  void AddCollector(std::function<void()> collect);

  // The whole registry in text format. Families sorted by name, series by labels.
  std::string Render() const;

 private:
  struct Series;
  struct Family;
  Series* GetSeries(const std::string& name, const std::string& help, MetricType type,
                    const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;
  std::vector<std::function<void()>> collectors_;
};

}  // namespace tandem::server::metrics
