#include "meta/object_record.h"

#include <cstring>
#include <new>

namespace tandem::meta {

// Keeps the per-object cost measured in bench/meta_bench.cc honest: 72 bytes of fields, then the
// key bytes.
static_assert(sizeof(ObjectNode) == 72, "ObjectNode grew; re-measure memory per object");

NodePtr ObjectNode::Create(std::string_view key) {
  void* memory = ::operator new(sizeof(ObjectNode) + key.size());
  auto* node = new (memory) ObjectNode();
  node->key_len_ = static_cast<uint32_t>(key.size());
  if (!key.empty())
    std::memcpy(static_cast<char*>(memory) + sizeof(ObjectNode), key.data(), key.size());
  return NodePtr(node);
}

void NodeDeleter::operator()(ObjectNode* node) const {
  node->~ObjectNode();
  ::operator delete(node);
}

}  // namespace tandem::meta
