// FencingLease: "may this node still act as the leader right now?" (DESIGN §4 rule 1).
//
// The leader admits and acknowledges writes only while its lease is provably valid. The
// coordination layer implements this over its etcd lease; the write path only asks. Valid()
// must be cheap (an atomic load and a clock read) and thread-safe.
#pragma once

namespace tandem {

class FencingLease {
 public:
  virtual ~FencingLease() = default;
  virtual bool Valid() const = 0;
};

}  // namespace tandem
