// tandem-bench: closed-loop load generator for a Tandem master.
//
//   tandem-bench --master ADDR --threads T --seconds S --batch B --op put|get|exist|mixed|load
//                [--keys N] [--segments K] [--segment-size BYTES] [--value-size BYTES]
//                [--replicas R] [--warmup-s W] [--unary] [--json | --tsv]
//
// Mounts K static segments (names unique per run), preloads N keys for get/exist/mixed, runs T
// threads that each issue one request at a time for W + S seconds and measures the last S.
// One op = one request: a single-key call, or one Batch* call of B keys; a put is the
// PutStart+PutEnd pair. mixed = 80 % get / 20 % put. `load` only puts N keys (batched) and
// reports the rate: with --no-cleanup it leaves them in place (for memory measurements).
// At the end the segments are unmounted, which drops every object of the run.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "client/client.h"
#include "client/size.h"

namespace {

using Clock = std::chrono::steady_clock;

// Log-bucketed latency histogram (HDR-like, ~3 % resolution): 32 linear sub-buckets per power
// of two. Values in nanoseconds.
class Histogram {
 public:
  void Record(uint64_t ns) {
    ++buckets_[Index(ns)];
    ++count_;
    sum_ += ns;
    max_ = std::max(max_, ns);
  }
  void Merge(const Histogram& o) {
    for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
  }
  uint64_t count() const { return count_; }
  double MeanUs() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_ / 1e3; }
  double MaxUs() const { return static_cast<double>(max_) / 1e3; }
  // Midpoint of the bucket holding the q-quantile, in microseconds.
  double QuantileUs(double q) const {
    if (count_ == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(q * count_ + 0.5));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(Midpoint(i), static_cast<double>(max_)) / 1e3;
    }
    return MaxUs();
  }

 private:
  static constexpr size_t kBuckets = 32 + 59 * 32;
  static size_t Index(uint64_t v) {
    if (v < 32) return v;
    const int shift = std::bit_width(v) - 6;  // keeps the top 5 bits below the leading one
    return 32 + shift * 32 + ((v >> shift) - 32);
  }
  static double Midpoint(size_t i) {
    if (i < 32) return static_cast<double>(i);
    const uint64_t shift = (i - 32) / 32, top = 32 + (i - 32) % 32;
    return (static_cast<double>(top) + 0.5) * static_cast<double>(1ull << shift);
  }
  std::vector<uint64_t> buckets_ = std::vector<uint64_t>(kBuckets);
  uint64_t count_ = 0, sum_ = 0, max_ = 0;
};

struct Config {
  std::string master = "127.0.0.1:50051";
  std::string op = "get";
  uint32_t threads = 4, batch = 1, keys = 100000, segments = 4, replicas = 1;
  double seconds = 5, warmup_s = 1;
  std::string segment_size = "1TiB", value_size = "4096";
  uint64_t segment_bytes = 0, value_bytes = 0;
  uint32_t streams = 2, window = 64, timeout_ms = 5000;
  bool unary = false, json = false, tsv = false, no_cleanup = false;
  std::string etcd_endpoints, cluster_id;  // find the leader in etcd (both or neither)
  uint32_t max_retry_ms = 10000;
  double rate = 0;  // target ops/s over all threads (paced); 0: closed loop, as fast as possible
};

// The client options of the run: the master, or the leader found in etcd.
tandem::ClientOptions BenchClientOptions(const Config& cfg) {
  tandem::ClientOptions options;
  options.address = cfg.master;
  options.timeout_ms = cfg.timeout_ms;
  options.max_retry_ms = cfg.max_retry_ms;
  options.cluster_id = cfg.cluster_id;
  for (size_t start = 0; start < cfg.etcd_endpoints.size();) {
    size_t comma = cfg.etcd_endpoints.find(',', start);
    if (comma == std::string::npos) comma = cfg.etcd_endpoints.size();
    if (comma > start)
      options.etcd_endpoints.push_back(cfg.etcd_endpoints.substr(start, comma - start));
    start = comma + 1;
  }
  return options;
}

struct WorkerResult {
  Histogram latency;
  uint64_t ops = 0, keys = 0, errors = 0;
  std::string first_error;
};

// Shared state of one run; threads only read it (apart from their own WorkerResult).
struct Run {
  const Config& cfg;
  tandem::Client& client;
  std::string prefix;                  // unique per run: keys and segment names
  std::atomic<int> phase{0};           // 0 warm-up, 1 measuring, 2 stop
  std::atomic<uint64_t> load_next{0};  // next key index for --op load
};

std::string PreloadKey(const Run& run, uint64_t i) { return run.prefix + "p" + std::to_string(i); }

// Counts `keys` failed keys; returns that count.
uint64_t NoteError(WorkerResult& r, const tandem::Status& s, uint64_t keys) {
  r.errors += keys;
  if (r.first_error.empty()) r.first_error = s.ToString();
  return keys;
}

// Counts the failed items of a batch result; returns how many failed.
template <typename Items>
uint64_t NoteItemErrors(WorkerResult& r, const Items& items) {
  uint64_t failed = 0;
  for (const auto& item : items) {
    if constexpr (std::is_same_v<std::decay_t<decltype(item)>, tandem::Status>) {
      if (!item.ok()) failed += NoteError(r, item, 1);
    } else {
      if (!item.ok()) failed += NoteError(r, item.status(), 1);
    }
  }
  return failed;
}

// Puts `keys` (PutStart + PutEnd, batched when there are several). Returns how many failed.
uint64_t PutKeys(const Run& run, const std::vector<std::string>& keys, WorkerResult& r) {
  const tandem::PutOptions options{run.cfg.replicas, "", false};
  if (keys.size() == 1 && run.cfg.batch <= 1) {
    auto started = run.client.PutStart(keys[0], run.cfg.value_bytes, options);
    tandem::Status s = started.ok() ? run.client.PutEnd(keys[0]) : started.status();
    return s.ok() ? 0 : NoteError(r, s, 1);
  }
  std::vector<tandem::PutItem> items;
  items.reserve(keys.size());
  for (const auto& k : keys) items.push_back({k, run.cfg.value_bytes, options});
  auto started = run.client.BatchPutStart(items);
  if (!started.ok()) return NoteError(r, started.status(), keys.size());
  uint64_t failed = NoteItemErrors(r, started.value());
  std::vector<std::string> to_end;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (started.value()[i].ok()) to_end.push_back(keys[i]);
  }
  auto ended = run.client.BatchPutEnd(to_end);
  if (!ended.ok()) return failed + NoteError(r, ended.status(), to_end.size());
  return failed + NoteItemErrors(r, ended.value());
}

// Reads `keys` (get or exist). Returns how many failed.
uint64_t ReadKeys(const Run& run, bool exist, const std::vector<std::string>& keys,
                  WorkerResult& r) {
  tandem::Client& c = run.client;
  if (keys.size() == 1 && run.cfg.batch <= 1) {
    tandem::Status s = exist ? c.ExistKey(keys[0]).status() : c.GetReplicaList(keys[0]).status();
    return s.ok() ? 0 : NoteError(r, s, 1);
  }
  if (exist) {
    auto res = c.BatchExistKey(keys);
    return res.ok() ? NoteItemErrors(r, res.value()) : NoteError(r, res.status(), keys.size());
  }
  auto res = c.BatchGetReplicaList(keys);
  return res.ok() ? NoteItemErrors(r, res.value()) : NoteError(r, res.status(), keys.size());
}

// One closed-loop worker: issue, wait, record, repeat until the run stops.
void Worker(Run& run, uint32_t tid, WorkerResult& r) {
  const Config& cfg = run.cfg;
  std::mt19937_64 rng(0x9e3779b97f4a7c15ull * (tid + 1));
  std::uniform_int_distribution<uint64_t> pick(0, std::max<uint64_t>(cfg.keys, 1) - 1);
  const size_t batch = std::max<uint32_t>(cfg.batch, 1);
  std::vector<std::string> keys(batch);
  uint64_t put_seq = 0;
  // --rate: each thread starts an op every threads/rate seconds (skipping slots it missed, so a
  // slow phase does not turn into a burst).
  const auto interval = cfg.rate > 0 ? std::chrono::nanoseconds(static_cast<int64_t>(
                                           1e9 * static_cast<double>(cfg.threads) / cfg.rate))
                                     : std::chrono::nanoseconds(0);
  auto next_slot = Clock::now();
  int phase;
  while ((phase = run.phase.load(std::memory_order_relaxed)) < 2) {
    if (interval.count() > 0) {
      const auto now = Clock::now();
      if (next_slot > now) std::this_thread::sleep_until(next_slot);
      next_slot = std::max(next_slot + interval, now);
    }
    bool put = cfg.op == "put" || (cfg.op == "mixed" && rng() % 5 == 0);
    for (auto& k : keys) {
      k = put ? run.prefix + "t" + std::to_string(tid) + "-" + std::to_string(put_seq++)
              : PreloadKey(run, pick(rng));
    }
    const auto start = Clock::now();
    if (put) {
      PutKeys(run, keys, r);
    } else {
      ReadKeys(run, cfg.op == "exist", keys, r);
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
    if (phase == 1 && run.phase.load(std::memory_order_relaxed) == 1) {
      r.latency.Record(static_cast<uint64_t>(ns.count()));
      ++r.ops;
      r.keys += batch;
    } else if (phase == 0) {
      r.errors = 0;  // warm-up errors (e.g. connection set-up) do not count
      r.first_error.clear();
    }
  }
}

// Puts keys [0, N) named PreloadKey(i) from T threads, batch-sized chunks; timed like a run.
void LoadWorker(Run& run, WorkerResult& r) {
  const uint64_t chunk = std::max<uint32_t>(run.cfg.batch, 1);
  std::vector<std::string> keys;
  for (;;) {
    const uint64_t begin = run.load_next.fetch_add(chunk);
    if (begin >= run.cfg.keys) return;
    const uint64_t end = std::min<uint64_t>(begin + chunk, run.cfg.keys);
    keys.clear();
    for (uint64_t i = begin; i < end; ++i) keys.push_back(PreloadKey(run, i));
    const auto start = Clock::now();
    PutKeys(run, keys, r);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
    r.latency.Record(static_cast<uint64_t>(ns.count()));
    ++r.ops;
    r.keys += keys.size();
  }
}

// Runs `fn(tid, result)` on T threads; returns the merged result.
template <typename Fn>
WorkerResult RunThreads(uint32_t threads, Fn fn) {
  std::vector<WorkerResult> results(threads);
  std::vector<std::thread> pool;
  for (uint32_t t = 0; t < threads; ++t) pool.emplace_back([&, t] { fn(t, results[t]); });
  for (auto& th : pool) th.join();
  WorkerResult total;
  for (auto& r : results) {
    total.latency.Merge(r.latency);
    total.ops += r.ops;
    total.keys += r.keys;
    total.errors += r.errors;
    if (total.first_error.empty()) total.first_error = r.first_error;
  }
  return total;
}

double Preload(Run& run) {
  Config quiet = run.cfg;
  quiet.batch = std::max<uint32_t>(run.cfg.batch, 128);  // always batched: it is set-up
  Run load{quiet, run.client, run.prefix};
  const auto start = Clock::now();
  WorkerResult r =
      RunThreads(run.cfg.threads, [&](uint32_t, WorkerResult& res) { LoadWorker(load, res); });
  if (r.errors > 0)
    std::cerr << "tandem-bench: preload: " << r.errors << " errors, first: " << r.first_error
              << "\n";
  return std::chrono::duration<double>(Clock::now() - start).count();
}

WorkerResult Measure(Run& run, double* elapsed_s) {
  std::thread timer([&] {
    std::this_thread::sleep_for(std::chrono::duration<double>(run.cfg.warmup_s));
    run.phase = 1;
    const auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(run.cfg.seconds));
    run.phase = 2;
    *elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  });
  WorkerResult r =
      RunThreads(run.cfg.threads, [&](uint32_t t, WorkerResult& res) { Worker(run, t, res); });
  timer.join();
  return r;
}

void Report(const Config& cfg, const WorkerResult& r, double elapsed_s) {
  const double ops_s = elapsed_s > 0 ? r.ops / elapsed_s : 0;
  const double keys_s = elapsed_s > 0 ? r.keys / elapsed_s : 0;
  const double p50 = r.latency.QuantileUs(0.5), p99 = r.latency.QuantileUs(0.99),
               p999 = r.latency.QuantileUs(0.999);
  if (cfg.tsv) {
    std::printf("%s\t%u\t%u\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%llu\n", cfg.op.c_str(), cfg.batch,
                cfg.threads, ops_s, keys_s, p50, p99, p999,
                static_cast<unsigned long long>(r.errors));
    return;
  }
  if (cfg.json) {
    nlohmann::json j = {{"op", cfg.op},
                        {"batch", cfg.batch},
                        {"threads", cfg.threads},
                        {"seconds", elapsed_s},
                        {"keys", cfg.keys},
                        {"segments", cfg.segments},
                        {"segment_size", cfg.segment_bytes},
                        {"value_size", cfg.value_bytes},
                        {"replicas", cfg.replicas},
                        {"unary", cfg.unary},
                        {"streams", cfg.streams},
                        {"window", cfg.window},
                        {"ops", r.ops},
                        {"ops_per_sec", ops_s},
                        {"keys_per_sec", keys_s},
                        {"p50_us", p50},
                        {"p99_us", p99},
                        {"p999_us", p999},
                        {"mean_us", r.latency.MeanUs()},
                        {"max_us", r.latency.MaxUs()},
                        {"errors", r.errors},
                        {"first_error", r.first_error}};
    std::cout << j.dump() << "\n";
    return;
  }
  std::printf("op=%s batch=%u threads=%u %s: %.2f s, %llu ops\n", cfg.op.c_str(), cfg.batch,
              cfg.threads, cfg.unary ? "unary" : "streams", elapsed_s,
              static_cast<unsigned long long>(r.ops));
  std::printf("  ops/s %.0f  keys/s %.0f\n", ops_s, keys_s);
  std::printf("  latency us: p50 %.1f  p99 %.1f  p999 %.1f  mean %.1f  max %.1f\n", p50, p99, p999,
              r.latency.MeanUs(), r.latency.MaxUs());
  std::printf("  errors %llu%s%s\n", static_cast<unsigned long long>(r.errors),
              r.first_error.empty() ? "" : "  first: ", r.first_error.c_str());
}

// Mounts the run's static segments; returns false (after printing why) on failure.
bool MountSegments(const Config& cfg, const std::string& prefix, tandem::Client& admin) {
  for (uint32_t i = 0; i < cfg.segments; ++i) {
    tandem::Segment seg{"", prefix + "seg" + std::to_string(i), (uint64_t{i} + 1) << 44,
                        cfg.segment_bytes, "bench:" + std::to_string(i)};
    if (tandem::Status s = admin.MountSegment(seg); !s.ok()) {
      std::cerr << "tandem-bench: mount " << seg.name << ": " << s.ToString() << "\n";
      return false;
    }
  }
  return true;
}

void UnmountSegments(const Config& cfg, const std::string& prefix, tandem::Client& admin) {
  for (uint32_t i = 0; i < cfg.segments; ++i) {
    tandem::Status s = admin.UnmountSegment(prefix + "seg" + std::to_string(i));
    if (!s.ok()) std::cerr << "tandem-bench: unmount: " << s.ToString() << "\n";
  }
}

int ParseArgs(int argc, char** argv, Config& cfg) {
  CLI::App app{"tandem-bench: closed-loop load generator for a Tandem master"};
  app.add_option("--master", cfg.master)->capture_default_str();
  app.add_option("--op", cfg.op)
      ->check(CLI::IsMember({"put", "get", "exist", "mixed", "load"}))
      ->capture_default_str();
  app.add_option("--threads", cfg.threads)->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--seconds", cfg.seconds)->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  app.add_option("--warmup-s", cfg.warmup_s)->check(CLI::Range(0.0, 600.0))->capture_default_str();
  app.add_option("--batch", cfg.batch)->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--keys", cfg.keys, "preloaded keys (load: keys to put)")->capture_default_str();
  app.add_option("--segments", cfg.segments)->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--segment-size", cfg.segment_size)->capture_default_str();
  app.add_option("--value-size", cfg.value_size)->capture_default_str();
  app.add_option("--replicas", cfg.replicas)->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--streams", cfg.streams, "client streams")->capture_default_str();
  app.add_option("--window", cfg.window, "in-flight per stream")->capture_default_str();
  app.add_option("--timeout-ms", cfg.timeout_ms)->capture_default_str();
  app.add_flag("--unary", cfg.unary, "single-key ops as unary calls (default: pipelined)");
  app.add_flag("--json", cfg.json, "print one JSON object");
  app.add_flag("--tsv", cfg.tsv, "print op batch threads ops/s keys/s p50 p99 p999 errors");
  app.add_flag("--no-cleanup", cfg.no_cleanup, "leave segments and objects in place");
  app.add_option("--etcd-endpoints", cfg.etcd_endpoints, "etcd host:port list: follow the leader");
  app.add_option("--cluster-id", cfg.cluster_id, "cluster id in etcd");
  app.add_option("--rate", cfg.rate, "paced load: target ops/s over all threads (0: closed loop)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--max-retry-ms", cfg.max_retry_ms, "client retry budget per call (0: none)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto seg = tandem::ParseSize(cfg.segment_size);
  auto val = tandem::ParseSize(cfg.value_size);
  if (!seg.ok() || !val.ok()) {
    std::cerr << "tandem-bench: " << (seg.ok() ? val.status() : seg.status()).message() << "\n";
    return 2;
  }
  cfg.segment_bytes = seg.value();
  cfg.value_bytes = val.value();
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  if (int rc = ParseArgs(argc, argv, cfg); rc >= 0) return rc;
  const uint64_t run_id = (static_cast<uint64_t>(getpid()) << 20) ^
                          static_cast<uint64_t>(Clock::now().time_since_epoch().count() & 0xfffff);
  const std::string prefix = "b" + std::to_string(run_id % 1000000) + "-";

  tandem::ClientOptions admin_opts = BenchClientOptions(cfg);
  admin_opts.stream_count = 1;
  admin_opts.use_streams = false;
  tandem::Client admin(admin_opts);  // static segments: no owner, never expire
  if (tandem::Status s = admin.StartupStatus(); !s.ok()) {
    std::cerr << "tandem-bench: " << s.ToString() << "\n";
    return s.code() == tandem::ErrorCode::kUnavailable ? 3 : 2;
  }
  if (!MountSegments(cfg, prefix, admin)) return 3;
  tandem::ClientOptions opts = BenchClientOptions(cfg);
  opts.stream_count = cfg.streams;
  opts.stream_window = cfg.window;
  opts.use_streams = !cfg.unary;
  opts.client_id = prefix + "writer";
  tandem::Client client(opts);
  Run run{cfg, client, prefix};

  double elapsed = 0;
  WorkerResult result;
  if (cfg.op == "load") {
    const auto start = Clock::now();
    result = RunThreads(cfg.threads, [&](uint32_t, WorkerResult& r) { LoadWorker(run, r); });
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } else {
    if (cfg.op != "put") {
      const double s = Preload(run);
      if (!cfg.json && !cfg.tsv) std::printf("preloaded %u keys in %.2f s\n", cfg.keys, s);
    }
    result = Measure(run, &elapsed);
  }
  Report(cfg, result, elapsed);
  if (const tandem::ClientStats stats = client.Stats(); stats.retries > 0) {
    std::fprintf(stderr, "client retries %llu, redirects %llu, reconnects %llu\n",
                 static_cast<unsigned long long>(stats.retries),
                 static_cast<unsigned long long>(stats.redirects),
                 static_cast<unsigned long long>(stats.reconnects));
  }
  if (!cfg.no_cleanup) UnmountSegments(cfg, prefix, admin);
  return 0;
}
