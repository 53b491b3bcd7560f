// CandidateRanking: who campaigns first when the leader key disappears (DESIGN §4 rule 3).
// Pure: no I/O, no clock; the caller feeds it the members' published state and acts on the plan.
//
// Rule:
// - A member is eligible when it says so (healthy, not in full sync: `eligible`) and its lag is
//   within max_promotion_lag_ms.
// - Eligible members rank by applied (epoch, seq), most advanced first; ties go to the lowest
//   node id. Rank k campaigns once the leader has been absent for k * rank_delay_ms, so the most
//   advanced campaigns at once and the next ones step in only if it does not (crashed, slow).
// - An ineligible member never campaigns while some eligible member is published. When none is,
//   it campaigns after ineligible_grace_ms + k * rank_delay_ms (k: its rank among the others by
//   the same order), so a cluster whose standbys all lag still gets a leader, bounded in time,
//   and the least stale one is preferred. The caller re-plans whenever the members change, so an
//   eligible member that shows up during the grace period takes precedence again.
// The caller passes the other members that could campaign (not the departed leader); an entry
// with my own node id is ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::coord {

struct CandidateState {
  std::string node_id;
  int64_t applied_epoch = 0;
  uint64_t applied_seq = 0;
  uint64_t lag_ms = 0;
  bool eligible = true;  // healthy and not in full sync (the member's own judgement)
};

struct RankingOptions {
  uint64_t max_promotion_lag_ms = 5000;  // max_promotion_lag_ms
  uint64_t rank_delay_ms = 300;
  uint64_t ineligible_grace_ms = 5000;
};

struct CampaignPlan {
  bool eligible = false;      // me, by the rule above
  bool may_campaign = false;  // false: wait for the others (re-plan when they change)
  uint32_t rank = 0;          // 0: first in line
  uint64_t delay_ms = 0;      // campaign once the leader has been absent this long
  std::string reason;         // for the log line that reports the decision
};

bool IsEligible(const CandidateState& member, const RankingOptions& options);
// Strict order: higher (applied_epoch, applied_seq) first, then lower node id.
bool MoreAdvanced(const CandidateState& a, const CandidateState& b);

CampaignPlan PlanCampaign(const CandidateState& me, const std::vector<CandidateState>& others,
                          const RankingOptions& options = {});

}  // namespace tandem::coord
