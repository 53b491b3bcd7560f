// WriteGate: the seam between the client service and leadership / replication.
//
// The service asks the gate twice per request:
//  1. Admit(access) before touching the store. A non-OK status (NOT_LEADER with the leader's
//     address, FENCED) becomes the response; the store is never touched.
//  2. AwaitCommit(seq, done) after a write changed the store, with a log position at or after
//     the write's own entry. The response is held until the gate calls `done`: OK to
//     acknowledge, or an error (REPLICATION_TIMEOUT, FENCED) that replaces the OK results.
//     With the callback API holding a response costs nothing but the reactor, so sync
//     replication can call `done` from its ack path, for many writers per ack.
//
// The position passed is Sequencer::last_seq() read after the store returned: at least the
// write's own seq (other writers may have added more), so waiting for it is conservative.
#pragma once

#include <cstdint>
#include <functional>

#include "common/status.h"

namespace tandem::server {

enum class Access : uint8_t { kRead, kWrite };

class WriteGate {
 public:
  virtual ~WriteGate() = default;
  // Thread-safe; called on the request path, so it must be cheap (an atomic load).
  virtual Status Admit(Access access) = 0;
  // `done` is called exactly once, inline or later from any thread -- also when the node steps
  // down or stops (with an error): a held response keeps its RPC, and server shutdown, open.
  virtual void AwaitCommit(uint64_t seq, std::function<void(Status)> done) = 0;
};

// Standalone: every request is admitted and a write is committed once applied locally.
class ImmediateWriteGate : public WriteGate {
 public:
  Status Admit(Access) override { return Status::Ok(); }
  void AwaitCommit(uint64_t, std::function<void(Status)> done) override { done(Status::Ok()); }
};

}  // namespace tandem::server
