#include "coord/ranking.h"

#include <tuple>

namespace tandem::coord {

bool IsEligible(const CandidateState& member, const RankingOptions& options) {
  return member.eligible && member.lag_ms <= options.max_promotion_lag_ms;
}

bool MoreAdvanced(const CandidateState& a, const CandidateState& b) {
  if (std::tie(a.applied_epoch, a.applied_seq) != std::tie(b.applied_epoch, b.applied_seq)) {
    return std::tie(a.applied_epoch, a.applied_seq) > std::tie(b.applied_epoch, b.applied_seq);
  }
  return a.node_id < b.node_id;
}

namespace {

std::string Position(const CandidateState& me, uint32_t rank, const std::string& best) {
  return "applied (" + std::to_string(me.applied_epoch) + ", " + std::to_string(me.applied_seq) +
         "), rank " + std::to_string(rank) + (rank == 0 ? " (most advanced)" : ", behind " + best);
}

}  // namespace

CampaignPlan PlanCampaign(const CandidateState& me, const std::vector<CandidateState>& others,
                          const RankingOptions& options) {
  CampaignPlan plan;
  plan.eligible = IsEligible(me, options);
  uint32_t eligible_others = 0;
  uint32_t ahead_eligible = 0;
  uint32_t ahead_all = 0;
  const CandidateState* best = &me;
  for (const CandidateState& other : others) {
    if (other.node_id == me.node_id) continue;  // my own stale entry
    bool other_eligible = IsEligible(other, options);
    eligible_others += other_eligible ? 1 : 0;
    if (!MoreAdvanced(other, me)) continue;
    ++ahead_all;
    if (other_eligible) ++ahead_eligible;
    if (MoreAdvanced(other, *best) && (other_eligible || !plan.eligible)) best = &other;
  }
  if (plan.eligible) {
    plan.may_campaign = true;
    plan.rank = ahead_eligible;
    plan.delay_ms = plan.rank * options.rank_delay_ms;
    plan.reason = "eligible, " + Position(me, plan.rank, best->node_id);
    return plan;
  }
  if (eligible_others > 0) {
    plan.reason = "not eligible (lag " + std::to_string(me.lag_ms) +
                  " ms, eligible=" + (me.eligible ? "true" : "false") + ") and " +
                  std::to_string(eligible_others) + " eligible member(s) exist";
    return plan;
  }
  plan.may_campaign = true;
  plan.rank = ahead_all;
  plan.delay_ms = options.ineligible_grace_ms + plan.rank * options.rank_delay_ms;
  plan.reason = "not eligible but no member is: fallback after " +
                std::to_string(options.ineligible_grace_ms) + " ms, " +
                Position(me, plan.rank, best->node_id);
  return plan;
}

}  // namespace tandem::coord
