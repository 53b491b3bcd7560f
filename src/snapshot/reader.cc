#include "snapshot/reader.h"

#include <fmt/format.h>

namespace tandem::snapshot {
namespace {

Status Corrupt(std::string message) { return Status(ErrorCode::kInternal, std::move(message)); }

// A chunk LoadImage always refuses (an object without a key): how a reader error mid-stream
// turns into a refused image rather than a shorter one.
void Poison(tandem::v1::ObjectChunk* chunk) {
  chunk->Clear();
  chunk->add_objects();
}

// Leaves `store` empty through LoadImage's refuse-and-clear path.
void EmptyStore(meta::MetaStore* store, uint64_t now_ms) {
  bool sent = false;
  (void)store->LoadImage(
      tandem::v1::StateHeader(),
      [&](tandem::v1::ObjectChunk* chunk) {
        if (sent) return false;
        Poison(chunk);
        sent = true;
        return true;
      },
      now_ms);
}

}  // namespace

StatusOr<std::unique_ptr<SnapshotReader>> SnapshotReader::Open(
    const std::string& path, std::string_view expected_cluster_id) {
  std::unique_ptr<SnapshotReader> reader(new SnapshotReader());
  if (Status s = reader->OpenFile(path, expected_cluster_id); !s.ok()) return s;
  return reader;
}

Status SnapshotReader::OpenFile(const std::string& path, std::string_view expected_cluster_id) {
  if (Status s = file_.Open(path); !s.ok()) return s;
  const uint64_t size = file_.size();
  if (size < kPreambleBytes + 8 + kFooterBytes) {
    return Corrupt(fmt::format("truncated: {} bytes, too short for a snapshot", size));
  }
  std::string bytes;
  if (Status s = file_.ReadAt(0, kPreambleBytes, &bytes); !s.ok()) return s;
  uint32_t header_len = 0;
  if (Status s = DecodePreamble(bytes, &header_len); !s.ok()) return s;
  blocks_begin_ = kPreambleBytes + uint64_t{header_len} + 8;
  if (blocks_begin_ + kFooterBytes > size) {
    return Corrupt(fmt::format("truncated: the header needs {} bytes, the file has {}",
                               blocks_begin_ + kFooterBytes, size));
  }
  if (Status s = file_.ReadAt(0, blocks_begin_, &bytes); !s.ok()) return s;
  if (Status s = DecodeHeader(bytes, &header_, &state_, &header_checksum_); !s.ok()) return s;
  if (header_.cluster_id != expected_cluster_id) {
    return Corrupt(fmt::format("foreign snapshot: cluster id '{}', expected '{}'",
                               header_.cluster_id, expected_cluster_id));
  }
  blocks_end_ = size - kFooterBytes;
  if (Status s = file_.ReadAt(blocks_end_, kFooterBytes, &bytes); !s.ok()) return s;
  if (Status s = DecodeFooter(bytes, &footer_); !s.ok()) return s;
  if (footer_.object_count != header_.object_count) {
    return Corrupt(fmt::format("footer counts {} objects, the header {}", footer_.object_count,
                               header_.object_count));
  }
  Rewind();
  return Status::Ok();
}

void SnapshotReader::Rewind() {
  offset_ = blocks_begin_;
  block_index_ = 0;
  objects_seen_ = 0;
  running_ = FileChecksum(header_checksum_);
}

StatusOr<bool> SnapshotReader::NextBlock() {
  if (offset_ == blocks_end_) {
    if (Status s = CheckFooter(); !s.ok()) return s;
    return false;
  }
  if (blocks_end_ - offset_ < kBlockFrameBytes) {
    return Corrupt(
        fmt::format("block {} at offset {}: frame runs into the footer", block_index_, offset_));
  }
  char frame[kBlockFrameBytes];
  if (Status s = file_.ReadAt(offset_, sizeof(frame), frame); !s.ok()) return s;
  frame_ = DecodeBlockFrame(frame);
  const uint64_t payload_at = offset_ + kBlockFrameBytes;
  if (frame_.payload_len > kMaxBlockBytes || frame_.payload_len > blocks_end_ - payload_at) {
    return Corrupt(fmt::format("block {} at offset {}: length {} runs past the footer",
                               block_index_, offset_, frame_.payload_len));
  }
  if (Status s = file_.ReadAt(payload_at, frame_.payload_len, &payload_); !s.ok()) return s;
  if (BlockChecksum(block_index_, frame_.object_count, payload_) != frame_.checksum) {
    return Corrupt(fmt::format("block {} checksum mismatch", block_index_));
  }
  running_.Add(frame_.checksum);
  offset_ = payload_at + frame_.payload_len;
  objects_seen_ += frame_.object_count;
  ++block_index_;
  return true;
}

Status SnapshotReader::CheckFooter() const {
  if (footer_.block_count != block_index_) {
    return Corrupt(fmt::format("footer counts {} blocks, the file holds {}", footer_.block_count,
                               block_index_));
  }
  if (footer_.object_count != objects_seen_) {
    return Corrupt(fmt::format("footer counts {} objects, the blocks hold {}", footer_.object_count,
                               objects_seen_));
  }
  if (footer_.file_checksum != running_.value()) return Corrupt("footer checksum mismatch");
  return Status::Ok();
}

Status SnapshotReader::Verify() {
  Rewind();
  while (true) {
    StatusOr<bool> more = NextBlock();
    if (!more.ok()) return more.status();
    if (!more.value()) return Status::Ok();
  }
}

Status SnapshotReader::ForEachChunk(
    const std::function<bool(const tandem::v1::ObjectChunk&)>& emit) {
  Rewind();
  tandem::v1::ObjectChunk chunk;
  while (true) {
    StatusOr<bool> more = NextBlock();
    if (!more.ok()) return more.status();
    if (!more.value()) return Status::Ok();
    if (!chunk.ParseFromString(payload_)) {
      return Corrupt(fmt::format("block {} does not parse", block_index_ - 1));
    }
    if (static_cast<uint32_t>(chunk.objects_size()) != frame_.object_count) {
      return Corrupt(fmt::format("block {} holds {} objects, its frame says {}", block_index_ - 1,
                                 chunk.objects_size(), frame_.object_count));
    }
    if (!emit(chunk)) return Status::Ok();
  }
}

Status SnapshotReader::LoadInto(meta::MetaStore* store, uint64_t now_ms) {
  Rewind();
  Status error;
  bool done = false;
  auto next_chunk = [&](tandem::v1::ObjectChunk* chunk) {
    if (done) return false;
    StatusOr<bool> more = NextBlock();
    if (more.ok() && !more.value()) {
      done = true;
      return false;
    }
    if (more.ok() && !chunk->ParseFromString(payload_)) {
      more = Corrupt(fmt::format("block {} does not parse", block_index_ - 1));
    } else if (more.ok() && static_cast<uint32_t>(chunk->objects_size()) != frame_.object_count) {
      more = Corrupt(fmt::format("block {} holds {} objects, its frame says {}", block_index_ - 1,
                                 chunk->objects_size(), frame_.object_count));
    }
    if (!more.ok()) {
      error = more.status();
      Poison(chunk);
      done = true;
    }
    return true;
  };
  Status loaded = store->LoadImage(state_, next_chunk, now_ms);
  if (!error.ok()) {
    if (loaded.ok()) EmptyStore(store, now_ms);  // only if LoadImage ever accepted the poison
    return error;
  }
  return loaded;
}

}  // namespace tandem::snapshot
