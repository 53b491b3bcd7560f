// The node state machine's states (DESIGN §4) and the record of the last transition, shown in
// /status, metrics and logs. Pure: the NodeController decides transitions, this keeps them.
//
// INITIALIZING -> FOLLOWER (connecting, syncing, ...) <-> CANDIDATE -> LEADER (activating,
// serving, handing-over); FOLLOWER -> RECOVERING -> FOLLOWER; any -> ERROR.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tandem::node {

enum class NodeState : uint8_t {
  kInitializing,
  kFollower,
  kCandidate,
  kLeader,
  kRecovering,
  kError,
};

// "INITIALIZING", "FOLLOWER", ...
std::string_view NodeStateName(NodeState state);

struct NodeStateInfo {
  NodeState state = NodeState::kInitializing;
  std::string sub_state;  // e.g. "streaming", "no-leader", "serving"
  std::string reason;     // why the last transition happened
  uint64_t since_ms = 0;  // wall clock of the last transition
  uint64_t transitions = 0;

  // "FOLLOWER/streaming"
  std::string Name() const;
};

// What /status shows of leadership.
struct LeadershipStatus {
  NodeStateInfo state;
  std::string leader_id;  // empty: none known
  std::string leader_address;
  uint64_t leader_epoch = 0;
  bool lease_valid = false;
  uint64_t lease_valid_for_ms = 0;
  uint64_t elections_won = 0;
  uint64_t step_downs = 0;
  uint64_t leases_lost = 0;
};

class NodeStateMachine {
 public:
  // Records a transition; returns false (and records nothing) when nothing changes.
  bool Transition(NodeState state, std::string_view sub_state, std::string_view reason,
                  uint64_t now_ms);
  // A sub-state change within the same state (not counted as a transition).
  void SetSubState(std::string_view sub_state) { info_.sub_state = sub_state; }
  const NodeStateInfo& info() const { return info_; }
  NodeState state() const { return info_.state; }

 private:
  NodeStateInfo info_;
};

}  // namespace tandem::node
