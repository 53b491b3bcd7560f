#include "history.h"

#include <algorithm>
#include <map>

namespace tandem::chaos {
namespace {

bool IsWrite(const Op& op) { return op.kind != OpKind::kRead; }

std::string Describe(const Op& op) {
  const char* kind = op.kind == OpKind::kPut      ? "put"
                     : op.kind == OpKind::kRemove ? "remove"
                                                  : "read";
  return std::string(kind) + " '" + op.key + "' [" + std::to_string(op.invoke_ms) + ", " +
         std::to_string(op.complete_ms) + "] by " + op.served_by + " in epoch " +
         std::to_string(op.epoch);
}

// 1. Acknowledged writes survive (sync), or only the last moments before the fault are lost
// (async); acknowledged removes stay removed.
void CheckDurability(const CheckInput& in, CheckReport* out) {
  std::set<std::string> remove_invoked;
  for (const Op& op : in.ops) {
    if (op.kind == OpKind::kRemove) remove_invoked.insert(op.key);
  }
  bool first_loss = true;
  for (const Op& op : in.ops) {
    if (op.kind == OpKind::kPut) {
      if (remove_invoked.count(op.key) != 0) continue;  // may legitimately be gone
      const bool present = in.present_at_end.count(op.key) != 0;
      if (op.outcome == Outcome::kUnknown && !present) ++out->lost_unacked;
      if (op.outcome != Outcome::kAcked || present) continue;
      ++out->lost_acked;
      const int64_t before_fault =
          static_cast<int64_t>(in.fault_start_ms) - static_cast<int64_t>(op.complete_ms);
      if (first_loss || before_fault > out->loss_window_ms) out->loss_window_ms = before_fault;
      first_loss = false;
      const bool allowed = !in.sync_mode &&
                           before_fault <= static_cast<int64_t>(in.async_loss_window_ms) &&
                           op.complete_ms <= in.fault_end_ms;
      if (!allowed) out->violations.push_back("lost acknowledged " + Describe(op));
    } else if (op.kind == OpKind::kRemove && op.outcome == Outcome::kAcked &&
               in.present_at_end.count(op.key) != 0) {
      ++out->lost_acked;
      if (in.sync_mode) out->violations.push_back("removed key is back: " + Describe(op));
    }
  }
}

// 2. One node per epoch, the node etcd named; no acknowledgement in an epoch of a write invoked
// after a newer term had begun (two leaders acknowledging at once), nor after the term's lease
// had run out by any clock (its key gone for longer than the TTL).
void CheckLeadership(const CheckInput& in, CheckReport* out) {
  std::map<uint64_t, const LeaderTerm*> terms;
  for (const LeaderTerm& t : in.terms) terms[t.epoch] = &t;
  // For each epoch, when the poller first saw any newer term.
  std::map<uint64_t, uint64_t> newer_seen;
  uint64_t earliest_later = 0;
  for (auto it = terms.rbegin(); it != terms.rend(); ++it) {
    if (earliest_later != 0) newer_seen[it->first] = earliest_later;
    if (earliest_later == 0 || it->second->first_seen_ms < earliest_later) {
      earliest_later = it->second->first_seen_ms;
    }
  }
  std::map<uint64_t, std::string> acked_by;  // epoch -> first node seen acking in it
  std::set<uint64_t> reported;
  for (const Op& op : in.ops) {
    if (!IsWrite(op) || op.outcome != Outcome::kAcked) continue;
    if (op.served_by.empty() || op.epoch == 0) {
      out->violations.push_back("acknowledged without naming its node and epoch: " + Describe(op));
      continue;
    }
    auto [it, inserted] = acked_by.emplace(op.epoch, op.served_by);
    if (!inserted && it->second != op.served_by && reported.insert(op.epoch).second) {
      out->violations.push_back("epoch " + std::to_string(op.epoch) +
                                " acknowledged by two nodes, " + it->second + " and " +
                                op.served_by);
    }
    auto newer = newer_seen.find(op.epoch);
    if (newer != newer_seen.end() && op.invoke_ms > newer->second) {
      out->violations.push_back("acknowledged after a newer term began (seen at " +
                                std::to_string(newer->second) + "): " + Describe(op));
      continue;
    }
    auto term = terms.find(op.epoch);
    if (term == terms.end()) {
      ++out->unverified_acks;
      continue;
    }
    const uint64_t gone = term->second->gone_seen_ms;
    if (term->second->node_id != op.served_by) {
      out->violations.push_back("etcd gave epoch " + std::to_string(op.epoch) + " to " +
                                term->second->node_id + ", but " + Describe(op));
    } else if (gone != 0 && op.invoke_ms > gone + in.lease_ttl_ms) {
      out->violations.push_back("acknowledged after its lease ran out (key gone at " +
                                std::to_string(gone) + ", TTL " + std::to_string(in.lease_ttl_ms) +
                                " ms): " + Describe(op));
    } else if (gone != 0 && op.invoke_ms > gone) {
      ++out->acks_after_key_gone;
    }
  }
}

// 4. Reads: no key that was never written; no removed key from the leader that acknowledged the
// remove, after it did; no acknowledged key missing from the leader that acknowledged it.
void CheckReads(const CheckInput& in, CheckReport* out) {
  std::map<std::string, const Op*> acked_remove, acked_put;
  std::set<std::string> remove_invoked;
  for (const Op& op : in.ops) {
    if (op.outcome == Outcome::kAcked && op.kind == OpKind::kRemove) acked_remove[op.key] = &op;
    if (op.outcome == Outcome::kAcked && op.kind == OpKind::kPut) acked_put[op.key] = &op;
    if (op.kind == OpKind::kRemove) remove_invoked.insert(op.key);
  }
  for (const Op& op : in.ops) {
    if (op.kind != OpKind::kRead || op.outcome != Outcome::kAcked) continue;
    if (op.found && op.key.rfind(in.ghost_prefix, 0) == 0) {
      out->violations.push_back("phantom: never-written key read as present: " + Describe(op));
      continue;
    }
    auto removed = acked_remove.find(op.key);
    if (op.found && removed != acked_remove.end() && removed->second->epoch == op.epoch &&
        op.invoke_ms > removed->second->complete_ms) {
      out->violations.push_back("removed key read as present by the leader that removed it: " +
                                Describe(op));
    }
    auto put = acked_put.find(op.key);
    if (!op.found && put != acked_put.end() && remove_invoked.count(op.key) == 0 &&
        put->second->epoch == op.epoch && op.invoke_ms > put->second->complete_ms) {
      out->violations.push_back("acknowledged key read as absent by the leader that acked it: " +
                                Describe(op));
    }
  }
}

// The longest stretch in [fault start, end] without a write being acknowledged.
uint64_t Unavailability(const CheckInput& in) {
  std::vector<uint64_t> acks;
  for (const Op& op : in.ops) {
    if (IsWrite(op) && op.outcome == Outcome::kAcked && op.complete_ms > in.fault_start_ms &&
        op.complete_ms <= in.end_ms) {
      acks.push_back(op.complete_ms);
    }
  }
  std::sort(acks.begin(), acks.end());
  uint64_t longest = 0, previous = in.fault_start_ms;
  for (uint64_t t : acks) {
    longest = std::max(longest, t - previous);
    previous = t;
  }
  return std::max(longest, in.end_ms > previous ? in.end_ms - previous : 0);
}

}  // namespace

CheckReport Check(const CheckInput& input) {
  CheckReport out;
  out.ops = input.ops.size();
  for (const Op& op : input.ops) {
    if (!IsWrite(op)) {
      ++out.reads;
      continue;
    }
    if (op.outcome == Outcome::kAcked) ++out.acked_writes;
    if (op.outcome == Outcome::kUnknown) ++out.unknown_writes;
    if (op.outcome == Outcome::kFailed) ++out.failed_writes;
  }
  CheckDurability(input, &out);
  CheckLeadership(input, &out);
  CheckReads(input, &out);
  out.rto_ms = Unavailability(input);
  return out;
}

}  // namespace tandem::chaos
