// EpochHistory: which leadership term wrote which part of the log, as an ordered list of
// (epoch, start_seq). The primary uses it to tell whether a reconnecting standby's log is a
// prefix of its own (DESIGN §3, divergence): a standby at (epoch e, seq s) holds exactly our
// first s entries iff our entry s was written in epoch e too (log matching, as in Raft/Kafka).
//
// A node keeps one history and shares it (borrowed) between its follower, which extends it from
// the entries it applies, and its primary side, which reads it; the node adds an epoch when it
// opens its sequencer after a promotion. After a full sync only the part from the image's seq
// on is known: earlier seqs answer "unknown" (0), which only ever causes an extra full sync.
//
// Thread-safe (one short mutex). No I/O, no clock.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "common/status.h"

namespace tandem::replication {

class EpochHistory {
 public:
  struct Epoch {
    uint64_t epoch = 0;
    uint64_t start_seq = 0;  // first sequence id written in this epoch
    bool operator==(const Epoch&) const = default;
  };

  // Records that `epoch` starts at `start_seq`. The newest epoch again is a no-op, so a follower
  // may call it for every applied entry. An epoch that starts where the previous one started
  // replaces it (that term wrote nothing). INVALID_STATE for an older epoch or an earlier start.
  Status Begin(uint64_t epoch, uint64_t start_seq);
  // The state was replaced by an image at (epoch, seq): forget everything, know only that `seq`
  // was written in `epoch`. (0, 0) empties the history.
  void ResetToImage(uint64_t epoch, uint64_t seq);

  // Epoch that wrote `seq`, or 0 when unknown (seq 0, before the known range, empty history).
  // Seqs after the newest epoch's start belong to it (the history does not know the log's end).
  uint64_t EpochOf(uint64_t seq) const;
  // True when a log ending at (last_epoch, last_seq) is a prefix of ours, which ends at
  // our_last_seq: last_seq <= our_last_seq and EpochOf(last_seq) == last_epoch. The empty log
  // (0, 0) is a prefix of every log.
  bool IsPrefix(uint64_t last_epoch, uint64_t last_seq, uint64_t our_last_seq) const;

  uint64_t newest_epoch() const;  // 0 when empty
  std::vector<Epoch> epochs() const;

 private:
  uint64_t EpochOfLocked(uint64_t seq) const;

  mutable std::mutex mu_;
  std::vector<Epoch> epochs_;  // ascending in both epoch and start_seq
};

}  // namespace tandem::replication
