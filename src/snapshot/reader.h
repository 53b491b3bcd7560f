// Reads and validates a snapshot file (format.h) and streams it into a MetaStore.
//
// Open checks everything that needs no block: magic, format version, header checksum, cluster
// id (a foreign snapshot is refused), footer magic and counts. LoadInto then reads the blocks one
// at a time, checking each checksum before parsing it and the footer after the last, and feeds
// them to MetaStore::LoadImage -- one pass, no second copy of the objects. LoadImage builds the
// new state aside and swaps it in only when all of it is good; a reader error poisons the stream
// so LoadImage refuses it. Either way a bad snapshot leaves the store empty, never half-loaded.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "meta/meta_store.h"
#include "snapshot/file_io.h"
#include "snapshot/format.h"

namespace tandem::snapshot {

class SnapshotReader {
 public:
  // Error statuses say what is wrong ("foreign snapshot: cluster id ...", "block 17 checksum
  // mismatch"), without the file name: callers prefix it.
  static StatusOr<std::unique_ptr<SnapshotReader>> Open(const std::string& path,
                                                        std::string_view expected_cluster_id);

  const SnapshotHeader& header() const { return header_; }
  const tandem::v1::StateHeader& state_header() const { return state_; }
  uint64_t file_bytes() const { return file_.size(); }

  // Replaces the store's state with the snapshot; objects get fresh leases from now_ms.
  Status LoadInto(meta::MetaStore* store, uint64_t now_ms);
  // Checks every block checksum and the footer without parsing objects.
  Status Verify();
  // Calls `emit` with each block's chunk, in order, each checksum checked before it is parsed
  // and the footer after the last; stops early (OK) when `emit` returns false. An error names
  // the damaged block. The chunks are the image's own (WriteOptions::objects_per_block each).
  Status ForEachChunk(const std::function<bool(const tandem::v1::ObjectChunk&)>& emit);

 private:
  SnapshotReader() = default;
  Status OpenFile(const std::string& path, std::string_view expected_cluster_id);
  void Rewind();
  // Reads the next block into payload_/frame_; false at the footer (after checking it).
  StatusOr<bool> NextBlock();
  Status CheckFooter() const;

  ReadableFile file_;
  SnapshotHeader header_;
  tandem::v1::StateHeader state_;
  Footer footer_;
  uint64_t header_checksum_ = 0;
  uint64_t blocks_begin_ = 0;
  uint64_t blocks_end_ = 0;  // where the footer starts

  // Streaming position.
  uint64_t offset_ = 0;
  uint64_t block_index_ = 0;
  uint64_t objects_seen_ = 0;
  FileChecksum running_{0};
  BlockFrame frame_;
  std::string payload_;
};

}  // namespace tandem::snapshot
