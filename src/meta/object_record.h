// ObjectNode: one object's record and its key, in a single heap allocation; ObjectTable: a
// shard's set of them.
//
// Why not flat_hash_map<std::string, Record>: with 1024 shards, 1 M objects leave every shard's
// table about half full, so inline slots of 32 (string) + 72 (record) bytes would cost ~210 B per
// object, and keys over 15 bytes would add a second allocation. An 8-byte slot pointing at an
// exact-size node (record + key bytes) costs ~19 B of table plus one ~96 B allocation.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "meta/meta_store.h"

namespace tandem::meta {

// Where one replica lives. Its size is always the object's value_size.
struct Placement {
  uint32_t segment_handle = 0;
  uint64_t offset = 0;
  bool operator==(const Placement&) const = default;
};
using Placements = absl::InlinedVector<Placement, 1>;

class ObjectNode;
struct NodeDeleter {
  void operator()(ObjectNode* node) const;
};
using NodePtr = std::unique_ptr<ObjectNode, NodeDeleter>;

class ObjectNode {
 public:
  // Allocates a node with room for `key` right after the fields; other fields are zero.
  static NodePtr Create(std::string_view key);

  std::string_view key() const { return {reinterpret_cast<const char*>(this + 1), key_len_}; }
  bool complete() const { return state == ReplicaState::kComplete; }
  // PROCESSING objects use aux_ms for put_start_ms, COMPLETE ones for the soft-pin deadline.
  uint64_t put_start_ms() const { return complete() ? 0 : aux_ms; }
  uint64_t soft_pin_deadline_ms() const { return complete() ? aux_ms : 0; }
  uint64_t replica_bytes() const { return value_size * replicas.size(); }

  // Replicated and in the digest, as are the key, state and soft_pin.
  uint64_t value_size = 0;
  uint64_t owner_client_hash = 0;
  Placements replicas;
  // PROCESSING: put_start_ms (replicated, not in the digest). COMPLETE: soft-pin deadline (soft).
  uint64_t aux_ms = 0;
  // Soft state, never logged.
  uint64_t lease_deadline_ms = 0;
  uint64_t last_access_ms = 0;
  // Last, so that with key_len_ they share one 8-byte word.
  ReplicaState state = ReplicaState::kProcessing;
  bool soft_pin = false;

 private:
  uint32_t key_len_ = 0;

  ObjectNode() = default;
  ~ObjectNode() = default;
  friend struct NodeDeleter;
};

// Hash and equality that look nodes up by key, so a string_view finds a node without a copy.
struct NodeHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const { return absl::Hash<std::string_view>{}(key); }
  size_t operator()(const NodePtr& node) const { return (*this)(node->key()); }
};
struct NodeEq {
  using is_transparent = void;
  static std::string_view Key(std::string_view key) { return key; }
  static std::string_view Key(const NodePtr& node) { return node->key(); }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return Key(a) == Key(b);
  }
};
using ObjectTable = absl::flat_hash_set<NodePtr, NodeHash, NodeEq>;

}  // namespace tandem::meta
