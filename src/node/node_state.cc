#include "node/node_state.h"

namespace tandem::node {

std::string_view NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kInitializing:
      return "INITIALIZING";
    case NodeState::kFollower:
      return "FOLLOWER";
    case NodeState::kCandidate:
      return "CANDIDATE";
    case NodeState::kLeader:
      return "LEADER";
    case NodeState::kRecovering:
      return "RECOVERING";
    case NodeState::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

std::string NodeStateInfo::Name() const {
  std::string name(NodeStateName(state));
  if (!sub_state.empty()) name += "/" + sub_state;
  return name;
}

bool NodeStateMachine::Transition(NodeState state, std::string_view sub_state,
                                  std::string_view reason, uint64_t now_ms) {
  if (state == info_.state && sub_state == info_.sub_state) return false;
  info_.state = state;
  info_.sub_state = sub_state;
  info_.reason = reason;
  info_.since_ms = now_ms;
  ++info_.transitions;
  return true;
}

}  // namespace tandem::node
