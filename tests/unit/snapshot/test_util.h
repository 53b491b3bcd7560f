// Helpers for snapshot and recovery tests: a temp directory, a sink that sequences and seals
// entries like the real Sequencer (so they can go into the WAL), a store filler and file
// damage helpers.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "meta/meta_store.h"
#include "oplog/entry_codec.h"

namespace tandem::snapshot::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/tandem-snapshot-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Assigns sequence ids under a mutex, seals and records every entry.
class SealingSink : public meta::EntrySink {
 public:
  explicit SealingSink(uint64_t epoch = 1) : epoch_(epoch) {}
  Status Append(tandem::v1::OpLogEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    entry.set_sequence_id(next_seq_++);
    entry.set_epoch(epoch_);
    oplog::Seal(entry);
    entries_.push_back(entry);
    return Status::Ok();
  }
  // A recovered node continues the sequence where recovery left it.
  void StartAt(uint64_t next_seq) {
    std::lock_guard<std::mutex> lock(mu_);
    next_seq_ = next_seq;
  }
  // Entries with seq > after, in order.
  std::vector<tandem::v1::OpLogEntry> Since(uint64_t after) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<tandem::v1::OpLogEntry> out;
    for (const auto& e : entries_) {
      if (e.sequence_id() > after) out.push_back(e);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  uint64_t epoch_;
  uint64_t next_seq_ = 1;
  std::vector<tandem::v1::OpLogEntry> entries_;
};

inline void MountSegments(meta::MetaStore& store, uint64_t now_ms = 1) {
  for (int i = 0; i < 3; ++i) {
    meta::SegmentSpec spec;
    spec.name = "seg-" + std::to_string(i);
    spec.base = 0x100000000ull * (i + 1);
    spec.size = 1ull << 32;
    spec.endpoint = "10.0.0." + std::to_string(i) + ":7000";
    ASSERT_TRUE(store.MountSegment(spec, i == 0 ? "" : "client-" + std::to_string(i), now_ms).ok());
  }
}

// Objects key-<first>..key-<first+count-1>; one in three stays PROCESSING.
inline void PutObjects(meta::MetaStore& store, int first, int count, uint64_t now_ms = 10) {
  for (int i = first; i < first + count; ++i) {
    std::string key = "key-" + std::to_string(i);
    meta::PutStartArgs args;
    args.key = key;
    args.value_size = 100 + i % 1000;
    args.replica_num = 1 + i % 2;
    args.client_id = "writer";
    args.soft_pin = i % 11 == 0;
    ASSERT_TRUE(store.PutStart(args, now_ms).ok()) << key;
    if (i % 3 != 0) {
      ASSERT_TRUE(store.PutEnd(key, "writer", now_ms).ok()) << key;
    }
  }
}

inline ::testing::AssertionResult IsEmpty(const meta::MetaStore& store) {
  if (store.applied_seq() != 0 || store.GetStats().object_count != 0 ||
      !store.ListSegments().empty()) {
    return ::testing::AssertionFailure()
           << "store holds seq " << store.applied_seq() << ", " << store.GetStats().object_count
           << " objects, " << store.ListSegments().size() << " segments";
  }
  return ::testing::AssertionSuccess();
}

inline uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

inline void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x20));
  ASSERT_TRUE(f.good()) << path << " @" << offset;
}

inline void Truncate(const std::string& path, uint64_t size) {
  std::filesystem::resize_file(path, size);
}

}  // namespace tandem::snapshot::testing
