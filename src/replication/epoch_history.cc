#include "replication/epoch_history.h"

#include <algorithm>
#include <string>

namespace tandem::replication {

Status EpochHistory::Begin(uint64_t epoch, uint64_t start_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!epochs_.empty()) {
    const Epoch& newest = epochs_.back();
    if (epoch == newest.epoch) return Status::Ok();
    if (epoch < newest.epoch || start_seq < newest.start_seq) {
      return Status(ErrorCode::kInvalidState,
                    "epoch " + std::to_string(epoch) + " at seq " + std::to_string(start_seq) +
                        " does not follow epoch " + std::to_string(newest.epoch) +
                        " started at seq " + std::to_string(newest.start_seq));
    }
    if (start_seq == newest.start_seq) epochs_.pop_back();  // that term wrote nothing
  }
  epochs_.push_back({epoch, start_seq});
  return Status::Ok();
}

void EpochHistory::ResetToImage(uint64_t epoch, uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  epochs_.clear();
  if (seq != 0) epochs_.push_back({epoch, seq});
}

uint64_t EpochHistory::EpochOf(uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mu_);
  return EpochOfLocked(seq);
}

uint64_t EpochHistory::EpochOfLocked(uint64_t seq) const {
  if (seq == 0) return 0;
  // Last epoch that started at or before seq.
  auto it = std::upper_bound(epochs_.begin(), epochs_.end(), seq,
                             [](uint64_t s, const Epoch& e) { return s < e.start_seq; });
  if (it == epochs_.begin()) return 0;
  return std::prev(it)->epoch;
}

bool EpochHistory::IsPrefix(uint64_t last_epoch, uint64_t last_seq, uint64_t our_last_seq) const {
  if (last_seq == 0) return true;
  if (last_seq > our_last_seq || last_epoch == 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return EpochOfLocked(last_seq) == last_epoch;
}

uint64_t EpochHistory::newest_epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epochs_.empty() ? 0 : epochs_.back().epoch;
}

std::vector<EpochHistory::Epoch> EpochHistory::epochs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epochs_;
}

}  // namespace tandem::replication
