#include "snapshot/writer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "snapshot/file_io.h"
#include "snapshot/format.h"

namespace tandem::snapshot {
namespace {

// Header, blocks and footer; counts what it wrote into *out.
Status WriteBody(const meta::StateImage& image, const SnapshotHeader& header,
                 const WriteOptions& options, const std::function<void()>& between_blocks,
                 WritableFile& file, WrittenSnapshot* out) {
  uint64_t header_checksum = 0;
  if (Status s = file.Append(EncodeHeader(header, image.header(), &header_checksum)); !s.ok()) {
    return s;
  }
  FileChecksum file_checksum(header_checksum);
  Status error;
  std::string payload;
  image.ForEachChunk(options.objects_per_block, [&](const tandem::v1::ObjectChunk& chunk) {
    payload.clear();
    chunk.AppendToString(&payload);
    if (payload.size() > kMaxBlockBytes) {
      error = Status(ErrorCode::kInternal, "snapshot block over 1 GiB; lower objects_per_block");
      return false;
    }
    BlockFrame frame{static_cast<uint32_t>(payload.size()),
                     static_cast<uint32_t>(chunk.objects_size()), 0};
    frame.checksum = BlockChecksum(out->blocks, frame.object_count, payload);
    char bytes[kBlockFrameBytes];
    EncodeBlockFrame(frame, bytes);
    error = file.Append(std::string_view(bytes, sizeof(bytes)));
    if (error.ok()) error = file.Append(payload);
    file_checksum.Add(frame.checksum);
    ++out->blocks;
    out->objects += frame.object_count;
    if (between_blocks) between_blocks();
    return error.ok();
  });
  if (!error.ok()) return error;
  if (out->objects != header.object_count) {
    return Status(ErrorCode::kInternal, fmt::format("image emitted {} objects, its header says {}",
                                                    out->objects, header.object_count));
  }
  return file.Append(EncodeFooter({out->blocks, out->objects, file_checksum.value()}));
}

}  // namespace

StatusOr<WrittenSnapshot> WriteSnapshotFile(const meta::StateImage& image, const SnapshotMeta& meta,
                                            const std::string& dir, const WriteOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const tandem::v1::StateHeader& state = image.header();
  SnapshotHeader header;
  header.cluster_id = meta.cluster_id;
  header.epoch = meta.epoch != 0 ? meta.epoch : state.applied_epoch();
  header.seq = state.applied_seq();
  header.applied_epoch = state.applied_epoch();
  header.object_count = state.object_count();
  header.segment_count = static_cast<uint64_t>(state.segments_size());
  header.created_ms = meta.created_ms;

  namespace fs = std::filesystem;
  const std::string tmp = (fs::path(dir) / TempFileName(header.seq)).string();
  WrittenSnapshot out;
  out.path = (fs::path(dir) / SnapshotFileName(header.seq)).string();
  out.seq = header.seq;
  out.epoch = header.epoch;
  WritableFile file;
  Status s = file.Open(tmp);
  if (!meta.unpaced) {
    file.Pace(options.max_bytes_per_s, options.paced_sync_bytes, meta.stop_pacing, meta.idle);
  }
  if (s.ok()) s = WriteBody(image, header, options, meta.between_blocks, file, &out);
  // Durable content before the name: a crash never leaves a `.snap` with missing bytes.
  if (s.ok()) s = file.Sync();
  Status closed = file.Close();
  if (s.ok()) s = closed;
  if (s.ok() && ::rename(tmp.c_str(), out.path.c_str()) != 0) {
    s = Status(ErrorCode::kInternal, fmt::format("rename {} -> {} failed", tmp, out.path));
  }
  if (s.ok()) s = FsyncDir(dir);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  out.bytes = file.bytes();
  out.paced_seconds = file.paced_seconds();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace tandem::snapshot
