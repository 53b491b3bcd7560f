// Internals of StandbyFollower, shared by follower.cc (lifecycle, reconnect loop, status) and
// follower_stream.cc (one Sync stream: hello, image, batches). Includes grpc.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "replication/follower.h"
#include "tandem/v1/replication.grpc.pb.h"

namespace tandem::replication {

class StandbyFollower::Impl {
 public:
  Impl(const FollowerOptions& options, meta::MetaStore* store, EpochHistory* history,
       oplog::LogBuffer* log, Clock wall_clock);
  ~Impl();

  void Start();
  void Stop();
  void SetPrimaryAddress(const std::string& address);
  void SetPrimary(const std::string& address, uint64_t min_epoch);
  void RequestFullSync(const std::string& reason);
  FollowerStatus Status() const;

 private:
  using Stream = grpc::ClientReaderWriter<tandem::v1::SyncRequest, tandem::v1::SyncResponse>;
  static constexpr uint64_t kMaxRefusals = 3;  // same seq refused this often: full sync

  // How a stream ended, which decides how long to wait before the next one.
  enum class Outcome {
    kStopped,  // Stop() was called
    kRetry,    // connection failed or broke: exponential backoff
    kResync,   // we refused an entry or image, or the primary asked us to come back (ABORTED):
               // reconnect after the initial backoff
    kError,    // FAILED_PRECONDITION or a stale primary: retry after error_retry_ms
  };

  // ---- follower.cc ----
  void Run();
  void Watchdog();
  // Sleeps up to `ms`; false when stopping. SetPrimaryAddress cuts the sleep short.
  bool Sleep(uint64_t ms);
  uint64_t NextBackoff(Outcome outcome, bool was_accepted);
  std::shared_ptr<grpc::Channel> Channel(std::string* address);
  void SetState(FollowerState state, const std::string& error = "");

  // ---- follower_stream.cc ----
  Outcome RunStream(bool* was_accepted);
  // Hello and SyncAccepted. False (with *outcome/*why set when we decide) if not accepted.
  bool Handshake(Stream* stream, const std::string& address, bool* full, Outcome* outcome,
                 std::string* why);
  // After acceptance: the image if ordered, then batches until the stream ends or we refuse.
  void Follow(Stream* stream, bool full, Outcome* outcome, std::string* why);
  Outcome EndStream(grpc::ClientContext* context, Stream* stream, Outcome outcome,
                    const std::string& why);
  bool Read(Stream* stream, tandem::v1::SyncResponse* msg);
  // Returns an empty string on success, else why the image was refused.
  std::string ReceiveImage(Stream* stream);
  std::string LoadImage(Stream* stream, const tandem::v1::StateHeader& header);
  // Empties the store (and the log window and history that describe it).
  void ResetStore();
  // Applies a batch; returns why an entry was refused (after logging and counting), or "".
  std::string ApplyBatch(tandem::v1::EntryBatch& batch);
  std::string CheckEntry(const tandem::v1::OpLogEntry& entry) const;
  std::string Refuse(uint64_t seq, const std::string& reason, bool needs_full_sync);
  void Record(tandem::v1::OpLogEntry&& entry);
  bool Ack(Stream* stream);

  FollowerOptions options_;  // primary_address guarded by mu_
  meta::MetaStore* const store_;
  EpochHistory* const history_;
  oplog::LogBuffer* const log_;
  const Clock clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;
  bool stopping_ = false;
  bool address_changed_ = false;
  bool full_sync_requested_ = false;  // RequestFullSync; the runner moves it to want_full_sync_
  grpc::ClientContext* context_ = nullptr;  // the open stream's, for Stop/watchdog cancel
  uint64_t read_started_ms_ = 0;            // steady; 0 while not blocked in Read
  std::string cancel_reason_;               // why the watchdog cancelled
  FollowerStatus status_;                   // applied_* are read from the store
  std::thread runner_;
  std::thread watchdog_;

  // Owned by the runner thread.
  std::shared_ptr<grpc::Channel> channel_;
  std::string channel_address_;
  std::mt19937 rng_{std::random_device{}()};
  uint64_t backoff_ms_ = 0;
  std::string primary_id_;     // the primary we currently follow
  uint64_t stream_epoch_ = 0;  // its epoch
  uint64_t newest_primary_epoch_ = 0;
  uint64_t last_epoch_ = 0;         // epoch of the last applied entry
  uint64_t last_timestamp_ms_ = 0;  // timestamp of the last applied entry
  uint64_t acked_seq_ = 0;
  bool read_done_ = false;       // the current stream's Read returned false
  bool want_full_sync_ = false;  // next hello presents an empty log
  uint64_t refused_seq_ = 0;
  uint64_t refused_in_a_row_ = 0;
  bool opened_once_ = false;
};

}  // namespace tandem::replication
