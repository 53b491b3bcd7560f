// The etcd key layout of a Tandem cluster (DESIGN §4), in one place:
//   /tandem/<cluster_id>/leader            the leader key; its create_revision is the epoch
//   /tandem/<cluster_id>/members/<node_id> one key per node, under that node's lease
// Ids are restricted to [A-Za-z0-9_-]{1,64} so a key never needs escaping and one cluster's
// prefix is never a prefix of another's ("/tandem/a/" vs "/tandem/ab/").
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace tandem::coord {

// kInvalidParams naming `what` ("cluster id", "node id") when `id` has other characters, is empty
// or longer than 64.
Status ValidateId(std::string_view what, std::string_view id);

std::string ClusterPrefix(std::string_view cluster_id);  // "/tandem/<cluster_id>/"
std::string LeaderKey(std::string_view cluster_id);
std::string MembersPrefix(std::string_view cluster_id);  // ".../members/"
std::string MemberKey(std::string_view cluster_id, std::string_view node_id);

}  // namespace tandem::coord
