// The pure cores: FencingClock (validity arithmetic) and CandidateRanking (who campaigns when).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "coord/fencing_clock.h"
#include "coord/ranking.h"

namespace tandem::coord {
namespace {

TEST(FencingClock, ValidUntilSendTimePlusTtlMinusMargin) {
  FencingClock fence(500);
  fence.Granted(1000, 3000);
  EXPECT_EQ(fence.valid_until_ms(), 3500u);
  EXPECT_TRUE(fence.Valid(3499));
  EXPECT_FALSE(fence.Valid(3500));
  fence.Sent(2000);
  EXPECT_EQ(fence.Answered(3), FencingClock::Answer::kExtended);
  EXPECT_EQ(fence.valid_until_ms(), 4500u);
}

TEST(FencingClock, AnswerExtendsFromTheRequestItAnswersNotALaterOne) {
  FencingClock fence(500);
  fence.Granted(0, 3000);
  fence.Sent(1000);
  fence.Sent(2000);  // pipelined; the first answer belongs to the request sent at 1000
  EXPECT_EQ(fence.Answered(3), FencingClock::Answer::kExtended);
  EXPECT_EQ(fence.valid_until_ms(), 3500u);
  EXPECT_EQ(fence.oldest_outstanding_ms(), 2000u);
  EXPECT_EQ(fence.Answered(3), FencingClock::Answer::kExtended);
  EXPECT_EQ(fence.valid_until_ms(), 4500u);
  EXPECT_EQ(fence.Answered(3), FencingClock::Answer::kUnmatched);
  EXPECT_EQ(fence.valid_until_ms(), 4500u);
}

TEST(FencingClock, NeverMovesBackwardsAndResetForgetsOutstanding) {
  FencingClock fence(500);
  fence.Granted(5000, 3000);  // 7500
  fence.Sent(5100);
  EXPECT_EQ(fence.Answered(2), FencingClock::Answer::kNotExtended);  // 6600 < 7500
  EXPECT_EQ(fence.valid_until_ms(), 7500u);
  fence.Sent(6000);
  fence.StreamReset();  // its answer can never come
  EXPECT_EQ(fence.outstanding(), 0u);
  EXPECT_EQ(fence.Answered(3), FencingClock::Answer::kUnmatched);
  fence.Sent(7000);
  EXPECT_EQ(fence.Answered(3), FencingClock::Answer::kExtended);
  EXPECT_EQ(fence.valid_until_ms(), 9500u);
}

TEST(FencingClock, TtlZeroEndsValidityForGood) {
  FencingClock fence(500);
  fence.Granted(0, 3000);
  fence.Sent(100);
  fence.Sent(200);
  EXPECT_EQ(fence.Answered(0), FencingClock::Answer::kExpired);
  EXPECT_FALSE(fence.Valid(0));
  EXPECT_EQ(fence.outstanding(), 0u);
}

CandidateState C(std::string id, int64_t epoch, uint64_t seq, uint64_t lag = 0,
                 bool eligible = true) {
  return CandidateState{std::move(id), epoch, seq, lag, eligible};
}

TEST(Ranking, MostAdvancedCampaignsAtOnceOthersWaitByRank) {
  RankingOptions options;  // 300 ms per rank
  std::vector<CandidateState> all = {C("a", 3, 100), C("b", 3, 120), C("c", 2, 500)};
  auto plan_of = [&](size_t i) {
    std::vector<CandidateState> others;
    for (size_t j = 0; j < all.size(); ++j) {
      if (j != i) others.push_back(all[j]);
    }
    return PlanCampaign(all[i], others, options);
  };
  EXPECT_EQ(plan_of(1).rank, 0u);  // epoch 3 seq 120
  EXPECT_EQ(plan_of(1).delay_ms, 0u);
  EXPECT_EQ(plan_of(0).rank, 1u);
  EXPECT_EQ(plan_of(0).delay_ms, 300u);
  EXPECT_EQ(plan_of(2).rank, 2u) << "a newer epoch beats a higher seq of an older epoch";
  EXPECT_EQ(plan_of(2).delay_ms, 600u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_TRUE(plan_of(i).may_campaign);
  EXPECT_NE(plan_of(0).reason.find("behind b"), std::string::npos) << plan_of(0).reason;
}

TEST(Ranking, TiesGoToTheLowestNodeId) {
  auto x = PlanCampaign(C("x", 1, 10), {C("m", 1, 10), C("z", 1, 10)});
  auto m = PlanCampaign(C("m", 1, 10), {C("x", 1, 10), C("z", 1, 10)});
  auto z = PlanCampaign(C("z", 1, 10), {C("m", 1, 10), C("x", 1, 10)});
  EXPECT_EQ(m.rank, 0u);
  EXPECT_EQ(x.rank, 1u);
  EXPECT_EQ(z.rank, 2u);
}

TEST(Ranking, LaggingOrFullSyncMembersDoNotCampaignWhileAnEligibleOneExists) {
  RankingOptions options;
  options.max_promotion_lag_ms = 5000;
  // The laggard is the most advanced by seq but its lag is beyond the limit.
  auto laggard = PlanCampaign(C("a", 1, 999, 5001), {C("b", 1, 10, 100)}, options);
  EXPECT_FALSE(laggard.eligible);
  EXPECT_FALSE(laggard.may_campaign);
  auto syncing = PlanCampaign(C("a", 1, 999, 0, /*eligible=*/false), {C("b", 1, 10)}, options);
  EXPECT_FALSE(syncing.may_campaign);
  // And the eligible one does not wait for them.
  auto b =
      PlanCampaign(C("b", 1, 10, 100), {C("a", 1, 999, 5001), C("c", 1, 500, 0, false)}, options);
  EXPECT_TRUE(b.may_campaign);
  EXPECT_EQ(b.rank, 0u);
  EXPECT_EQ(b.delay_ms, 0u);
  // Lag exactly at the limit is still eligible.
  EXPECT_TRUE(PlanCampaign(C("a", 1, 1, 5000), {}, options).eligible);
}

TEST(Ranking, WithoutEligibleMembersTheLeastStaleCampaignsAfterTheGrace) {
  RankingOptions options;
  options.ineligible_grace_ms = 4000;
  options.rank_delay_ms = 300;
  auto a =
      PlanCampaign(C("a", 2, 50, 9000), {C("b", 2, 70, 8000, false), C("c", 1, 90, 7000)}, options);
  auto b =
      PlanCampaign(C("b", 2, 70, 8000, false), {C("a", 2, 50, 9000), C("c", 1, 90, 7000)}, options);
  EXPECT_TRUE(a.may_campaign);
  EXPECT_TRUE(b.may_campaign);
  EXPECT_EQ(b.rank, 0u);
  EXPECT_EQ(b.delay_ms, 4000u);
  EXPECT_EQ(a.rank, 1u);
  EXPECT_EQ(a.delay_ms, 4300u);
  EXPECT_NE(a.reason.find("fallback"), std::string::npos);
}

TEST(Ranking, AloneAndOwnStaleEntryIgnored) {
  auto alone = PlanCampaign(C("a", 1, 1), {});
  EXPECT_TRUE(alone.may_campaign);
  EXPECT_EQ(alone.delay_ms, 0u);
  // My own published entry (older) must not rank against me.
  auto self = PlanCampaign(C("a", 1, 1), {C("a", 5, 500)});
  EXPECT_EQ(self.rank, 0u);
}

// Whatever the states, among eligible members the ranks are a permutation 0..n-1 that follows
// MoreAdvanced, so exactly one campaigns at once; without eligible members the same holds after
// the grace.
TEST(Ranking, RandomClustersHaveExactlyOneFirstCandidate) {
  std::mt19937 rng(42);
  RankingOptions options;
  for (int round = 0; round < 2000; ++round) {
    std::vector<CandidateState> all;
    int n = 1 + static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) {
      all.push_back(C("n" + std::to_string(i), rng() % 3, rng() % 4, rng() % 8000, rng() % 4 != 0));
    }
    std::vector<CampaignPlan> plans;
    for (int i = 0; i < n; ++i) {
      std::vector<CandidateState> others = all;
      others.erase(others.begin() + i);
      plans.push_back(PlanCampaign(all[i], others, options));
    }
    bool any_eligible = std::any_of(
        all.begin(), all.end(), [&](const CandidateState& c) { return IsEligible(c, options); });
    std::vector<uint32_t> ranks;
    for (int i = 0; i < n; ++i) {
      if (!plans[i].may_campaign) {
        ASSERT_TRUE(any_eligible);
        ASSERT_FALSE(plans[i].eligible);
        continue;
      }
      ASSERT_EQ(plans[i].eligible, any_eligible) << "campaigners are all eligible or none is";
      ranks.push_back(plans[i].rank);
    }
    std::sort(ranks.begin(), ranks.end());
    for (size_t r = 0; r < ranks.size(); ++r) ASSERT_EQ(ranks[r], r) << "round " << round;
  }
}

}  // namespace
}  // namespace tandem::coord
