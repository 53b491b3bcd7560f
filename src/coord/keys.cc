#include "coord/keys.h"

namespace tandem::coord {

namespace {
constexpr size_t kMaxIdLength = 64;

bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}
}  // namespace

Status ValidateId(std::string_view what, std::string_view id) {
  bool ok = !id.empty() && id.size() <= kMaxIdLength;
  for (char c : id) ok = ok && IdChar(c);
  if (ok) return Status::Ok();
  return Status(ErrorCode::kInvalidParams, std::string(what) + " '" + std::string(id) +
                                               "' is invalid: expected 1 to 64 characters of "
                                               "[A-Za-z0-9_-]");
}

std::string ClusterPrefix(std::string_view cluster_id) {
  return "/tandem/" + std::string(cluster_id) + "/";
}

std::string LeaderKey(std::string_view cluster_id) { return ClusterPrefix(cluster_id) + "leader"; }

std::string MembersPrefix(std::string_view cluster_id) {
  return ClusterPrefix(cluster_id) + "members/";
}

std::string MemberKey(std::string_view cluster_id, std::string_view node_id) {
  return MembersPrefix(cluster_id) + std::string(node_id);
}

}  // namespace tandem::coord
