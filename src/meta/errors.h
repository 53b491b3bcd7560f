// Status shorthands for src/meta. INTERNAL is what Apply returns for an entry it must refuse (a
// malformed payload or an effect that contradicts the state); client-facing codes carry a
// message naming the offending value.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "common/status.h"

namespace tandem::meta {

// absl::StrCat would do, but this absl's string_view is not std::string_view.
inline void AppendPart(std::string& out, std::string_view part) { out.append(part); }
template <typename T>
requires std::is_arithmetic_v<T>
void AppendPart(std::string& out, T value) { out += std::to_string(value); }
template <typename... Args>
std::string Cat(const Args&... parts) {
  std::string out;
  (AppendPart(out, parts), ...);
  return out;
}

template <typename... Args>
Status Error(ErrorCode code, const Args&... parts) {
  return Status(code, Cat(parts...));
}

template <typename... Args>
Status Internal(const Args&... parts) {
  return Status(ErrorCode::kInternal, Cat(parts...));
}

}  // namespace tandem::meta
