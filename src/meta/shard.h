// One of MetaStore's 1024 shards: its objects, its digest and a PROCESSING counter, all guarded
// by the shard's mutex. Every change to an object goes through Insert/Update/Erase so the digest
// (DESIGN.md §6) stays the exact sum of the objects' hashes.
#pragma once

#include <cstdint>
#include <mutex>
#include <string_view>
#include <utility>

#include "meta/digest.h"
#include "meta/object_record.h"

namespace tandem::meta {

struct ShardState {
  ObjectTable objects;
  uint64_t digest = 0;      // wrapping sum of ObjectDigest over `objects`
  uint64_t processing = 0;  // objects in state PROCESSING

  ObjectNode* Find(std::string_view key) const {
    auto it = objects.find(key);
    return it == objects.end() ? nullptr : it->get();
  }

  // Adds a node whose key is absent.
  ObjectNode* Insert(NodePtr node) {
    ObjectNode* raw = node.get();
    Account(*raw, +1);
    objects.insert(std::move(node));
    return raw;
  }

  // Runs `change` on a node, keeping the digest and counters in step.
  template <typename Change>
  void Update(ObjectNode* node, Change&& change) {
    Account(*node, -1);
    change(*node);
    Account(*node, +1);
  }

  void Erase(ObjectNode* node) {
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
