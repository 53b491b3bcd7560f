#include "oplog/entry_codec.h"

#include <gtest/gtest.h>

namespace tandem::oplog {
namespace {

tandem::v1::OpLogEntry MakeEntry() {
  tandem::v1::OpLogEntry entry;
  entry.set_sequence_id(42);
  entry.set_epoch(3);
  entry.set_timestamp_ms(1700000000000);
  entry.set_op_type(tandem::v1::PUT_START);
  entry.set_object_key("object-key-1");
  entry.set_payload(std::string("\x08\x80\x20", 3));
  Seal(entry);
  return entry;
}

TEST(EntryCodecTest, SealedEntryVerifies) { EXPECT_TRUE(Verify(MakeEntry())); }

TEST(EntryCodecTest, EveryFieldIsCoveredByTheChecksum) {
  const auto base = MakeEntry();
  std::vector<std::function<void(tandem::v1::OpLogEntry&)>> mutations = {
      [](auto& e) { e.set_sequence_id(e.sequence_id() + 1); },
      [](auto& e) { e.set_epoch(e.epoch() + 1); },
      [](auto& e) { e.set_timestamp_ms(e.timestamp_ms() + 1); },
      [](auto& e) { e.set_op_type(tandem::v1::REMOVE); },
      [](auto& e) { (*e.mutable_object_key())[11] ^= 0x01; },
      [](auto& e) { (*e.mutable_payload())[1] ^= 0x40; },
      [](auto& e) { e.set_checksum(e.checksum() ^ 1); },
      [](auto& e) { e.set_prefix_hash(e.prefix_hash() ^ 1); },
  };
  for (size_t i = 0; i < mutations.size(); ++i) {
    auto entry = base;
    mutations[i](entry);
    EXPECT_FALSE(Verify(entry)) << "mutation " << i << " went unnoticed";
  }
}

TEST(EntryCodecTest, KeyAndPayloadBoundaryMatters) {
  auto a = MakeEntry();
  a.set_object_key("ab");
  a.set_payload("c");
  auto b = a;
  b.set_object_key("a");
  b.set_payload("bc");
  EXPECT_NE(ComputeChecksum(a), ComputeChecksum(b));
}

TEST(EntryCodecTest, PrefixHashUsesFirstEightBytes) {
  EXPECT_EQ(PrefixHash(""), 0u);
  EXPECT_EQ(PrefixHash("12345678-a"), PrefixHash("12345678-b"));
  EXPECT_NE(PrefixHash("12345678"), PrefixHash("12345679"));
  EXPECT_NE(PrefixHash("abc"), PrefixHash("abd"));
}

}  // namespace
}  // namespace tandem::oplog
