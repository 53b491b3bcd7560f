// ImageSource: stored images of this node's state (its snapshots) that a primary may full-sync a
// standby from instead of capturing a live image (issue 5). Replication only reads through this
// interface; the node (src/server) implements it over its snapshot store and injects it with
// ReplicationPrimary::SetImageSource, so replication includes no snapshot or server header.
//
// A stored image is sent exactly like a live one (image_header, image_chunk..., image_end): the
// standby cannot tell them apart and needs no protocol change. Whether a stored image may be used
// at all (the log after it still in the window, and of our own history) is the primary's
// decision (sync_plan.h: StoredImageJoinsLog), made under a LogBuffer hold.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "tandem/v1/state.pb.h"

namespace tandem::replication {

// One opened stored image. Not thread-safe; one stream uses it.
class StoredImage {
 public:
  virtual ~StoredImage() = default;
  // A name for the log and /status, e.g. the snapshot's file name.
  virtual const std::string& id() const = 0;
  // The state header of the image (applied seq and epoch, digest, segments, counts).
  virtual const tandem::v1::StateHeader& header() const = 0;
  // Calls `emit` with the image's chunks in order until it returns false or the image ends.
  // An error when the stored bytes turn out damaged part-way (the caller has then sent part of
  // the image and must abandon the stream).
  virtual Status ForEachChunk(const std::function<bool(const tandem::v1::ObjectChunk&)>& emit) = 0;
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The newest stored image whose applied seq is in [min_seq, max_seq], checked whole (every
  // checksum) before it is returned; damaged or foreign ones are skipped with a log line (so is
  // a store that cannot be listed). nullptr when there is none. Thread-safe: several streams may
  // open images at once.
  virtual std::unique_ptr<StoredImage> OpenNewest(uint64_t min_seq, uint64_t max_seq) = 0;
};

}  // namespace tandem::replication
