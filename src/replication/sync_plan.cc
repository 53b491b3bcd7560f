#include "replication/sync_plan.h"

namespace tandem::replication {
namespace {

std::string Window(uint64_t first, uint64_t last) {
  if (first == 0) return "the oplog window is empty";
  return "the oplog window is [" + std::to_string(first) + ", " + std::to_string(last) + "]";
}

}  // namespace

std::string CheckHello(const tandem::v1::SyncHello& hello, const std::string& cluster_id,
                       const std::string& node_id, bool serving, const std::string& leader_hint) {
  if (hello.cluster_id() != cluster_id) {
    return "cluster id mismatch: standby '" + hello.standby_id() + "' belongs to cluster '" +
           hello.cluster_id() + "', this node serves cluster '" + cluster_id + "'";
  }
  if (hello.standby_id() == node_id) {
    return "standby id '" + hello.standby_id() +
           "' is this node's own id: a standby cannot replicate from itself";
  }
  if (!serving) {
    return "not a primary: node '" + node_id + "' is not serving; leader is " +
           (leader_hint.empty() ? std::string("unknown") : leader_hint);
  }
  return "";
}

SyncPlan PlanSync(uint64_t last_epoch, uint64_t last_seq, uint64_t our_last_seq,
                  uint64_t window_first, uint64_t window_last, const EpochHistory& history) {
  const std::string at = "seq " + std::to_string(last_seq);
  if (!history.IsPrefix(last_epoch, last_seq, our_last_seq)) {
    if (last_seq > our_last_seq) {
      return {true, "diverged: standby is at " + at + ", beyond our last seq " +
                        std::to_string(our_last_seq)};
    }
    const uint64_t ours = history.EpochOf(last_seq);
    if (ours == 0) {
      return {true, "diverged: our epoch history does not reach " + at +
                        ", so a common prefix cannot be proven"};
    }
    return {true, "diverged: its " + at + " was written in epoch " + std::to_string(last_epoch) +
                      ", ours in epoch " + std::to_string(ours)};
  }
  if (last_seq == our_last_seq) return {false, "up to date at " + at};
  if (window_first != 0 && window_first <= last_seq + 1 && last_seq <= window_last) {
    return {false, "resumes after " + at + "; " + Window(window_first, window_last)};
  }
  if (last_seq == 0) {
    return {true, "new standby, and seq 1 is no longer in the oplog window; " +
                      Window(window_first, window_last)};
  }
  return {true, "seq " + std::to_string(last_seq + 1) + " fell out of the oplog window; " +
                    Window(window_first, window_last)};
}

std::string StoredImageJoinsLog(uint64_t image_epoch, uint64_t image_seq, uint64_t our_last_seq,
                                uint64_t window_first, uint64_t window_last,
                                const EpochHistory& history) {
  const std::string at = "seq " + std::to_string(image_seq);
  if (image_seq == 0) return "an image at seq 0 is the empty state";
  if (image_seq > our_last_seq) {
    return "it is at " + at + ", past our last seq " + std::to_string(our_last_seq);
  }
  if (!history.IsPrefix(image_epoch, image_seq, our_last_seq)) {
    const uint64_t ours = history.EpochOf(image_seq);
    if (ours == 0) return "our epoch history does not reach its " + at;
    return "its " + at + " was written in epoch " + std::to_string(image_epoch) +
           ", ours in epoch " + std::to_string(ours);
  }
  if (image_seq == our_last_seq) return "";  // nothing after it yet: the log continues from it
  // The window must hold every entry from image_seq + 1 to our last seq.
  if (window_first == 0 || window_first > image_seq + 1 || window_last < our_last_seq) {
    return "the log after its " + at +
           " is not all in the window: " + Window(window_first, window_last) +
           ", our last seq is " + std::to_string(our_last_seq);
  }
  return "";
}

}  // namespace tandem::replication
