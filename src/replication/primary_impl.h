// Internals of ReplicationPrimary, shared by primary.cc (the registry of standbys) and
// primary_stream.cc (one stream's reactor and sender thread). Includes grpc: keep it out of
// headers other modules include.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "replication/primary.h"
#include "replication/sync_plan.h"
#include "tandem/v1/replication.grpc.pb.h"

namespace tandem::replication {

class PrimaryStream;

// The registry of standbys and the grpc service; ReplicationPrimary is its facade.
class PrimaryService final : public tandem::v1::Replication::CallbackService {
 public:
  PrimaryService(const PrimaryOptions& options, oplog::LogBuffer* log, meta::MetaStore* store,
                 const EpochHistory* history, Clock wall_clock);
  ~PrimaryService() override;

  grpc::ServerBidiReactor<tandem::v1::SyncRequest, tandem::v1::SyncResponse>* Sync(
      grpc::CallbackServerContext* context) override;
  // Sampled verification (src/verification/answer.h), answered inline on the grpc thread.
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* context,
                                   const tandem::v1::VerifyRequest* request,
                                   tandem::v1::VerifyResponse* response) override;

  // ---- Facade ----
  void SetServing(bool serving, uint64_t epoch, const std::string& leader_hint);
  // NotifyAppended: wakes the senders only when `seq` reaches what one of them waits for, so
  // the common case under load is one atomic load on the Sequencer's critical path.
  void OnAppended(uint64_t seq);
  void WakeAll(bool flush);
  void SetAckListener(std::function<void(const std::string&, uint64_t)> fn);
  std::vector<StandbyStatus> Standbys() const;
  uint64_t MinNeededSeq() const;
  void SetImageSource(ImageSource* source) { image_source_.store(source); }
  void Shutdown();
  void SetEntryFault(std::function<void(tandem::v1::OpLogEntry&)> fault);

  // ---- Called by streams ----
  const PrimaryOptions& options() const { return options_; }
  oplog::LogBuffer* log() const { return log_; }
  meta::MetaStore* store() const { return store_; }
  const EpochHistory& history() const { return *history_; }
  ImageSource* image_source() const { return image_source_.load(); }
  uint64_t Now() const { return clock_(); }
  bool shutting_down() const;
  uint64_t OurLastSeq() const;
  // A sender about to sleep asks to be woken once the log reaches `seq`. Called with the
  // stream's mutex held, so a wake-up racing with the registration still finds it waiting.
  void RequestWake(uint64_t seq);
  // Checks the hello and plans the sync. On success registers `stream` as the standby's current
  // connection (ending an older one) and fills `accepted`; otherwise returns the refusal.
  std::string Admit(PrimaryStream* stream, const tandem::v1::SyncHello& hello, SyncPlan* plan,
                    tandem::v1::SyncAccepted* accepted);
  void SetStreaming(uint64_t stream_id);
  // The full sync of stream `stream_id` streams an image at `image_seq` (`source` for the
  // status): the standby needs the log from image_seq + 1 on.
  void NoteImage(uint64_t stream_id, uint64_t image_seq, bool from_snapshot,
                 const std::string& source);
  void OnAck(const std::string& standby_id, uint64_t stream_id, uint64_t acked_seq);
  void Detach(const std::string& standby_id, uint64_t stream_id);
  // OnDone: the stream is finished with grpc; it is joined and deleted by the next Reap.
  void StreamDone(PrimaryStream* stream);
  std::shared_ptr<const std::function<void(tandem::v1::OpLogEntry&)>> entry_fault() const;

 private:
  struct Record {
    StandbyStatus status;
    uint64_t stream_id = 0;  // current connection, 0 when disconnected
    // With acked_seq: MinNeededSeq. 1 while a full sync has not chosen its image yet, then the
    // image's seq + 1; 0 for an incremental connection (its acked seq says it all).
    uint64_t needed_floor = 0;
  };

  void Reap();

  const PrimaryOptions options_;
  oplog::LogBuffer* const log_;
  meta::MetaStore* const store_;
  const EpochHistory* const history_;
  const Clock clock_;

  mutable std::mutex mu_;
  std::condition_variable done_cv_;  // a stream reached OnDone
  bool serving_ = false;
  uint64_t epoch_ = 0;
  std::string leader_hint_;
  bool shut_down_ = false;
  uint64_t next_stream_id_ = 1;
  std::map<std::string, Record> standbys_;
  std::map<uint64_t, PrimaryStream*> live_;  // not yet OnDone
  std::vector<PrimaryStream*> done_;         // OnDone; to join and delete
  std::function<void(const std::string&, uint64_t)> ack_listener_;
  std::shared_ptr<const std::function<void(tandem::v1::OpLogEntry&)>> entry_fault_;
  std::atomic<uint64_t> wake_seq_{UINT64_MAX};  // lowest seq a sleeping sender waits for
  std::atomic<ImageSource*> image_source_{nullptr};
};

// One standby's Sync stream. grpc calls the On* reactions; the sender thread (Run) does the
// blocking work: waiting for the hello, capturing and streaming an image, reading the log and
// writing batches, one write in flight at a time. Only the sender calls Finish.
class PrimaryStream final
    : public grpc::ServerBidiReactor<tandem::v1::SyncRequest, tandem::v1::SyncResponse> {
 public:
  PrimaryStream(PrimaryService* primary, grpc::CallbackServerContext* context, uint64_t id);
  ~PrimaryStream() override;

  uint64_t id() const { return id_; }
  void Begin();  // first read + sender thread
  // Ends the stream with `status` (step-down, shutdown, a newer connection of the standby).
  void RequestStop(const grpc::Status& status);
  // New entries appended, or (flush) send what is pending without lingering.
  void Wake(bool flush);
  void Join();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  enum class Next { kStop, kSend };

  void Run();
  grpc::Status Serve();
  bool WaitHello(tandem::v1::SyncHello* hello);
  // Streams the image; sets *after_seq to its seq and *hold to the LogBuffer hold keeping the
  // log after it. A stored image when one fits (OpenStoredImage), else a live one.
  grpc::Status SendImage(uint64_t* after_seq, uint64_t* hold);
  // The newest stored image the log in the window continues without a gap, with *hold keeping
  // that log (taken before the window is checked); nullptr (and no hold) when there is none.
  std::unique_ptr<StoredImage> OpenStoredImage(uint64_t* hold);
  grpc::Status SendStoredImage(StoredImage& image, uint64_t* after_seq);
  grpc::Status SendLiveImage(uint64_t* after_seq, uint64_t* hold);
  grpc::Status StreamLog(uint64_t after_seq, uint64_t hold);
  Next WaitForWork(uint64_t after_seq, uint64_t last_data_ms, uint64_t last_send_ms);
  // Waits until the previous write completed, then starts this one. False when the stream is
  // broken or asked to stop.
  bool Write(tandem::v1::SyncResponse&& msg);
  grpc::Status StopStatus();
  void FinishStream(const grpc::Status& status);

  PrimaryService* const primary_;
  grpc::CallbackServerContext* const context_;
  const uint64_t id_;
  std::string peer_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool have_hello_ = false;
  bool bad_request_ = false;
  tandem::v1::SyncHello hello_;
  std::string standby_id_;  // set once admitted; acks count from then on
  bool admitted_ = false;
  bool write_in_flight_ = false;
  bool broken_ = false;       // a write failed or the call was cancelled
  bool peer_closed_ = false;  // the standby closed its side
  bool stop_requested_ = false;
  grpc::Status stop_status_;
  bool flush_ = false;
  // Ack clock: the next batch goes out once the standby acknowledged the last one (or it fills,
  // or batch_timeout_ms passed), so batches grow with the load instead of with a fixed linger.
  uint64_t sent_seq_ = 0;          // highest seq written to this stream
  uint64_t acked_seq_ = 0;         // highest seq the standby acknowledged on it
  bool sender_wants_ack_ = false;  // the sender sleeps until acked_seq_ >= sent_seq_

  tandem::v1::SyncRequest in_;
  tandem::v1::SyncResponse out_;  // owned until OnWriteDone
  std::thread sender_;
};

}  // namespace tandem::replication
