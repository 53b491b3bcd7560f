// One of MetaStore's 1024 shards: its objects, its digest and a PROCESSING counter, all guarded
// by the shard's mutex. Every change to an object goes through Insert/TryInsert/Update/Erase so
// the digest (DESIGN.md §6) stays the exact sum of the objects' hashes, and so that a shard an
// image capture is waiting for is copied before it changes (see CaptureImage in image.cc).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meta/digest.h"
#include "meta/object_record.h"

namespace tandem::meta {

// A compact copy of one shard's replicated state, made under the shard's lock for an image: a
// few flat vectors, no per-object allocation.
struct ShardCopy {
  struct Object {
    uint64_t value_size = 0;
    uint64_t owner_client_hash = 0;
    uint64_t put_start_ms = 0;
    uint64_t key_begin = 0;  // in `keys`
    uint32_t key_len = 0;
    uint32_t replica_count = 0;
    uint64_t replica_begin = 0;  // in `replicas`
    bool complete = false;
    bool soft_pin = false;
  };
  std::string_view key(const Object& o) const { return {keys.data() + o.key_begin, o.key_len}; }

  std::vector<Object> objects;  // in table order; ForEachChunk sorts them by key hash
  std::string keys;             // every key's bytes, back to back
  std::vector<Placement> replicas;
  uint64_t digest = 0;
};

struct ShardState;
// Copies `shard` into `out` (replacing its contents). Defined in image.cc.
void CopyShard(const ShardState& shard, ShardCopy* out);

struct ShardState {
  ObjectTable objects;
  uint64_t digest = 0;      // wrapping sum of ObjectDigest over `objects`
  uint64_t processing = 0;  // objects in state PROCESSING
  // Set while an image capture waits for this shard as it was at the capture's sequence id: the
  // shard is copied there before its next change, or by the capture itself, whichever is first.
  ShardCopy* pending_capture = nullptr;

  // Copies the shard into the waiting capture, if there is one.
  void FlushCapture() {
    if (pending_capture == nullptr) return;
    ShardCopy* out = pending_capture;
    pending_capture = nullptr;
    CopyShard(*this, out);
  }

  ObjectNode* Find(std::string_view key) const {
    auto it = objects.find(key);
    return it == objects.end() ? nullptr : it->get();
  }

  // Adds a node whose key is absent.
  ObjectNode* Insert(NodePtr node) {
    FlushCapture();
    ObjectNode* raw = node.get();
    Account(*raw, +1);
    objects.insert(std::move(node));
    return raw;
  }

  // Adds a node unless its key is present (one hash lookup for both). False: nothing changed.
  bool TryInsert(NodePtr node) {
    FlushCapture();
    auto [it, inserted] = objects.insert(std::move(node));
    if (inserted) Account(**it, +1);
    return inserted;
  }

  // Runs `change` on a node, keeping the digest and counters in step.
  template <typename Change>
  void Update(ObjectNode* node, Change&& change) {
    FlushCapture();
    Account(*node, -1);
    change(*node);
    Account(*node, +1);
  }

  void Erase(ObjectNode* node) {
    FlushCapture();
    Account(*node, -1);
    objects.erase(objects.find(node->key()));
  }

 private:
  void Account(const ObjectNode& node, int sign) {
    uint64_t hash = ObjectDigest(node);
    if (sign > 0) {
      digest += hash;
      if (!node.complete()) ++processing;
    } else {
      digest -= hash;
      if (!node.complete()) --processing;
    }
  }
};

// Cache-line aligned so neighbouring shards' mutexes do not share a line.
struct alignas(64) Shard {
  mutable std::mutex mu;
  ShardState state;
};

}  // namespace tandem::meta
