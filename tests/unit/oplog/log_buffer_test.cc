#include "oplog/log_buffer.h"

#include <gtest/gtest.h>

namespace tandem::oplog {
namespace {

tandem::v1::OpLogEntry Entry(uint64_t seq, size_t payload_bytes = 10) {
  tandem::v1::OpLogEntry entry;
  entry.set_sequence_id(seq);
  entry.set_payload(std::string(payload_bytes, 'x'));
  return entry;
}

TEST(LogBufferTest, EntriesSinceReturnsTheTailInOrder) {
  LogBuffer buffer({});
  for (uint64_t seq = 1; seq <= 10; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  auto tail = buffer.EntriesSince(6, 100);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 4u);
  EXPECT_EQ(tail->front().sequence_id(), 7u);
  EXPECT_EQ(tail->back().sequence_id(), 10u);
}

TEST(LogBufferTest, EntriesSinceHonoursLimitAndEnd) {
  LogBuffer buffer({});
  for (uint64_t seq = 1; seq <= 10; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  auto limited = buffer.EntriesSince(0, 3);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 3u);
  EXPECT_EQ(limited->back().sequence_id(), 3u);
  auto none = buffer.EntriesSince(10, 3);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto beyond = buffer.EntriesSince(99, 3);
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->empty());
}

TEST(LogBufferTest, RejectsGapsAndKeepsState) {
  LogBuffer buffer({});
  ASSERT_TRUE(buffer.Append(Entry(5)).ok());
  Status gap = buffer.Append(Entry(7));
  EXPECT_EQ(gap.code(), ErrorCode::kInternal);
  EXPECT_EQ(buffer.last_seq(), 5u);
  EXPECT_EQ(buffer.size_entries(), 1u);
}

TEST(LogBufferTest, BoundedByEntries) {
  LogBuffer buffer({.max_bytes = 1 << 30, .max_entries = 4});
  for (uint64_t seq = 1; seq <= 10; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  EXPECT_EQ(buffer.size_entries(), 4u);
  EXPECT_EQ(buffer.first_seq(), 7u);
  auto out = buffer.EntriesSince(2, 10);
  EXPECT_EQ(out.status().code(), ErrorCode::kInvalidState);
  auto ok = buffer.EntriesSince(6, 10);  // exactly at the window's edge
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 4u);
}

TEST(LogBufferTest, BoundedByBytesButKeepsNewest) {
  LogBuffer buffer({.max_bytes = 1000, .max_entries = 1000});
  for (uint64_t seq = 1; seq <= 50; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq, 100)).ok());
  EXPECT_LE(buffer.size_bytes(), 1000u);
  EXPECT_EQ(buffer.last_seq(), 50u);
  ASSERT_TRUE(buffer.Append(Entry(51, 5000)).ok());  // larger than the bound on its own
  EXPECT_EQ(buffer.size_entries(), 1u);
  EXPECT_EQ(buffer.first_seq(), 51u);
}

TEST(LogBufferTest, TruncateBefore) {
  LogBuffer buffer({});
  for (uint64_t seq = 1; seq <= 10; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  const uint64_t bytes_before = buffer.size_bytes();
  buffer.TruncateBefore(8);
  EXPECT_EQ(buffer.first_seq(), 8u);
  EXPECT_EQ(buffer.size_entries(), 3u);
  EXPECT_LT(buffer.size_bytes(), bytes_before);
  buffer.TruncateBefore(100);
  EXPECT_EQ(buffer.size_entries(), 0u);
  EXPECT_EQ(buffer.size_bytes(), 0u);
  EXPECT_EQ(buffer.first_seq(), 0u);
}

TEST(LogBufferTest, HoldKeepsTheTailBeyondTheBoundUntilReleased) {
  LogBuffer buffer({.max_bytes = 1 << 30, .max_entries = 4});
  for (uint64_t seq = 1; seq <= 4; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  const uint64_t hold = buffer.Hold(3);
  for (uint64_t seq = 5; seq <= 8; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  // 1 and 2 are not held and go; 3.. stay although the window is over its 4 entries.
  EXPECT_EQ(buffer.first_seq(), 3u);
  EXPECT_EQ(buffer.size_entries(), 6u);
  EXPECT_TRUE(buffer.HoldActive(hold));
  auto tail = buffer.EntriesSince(2, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->size(), 6u);
  buffer.Release(hold);
  EXPECT_FALSE(buffer.HoldActive(hold));
  EXPECT_EQ(buffer.size_entries(), 4u);  // back within bounds at once
  EXPECT_EQ(buffer.first_seq(), 5u);
}

TEST(LogBufferTest, HoldIsDroppedPastTwiceTheBound) {
  LogBuffer buffer({.max_bytes = 1 << 30, .max_entries = 4});
  const uint64_t hold = buffer.Hold(1);
  for (uint64_t seq = 1; seq <= 8; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  EXPECT_TRUE(buffer.HoldActive(hold));
  EXPECT_EQ(buffer.first_seq(), 1u);  // 8 entries = exactly twice the bound
  ASSERT_TRUE(buffer.Append(Entry(9)).ok());
  EXPECT_FALSE(buffer.HoldActive(hold));
  EXPECT_EQ(buffer.holds_dropped(), 1u);
  EXPECT_EQ(buffer.size_entries(), 4u);
  EXPECT_EQ(buffer.EntriesSince(0, 10).status().code(), ErrorCode::kInvalidState);
  buffer.Release(hold);  // releasing a dropped hold is harmless
}

TEST(LogBufferTest, HoldSlackAlsoAppliesToBytes) {
  LogBuffer buffer({.max_bytes = 2000, .max_entries = 1000});
  const uint64_t hold = buffer.Hold(1);
  uint64_t seq = 1;
  while (buffer.size_bytes() <= 2000) ASSERT_TRUE(buffer.Append(Entry(seq++, 100)).ok());
  EXPECT_TRUE(buffer.HoldActive(hold));  // over the bound, within twice it
  EXPECT_EQ(buffer.first_seq(), 1u);
  while (buffer.HoldActive(hold)) {
    ASSERT_LT(seq, 1000u);
    ASSERT_TRUE(buffer.Append(Entry(seq++, 100)).ok());
  }
  EXPECT_LE(buffer.size_bytes(), 2000u);
}

TEST(LogBufferTest, TruncateBeforeStopsAtAHold) {
  LogBuffer buffer({});
  for (uint64_t seq = 1; seq <= 10; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  const uint64_t hold = buffer.Hold(4);
  buffer.TruncateBefore(8);
  EXPECT_EQ(buffer.first_seq(), 4u);
  buffer.Release(hold);
  buffer.TruncateBefore(8);
  EXPECT_EQ(buffer.first_seq(), 8u);
}

TEST(LogBufferTest, ClearDropsEntriesAndHolds) {
  LogBuffer buffer({});
  for (uint64_t seq = 1; seq <= 10; ++seq) ASSERT_TRUE(buffer.Append(Entry(seq)).ok());
  const uint64_t hold = buffer.Hold(2);
  buffer.Clear();
  EXPECT_EQ(buffer.size_entries(), 0u);
  EXPECT_EQ(buffer.size_bytes(), 0u);
  EXPECT_FALSE(buffer.HoldActive(hold));
  ASSERT_TRUE(buffer.Append(Entry(500)).ok());  // an empty buffer accepts any next seq
  EXPECT_EQ(buffer.first_seq(), 500u);
}

}  // namespace
}  // namespace tandem::oplog
