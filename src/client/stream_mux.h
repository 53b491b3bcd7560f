// StreamMux: multiplexes concurrent single-key calls over a few long-lived `Master.Stream` bidi
// streams, with a bounded window of in-flight requests per stream. Internal to the client.
//
// Why: on a small machine a unary gRPC call costs ~50 us of server CPU plus as much on the
// client; one message on an open stream costs 15-25 us, so pipelining gives 4-5x the throughput
// (STACK.md). A window of ~64 per stream is where throughput stops growing and only latency does.
//
// Design (why the callback API and not a sync stream with a reader thread): each stream is a
// grpc::ClientBidiReactor. It needs no thread of its own (a reader thread per stream would add
// threads and context switches on a 2-core box), a response wakes its caller straight from the
// gRPC thread that read it, and on an idle stream the caller starts its own write (no hand-off
// to a writer thread). Callers never touch gRPC directly:
// - a caller takes a window slot on one stream (round robin; it blocks while the window is full,
//   bounded by its deadline), registers {id -> its PendingCall} and queues the request;
// - the reactor writes queued requests one at a time (gRPC allows one outstanding write) and
//   keeps one read outstanding; a response completes the call with the same id, in any order;
// - when the stream breaks, every registered call fails with UNAVAILABLE (with gRPC's message)
//   and the next caller on that slot opens a fresh stream.
// Thread-safe. The destructor cancels the streams and waits for gRPC to finish them; no call may
// be in progress then.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "tandem/v1/master.grpc.pb.h"

namespace tandem::client_internal {

class StreamConn;

class StreamMux {
 public:
  using Clock = std::chrono::steady_clock;

  // One stream per channel (give each its own connection to spread the work over them).
  StreamMux(const std::vector<std::shared_ptr<grpc::Channel>>& channels, uint32_t window);
  ~StreamMux();
  StreamMux(const StreamMux&) = delete;
  StreamMux& operator=(const StreamMux&) = delete;

  // Sends `request` (its id is assigned here) and waits for the response until `deadline`.
  // Transport failures and timeouts are kUnavailable.
  StatusOr<v1::StreamResponse> Call(v1::StreamRequest request, Clock::time_point deadline);

 private:
  struct Slot {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Master::Stub> stub;
    std::mutex mu;
    std::condition_variable window_free;
    uint32_t in_flight = 0;  // callers holding a window slot
    // The mux owns every stream until gRPC has finished it (OnDone), and destroys it on a caller's
    // or the destructor's thread, never on a gRPC thread (see StreamConn).
    std::shared_ptr<StreamConn> conn;                  // current stream; replaced when broken
    std::vector<std::shared_ptr<StreamConn>> retired;  // broken, maybe not finished yet
  };

  // Takes a window slot on `slot` and returns its live stream (opening one if needed), or null
  // when the deadline passed first.
  std::shared_ptr<StreamConn> Acquire(Slot& slot, Clock::time_point deadline);
  void Release(Slot& slot);

  const uint32_t window_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<uint64_t> next_slot_{0};
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace tandem::client_internal
