// The Batch* calls: one unary RPC each, one result per input, in order.
#include <google/protobuf/arena.h>

#include <utility>

#include "client/client_impl.h"

namespace tandem {

using client_internal::CheckBatchSize;
using client_internal::FromProto;

namespace {

// A batch's request and response live on one arena: parsing a 128-key response otherwise costs
// several mallocs and frees per key, which perf showed as the largest part of the client's CPU.
class CallArena {
 public:
  CallArena() : arena_(Options()) {}
  template <typename T>
  T* Make() {
    return google::protobuf::Arena::CreateMessage<T>(&arena_);
  }

 private:
  static google::protobuf::ArenaOptions Options() {
    google::protobuf::ArenaOptions options;
    options.start_block_size = 16 << 10;
    options.max_block_size = 256 << 10;
    return options;
  }
  google::protobuf::Arena arena_;
};

}  // namespace

StatusOr<std::vector<Status>> Client::Impl::BatchStatus(
    grpc::Status (Stub::*method)(grpc::ClientContext*, const v1::BatchKeyRequest&,
                                 v1::BatchStatusResponse*),
    std::span<const std::string> keys) {
  CallArena arena;
  auto* request = arena.Make<v1::BatchKeyRequest>();
  FillBatchKeyRequest(keys, request);
  request->set_request_id(NewRequestId());  // item i: "<id>#<i>" on the master
  return Call([&](Conn& conn) -> StatusOr<std::vector<Status>> {
    auto* response = arena.Make<v1::BatchStatusResponse>();
    if (Status s = Unary(conn, method, *request, response); !s.ok()) return s;
    if (Status s = CheckBatchSize(response->items_size(), keys.size()); !s.ok()) return s;
    std::vector<Status> out;
    out.reserve(keys.size());
    for (const v1::Status& item : response->items()) out.push_back(FromProto(item));
    return out;
  });
}

StatusOr<std::vector<StatusOr<std::vector<Replica>>>> Client::BatchPutStart(
    std::span<const PutItem> items) {
  CallArena arena;
  auto* request = arena.Make<v1::BatchPutStartRequest>();
  request->mutable_items()->Reserve(static_cast<int>(items.size()));
  for (const PutItem& item : items) {
    client_internal::ToProto(item, impl_->options.client_id, request->add_items());
  }
  request->set_request_id(impl_->NewRequestId());  // item i: "<id>#<i>" on the master
  using Result = StatusOr<std::vector<StatusOr<std::vector<Replica>>>>;
  return impl_->Call([&](Conn& conn) -> Result {
    auto* response = arena.Make<v1::BatchPutStartResponse>();
    if (Status s = impl_->Unary(conn, &Stub::BatchPutStart, *request, response); !s.ok()) {
      return s;
    }
    if (Status s = CheckBatchSize(response->items_size(), items.size()); !s.ok()) return s;
    std::vector<StatusOr<std::vector<Replica>>> out;
    out.reserve(items.size());
    for (const v1::PutStartResponse& item : response->items()) out.push_back(FromProto(item));
    return out;
  });
}

StatusOr<std::vector<Status>> Client::BatchPutEnd(std::span<const std::string> keys) {
  return impl_->BatchStatus(&Stub::BatchPutEnd, keys);
}

StatusOr<std::vector<Status>> Client::BatchPutRevoke(std::span<const std::string> keys) {
  return impl_->BatchStatus(&Stub::BatchPutRevoke, keys);
}

StatusOr<std::vector<Status>> Client::BatchRemove(std::span<const std::string> keys) {
  return impl_->BatchStatus(&Stub::BatchRemove, keys);
}

StatusOr<std::vector<StatusOr<ReplicaList>>> Client::BatchGetReplicaList(
    std::span<const std::string> keys) {
  CallArena arena;
  auto* request = arena.Make<v1::BatchKeyRequest>();
  impl_->FillBatchKeyRequest(keys, request);
  return impl_->Call([&](Conn& conn) -> StatusOr<std::vector<StatusOr<ReplicaList>>> {
    auto* response = arena.Make<v1::BatchGetReplicaListResponse>();
    if (Status s = impl_->Unary(conn, &Stub::BatchGetReplicaList, *request, response); !s.ok()) {
      return s;
    }
    if (Status s = CheckBatchSize(response->items_size(), keys.size()); !s.ok()) return s;
    std::vector<StatusOr<ReplicaList>> out;
    out.reserve(keys.size());
    for (const v1::GetReplicaListResponse& item : response->items()) {
      out.push_back(FromProto(item));
    }
    return out;
  });
}

StatusOr<std::vector<StatusOr<bool>>> Client::BatchExistKey(std::span<const std::string> keys) {
  CallArena arena;
  auto* request = arena.Make<v1::BatchKeyRequest>();
  impl_->FillBatchKeyRequest(keys, request);
  return impl_->Call([&](Conn& conn) -> StatusOr<std::vector<StatusOr<bool>>> {
    auto* response = arena.Make<v1::BatchExistKeyResponse>();
    if (Status s = impl_->Unary(conn, &Stub::BatchExistKey, *request, response); !s.ok()) {
      return s;
    }
    if (Status s = CheckBatchSize(response->items_size(), keys.size()); !s.ok()) return s;
    std::vector<StatusOr<bool>> out;
    out.reserve(keys.size());
    for (const v1::ExistKeyResponse& item : response->items()) out.push_back(FromProto(item));
    return out;
  });
}

}  // namespace tandem
