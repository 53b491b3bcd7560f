// Shared helpers for MetaStore tests: a recording sink that sequences like the real Sequencer,
// state dumps for comparing two stores, an invariant checker and a replay helper.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "meta/meta_store.h"

namespace tandem::meta::testing {

using tandem::v1::OpLogEntry;
using tandem::v1::OpType;

// Assigns sequence ids under its own mutex (as the real Sequencer does) and records every entry.
// FailWith() makes every later Append fail, as a fenced leader's sequencer would.
class RecordingSink : public EntrySink {
 public:
  Status Append(OpLogEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    entry.set_sequence_id(next_seq_++);
    entry.set_epoch(epoch_);
    entries_.push_back(entry);
    return Status::Ok();
  }
  void FailWith(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(status);
  }
  void SetEpoch(uint64_t epoch) {
    std::lock_guard<std::mutex> lock(mu_);
    epoch_ = epoch;
  }
  // Reserves the next sequence id for an entry built by the test itself (e.g. EPOCH_START).
  uint64_t TakeSeq() {
    std::lock_guard<std::mutex> lock(mu_);
    return next_seq_++;
  }
  void Record(const OpLogEntry& entry) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back(entry);
  }
  std::vector<OpLogEntry> entries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }
  OpLogEntry last() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.back();
  }

 private:
  mutable std::mutex mu_;
  uint64_t next_seq_ = 1;
  uint64_t epoch_ = 1;
  Status fail_;
  std::vector<OpLogEntry> entries_;
};

// A sink for a standby: it must never be asked to append.
class RefusingSink : public EntrySink {
 public:
  Status Append(OpLogEntry&) override { return Status(ErrorCode::kNotLeader, "standby"); }
};

inline SegmentSpec Seg(std::string name, uint64_t size, uint64_t base = 0x10000000) {
  SegmentSpec spec;
  spec.name = std::move(name);
  spec.size = size;
  spec.base = base;
  spec.endpoint = "10.0.0.1:7000";
  return spec;
}

inline PutStartArgs Put(std::string_view key, uint64_t size, uint32_t replicas = 1,
                        std::string_view client = "c1") {
  PutStartArgs args;
  args.key = key;
  args.value_size = size;
  args.replica_num = replicas;
  args.client_id = client;
  return args;
}

// Objects (without soft state) and segments, one per line, in a deterministic order.
std::string DumpState(const MetaStore& store);
std::vector<ObjectInfo> Objects(const MetaStore& store);
// Space is consistent: no overlaps, in-bounds replicas on mounted and distinct segments, used
// bytes per segment and in total equal to the live replicas, object counts equal to Stats.
// `objects_out`, if given, receives the objects checked.
::testing::AssertionResult CheckInvariants(const MetaStore& store,
                                           std::vector<ObjectInfo>* objects_out = nullptr);
// A fresh store fed `entries` through Apply; every Apply must succeed.
std::unique_ptr<MetaStore> Replay(const std::vector<OpLogEntry>& entries, const Options& options,
                                  EntrySink* sink);

template <typename Effect>
Effect PayloadOf(const OpLogEntry& entry) {
  Effect effect;
  EXPECT_TRUE(effect.ParseFromString(entry.payload()));
  return effect;
}

}  // namespace tandem::meta::testing
