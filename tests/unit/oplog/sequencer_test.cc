#include "oplog/sequencer.h"

#include <gtest/gtest.h>

#include <thread>

#include "oplog/entry_codec.h"

namespace tandem::oplog {
namespace {

tandem::v1::OpLogEntry Unstamped(std::string key) {
  tandem::v1::OpLogEntry entry;
  entry.set_op_type(tandem::v1::PUT_END);
  entry.set_object_key(std::move(key));
  return entry;
}

TEST(SequencerTest, StampsConsecutiveSequenceIdsEpochAndChecksum) {
  LogBuffer buffer({});
  Sequencer sequencer(&buffer, /*epoch=*/7, /*next_seq=*/100);
  for (int i = 0; i < 3; ++i) {
    auto entry = Unstamped("k" + std::to_string(i));
    ASSERT_TRUE(sequencer.Append(entry).ok());
    EXPECT_EQ(entry.sequence_id(), 100u + i);
    EXPECT_EQ(entry.epoch(), 7u);
    EXPECT_TRUE(Verify(entry));
  }
  EXPECT_EQ(sequencer.last_seq(), 102u);
  EXPECT_EQ(buffer.first_seq(), 100u);
  EXPECT_EQ(buffer.last_seq(), 102u);
}

TEST(SequencerTest, ClosedSequencerRefusesAndConsumesNoSequence) {
  LogBuffer buffer({});
  Sequencer sequencer(&buffer, 1, 1);
  sequencer.Close(Status(ErrorCode::kFenced, "lease expired"));
  auto entry = Unstamped("k");
  Status refused = sequencer.Append(entry);
  EXPECT_EQ(refused.code(), ErrorCode::kFenced);
  EXPECT_EQ(buffer.size_entries(), 0u);
  EXPECT_EQ(sequencer.last_seq(), 0u);

  sequencer.Open(/*epoch=*/2, /*next_seq=*/1);
  ASSERT_TRUE(sequencer.Append(entry).ok());
  EXPECT_EQ(entry.sequence_id(), 1u);
  EXPECT_EQ(entry.epoch(), 2u);
}

TEST(SequencerTest, ListenerSeesEverySequenceOnce) {
  LogBuffer buffer({});
  Sequencer sequencer(&buffer, 1, 1);
  std::vector<uint64_t> seen;
  sequencer.SetAppendListener([&](uint64_t seq) { seen.push_back(seq); });
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        auto entry = Unstamped("k");
        ASSERT_TRUE(sequencer.Append(entry).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);  // gap-free and ordered
}

}  // namespace
}  // namespace tandem::oplog
