#include "test_support.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace tandem::meta::testing {

std::vector<ObjectInfo> Objects(const MetaStore& store) {
  std::vector<ObjectInfo> objects;
  store.ForEachObject([&](const ObjectInfo& info) { objects.push_back(info); });
  return objects;
}

std::string DumpState(const MetaStore& store) {
  std::ostringstream out;
  for (const SegmentInfo& s : store.ListSegments()) {
    out << "segment " << s.handle << " id=" << s.spec.id << " name=" << s.spec.name
        << " base=" << s.spec.base << " size=" << s.spec.size << " endpoint=" << s.spec.endpoint
        << " owner=" << s.owner_client_id << " used=" << s.used << "\n";
  }
  for (const ObjectInfo& o : Objects(store)) {
    out << "object " << o.key << " size=" << o.value_size << " state=" << static_cast<int>(o.state)
        << " owner=" << o.owner_client_hash << " pin=" << o.soft_pin << " replicas=";
    for (const auto& p : o.replicas)
      out << p.segment_handle << ":" << p.offset << "+" << p.size << ",";
    out << "\n";
  }
  return out.str();
}

::testing::AssertionResult CheckInvariants(const MetaStore& store,
                                           std::vector<ObjectInfo>* objects_out) {
  std::map<uint32_t, SegmentInfo> segments;
  uint64_t listed_used = 0;
  for (const SegmentInfo& s : store.ListSegments()) {
    segments[s.handle] = s;
    listed_used += s.used;
  }
  std::map<uint32_t, std::vector<std::pair<uint64_t, uint64_t>>> ranges;  // handle -> [begin,end)
  uint64_t objects = 0, processing = 0;
  std::vector<ObjectInfo> all = Objects(store);
  for (const ObjectInfo& o : all) {
    ++objects;
    if (o.state == ReplicaState::kProcessing) ++processing;
    if (o.replicas.empty()) return ::testing::AssertionFailure() << o.key << " has no replica";
    std::set<uint32_t> handles;
    for (const auto& p : o.replicas) {
      if (!handles.insert(p.segment_handle).second) {
        return ::testing::AssertionFailure() << o.key << " has two replicas on one segment";
      }
      auto seg = segments.find(p.segment_handle);
      if (seg == segments.end()) {
        return ::testing::AssertionFailure()
               << o.key << " has a replica on unmounted handle " << p.segment_handle;
      }
      if (p.size != o.value_size || p.offset + p.size > seg->second.spec.size) {
        return ::testing::AssertionFailure() << o.key << " replica out of bounds or wrong size";
      }
      ranges[p.segment_handle].emplace_back(p.offset, p.offset + p.size);
    }
  }
  for (const auto& [handle, s] : segments) {
    auto& r = ranges[handle];
    std::sort(r.begin(), r.end());
    uint64_t used = 0;
    for (size_t i = 0; i < r.size(); ++i) {
      used += r[i].second - r[i].first;
      if (i > 0 && r[i].first < r[i - 1].second) {
        return ::testing::AssertionFailure()
               << "overlap on segment " << handle << " at " << r[i].first;
      }
    }
    if (used != s.used) {
      return ::testing::AssertionFailure()
             << "segment " << handle << " reports used " << s.used << ", replicas sum " << used;
    }
  }
  Stats stats = store.GetStats();
  if (stats.bytes_used != listed_used || stats.object_count != objects ||
      stats.processing_count != processing || stats.segment_count != segments.size()) {
    return ::testing::AssertionFailure() << "stats disagree with the objects and segments";
  }
  if (objects_out != nullptr) *objects_out = std::move(all);
  return ::testing::AssertionSuccess();
}

std::unique_ptr<MetaStore> Replay(const std::vector<OpLogEntry>& entries, const Options& options,
                                  EntrySink* sink) {
  auto replica = std::make_unique<MetaStore>(options, sink);
  for (const OpLogEntry& entry : entries) {
    Status s = replica->Apply(entry);
    EXPECT_TRUE(s.ok()) << "seq " << entry.sequence_id() << ": " << s.ToString();
  }
  return replica;
}

}  // namespace tandem::meta::testing
