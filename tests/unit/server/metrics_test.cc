#include "server/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "server/server_metrics.h"

namespace tandem::server::metrics {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool Contains(const std::string& text, const std::string& line) {
  for (const std::string& l : Lines(text)) {
    if (l == line) return true;
  }
  return false;
}

bool IsNameChar(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Parses `name{label="value",...} number`; returns the name, or "" when malformed.
// (Hand-written: std::regex trips GCC 12 warnings under the sanitizer build.)
std::string ParseSample(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
  const std::string name = line.substr(0, i);
  if (name.empty()) return "";
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t label_start = i;
      while (i < line.size() && IsNameChar(line[i], i == label_start) && line[i] != ':') ++i;
      if (i == label_start || line.compare(i, 2, "=\"") != 0) return "";
      for (i += 2; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\') ++i;  // an escaped character
      }
      if (i >= line.size()) return "";
      ++i;  // closing quote
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return "";
    ++i;  // closing brace
  }
  if (i >= line.size() || line[i] != ' ') return "";
  const std::string value = line.substr(i + 1);
  if (value == "+Inf" || value == "-Inf" || value == "NaN") return name;
  char* end = nullptr;
  std::strtod(value.c_str(), &end);
  return !value.empty() && *end == '\0' ? name : "";
}

// Checks the structure Prometheus' text parser relies on: every sample line is
// `name{labels} value`, every sample belongs to the family announced by the TYPE line before
// it, families are declared once, and the text ends with a newline.
void ExpectValidExposition(const std::string& text) {
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::map<std::string, std::string> types;
  std::string current;
  for (const std::string& line : Lines(text)) {
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string type;
      words >> current >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_EQ(types.count(current), 0u) << "family declared twice: " << line;
      types[current] = type;
      continue;
    }
    const std::string name = ParseSample(line);
    ASSERT_FALSE(name.empty()) << "bad line: " << line;
    const bool own =
        name == current ||
        (types[current] == "histogram" &&
         (name == current + "_bucket" || name == current + "_sum" || name == current + "_count"));
    EXPECT_TRUE(own) << name << " outside its family " << current;
  }
}

TEST(MetricsTest, ExpositionCheckerRejectsMalformedLines) {
  EXPECT_EQ(ParseSample(R"(x_total{a="1",b="q\"z"} 2)"), "x_total");
  EXPECT_EQ(ParseSample("x +Inf"), "x");
  EXPECT_EQ(ParseSample("x{a=1} 2"), "");
  EXPECT_EQ(ParseSample("x 1 2"), "");
  EXPECT_EQ(ParseSample("x{a=\"1\" 2"), "");
  EXPECT_EQ(ParseSample("1x 2"), "");
}

TEST(MetricsTest, CounterWithLabelsRendersHelpTypeAndValue) {
  Registry registry;
  Counter* a = registry.GetCounter("tandem_test_total", "Test counter", {{"rpc", "A"}});
  Counter* b = registry.GetCounter("tandem_test_total", "Test counter", {{"rpc", "B"}});
  a->Inc();
  a->Inc(2);
  EXPECT_EQ(registry.GetCounter("tandem_test_total", "Test counter", {{"rpc", "A"}}), a);
  const std::string text = registry.Render();
  ExpectValidExposition(text);
  EXPECT_TRUE(Contains(text, "# HELP tandem_test_total Test counter"));
  EXPECT_TRUE(Contains(text, "# TYPE tandem_test_total counter"));
  EXPECT_TRUE(Contains(text, "tandem_test_total{rpc=\"A\"} 3"));
  EXPECT_TRUE(Contains(text, "tandem_test_total{rpc=\"B\"} 0"));
  EXPECT_EQ(b->Value(), 0u);
}

TEST(MetricsTest, GaugesBySetAndByCallback) {
  Registry registry;
  registry.GetGauge("tandem_ratio", "A ratio")->Set(0.25);
  int calls = 0;
  int collected = 0;
  registry.AddCollector([&] { collected = 42; });
  registry.AddCallback("tandem_answer", "From a callback", MetricType::kGauge, [&] {
    ++calls;
    return static_cast<double>(collected);  // the collector ran first
  });
  const std::string text = registry.Render();
  ExpectValidExposition(text);
  EXPECT_TRUE(Contains(text, "# TYPE tandem_ratio gauge"));
  EXPECT_TRUE(Contains(text, "tandem_ratio 0.25"));
  EXPECT_TRUE(Contains(text, "tandem_answer 42"));
  EXPECT_EQ(calls, 1);
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  Histogram* h =
      registry.GetHistogram("tandem_latency_seconds", "Latency", {0.25, 0.5, 1}, {{"rpc", "Get"}});
  h->Observe(0.125);  // first bucket
  h->Observe(0.25);   // exactly on a bound: le is inclusive
  h->Observe(0.75);
  h->Observe(3);  // only +Inf
  const std::string text = registry.Render();
  ExpectValidExposition(text);
  EXPECT_TRUE(Contains(text, "# TYPE tandem_latency_seconds histogram"));
  EXPECT_TRUE(Contains(text, "tandem_latency_seconds_bucket{rpc=\"Get\",le=\"0.25\"} 2"));
  EXPECT_TRUE(Contains(text, "tandem_latency_seconds_bucket{rpc=\"Get\",le=\"0.5\"} 2"));
  EXPECT_TRUE(Contains(text, "tandem_latency_seconds_bucket{rpc=\"Get\",le=\"1\"} 3"));
  EXPECT_TRUE(Contains(text, "tandem_latency_seconds_bucket{rpc=\"Get\",le=\"+Inf\"} 4"));
  EXPECT_TRUE(Contains(text, "tandem_latency_seconds_sum{rpc=\"Get\"} 4.125"));
  EXPECT_TRUE(Contains(text, "tandem_latency_seconds_count{rpc=\"Get\"} 4"));
}

TEST(MetricsTest, LatencyBucketsSpan25MicrosecondsTo5Seconds) {
  const std::vector<double> bounds = LatencyBucketsSeconds();
  ASSERT_FALSE(bounds.empty());
  EXPECT_DOUBLE_EQ(bounds.front(), 25e-6);
  EXPECT_DOUBLE_EQ(bounds.back(), 5.0);
  EXPECT_TRUE(std::is_sorted(bounds.begin(), bounds.end()));
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Registry registry;
  registry.GetCounter("tandem_escaped_total", "Help with \\ and\nnewline", {{"key", "a\"b\\c\nd"}});
  const std::string text = registry.Render();
  ExpectValidExposition(text);
  EXPECT_TRUE(Contains(text, R"(tandem_escaped_total{key="a\"b\\c\nd"} 0)"));
  EXPECT_TRUE(Contains(text, R"(# HELP tandem_escaped_total Help with \\ and\nnewline)"));
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Registry registry;
  Counter* counter = registry.GetCounter("tandem_concurrent_total", "c");
  Histogram* histogram = registry.GetHistogram("tandem_concurrent_seconds", "h", {1.0});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter->Inc();
        histogram->Observe(0.5);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counter->Value(), 40000u);
  EXPECT_EQ(histogram->Read().count, 40000u);
  EXPECT_DOUBLE_EQ(histogram->Read().sum, 20000.0);
}

TEST(RpcMetricsTest, CountsRequestsKeysErrorsAndLatency) {
  Registry registry;
  RpcMetrics rpc(&registry);
  rpc.CountRequest(Rpc::kBatchExistKey, 128);
  rpc.CountRequest(Rpc::kPutStart);
  rpc.CountError(Rpc::kPutStart, ErrorCode::kObjectAlreadyExists);
  rpc.CountError(Rpc::kPutStart, ErrorCode::kObjectAlreadyExists);
  rpc.ObserveLatency(Rpc::kPutStart, 0.0001);
  const std::string text = registry.Render();
  ExpectValidExposition(text);
  EXPECT_TRUE(Contains(text, "tandem_rpc_requests_total{rpc=\"BatchExistKey\"} 1"));
  EXPECT_TRUE(Contains(text, "tandem_rpc_keys_total{rpc=\"BatchExistKey\"} 128"));
  EXPECT_TRUE(Contains(text, "tandem_rpc_requests_total{rpc=\"PutStart\"} 1"));
  EXPECT_TRUE(
      Contains(text, "tandem_rpc_errors_total{rpc=\"PutStart\",code=\"OBJECT_ALREADY_EXISTS\"} 2"));
  EXPECT_TRUE(Contains(text, "tandem_rpc_latency_seconds_count{rpc=\"PutStart\"} 1"));
  EXPECT_TRUE(Contains(text, "tandem_rpc_requests_total{rpc=\"Stream.PutStart\"} 0"));
  // Only codes that happened are listed; unary RPCs have no key counter.
  EXPECT_EQ(text.find("code=\"OBJECT_NOT_FOUND\""), std::string::npos);
  EXPECT_EQ(text.find("tandem_rpc_keys_total{rpc=\"PutStart\"}"), std::string::npos);
}

TEST(RpcMetricsTest, TotalRequestsCountsEveryRpcOncePerRequest) {
  Registry registry;
  RpcMetrics rpc(&registry);
  EXPECT_EQ(rpc.TotalRequests(), 0u);
  rpc.CountRequest(Rpc::kBatchExistKey, 128);  // one request, whatever its key count
  rpc.CountRequest(Rpc::kPutStart);
  rpc.CountRequest(Rpc::kStreamRemove);
  rpc.CountError(Rpc::kPutStart, ErrorCode::kObjectAlreadyExists);  // errors are not requests
  EXPECT_EQ(rpc.TotalRequests(), 3u);
}

}  // namespace
}  // namespace tandem::server::metrics
