// Byte sizes as operators type them: "4096", "64KiB", "64K", "1GiB", "1G", "2TB".
// Suffixes (case-insensitive) K, M, G, T, P with optional "i" and/or "B" are all binary
// (K = 1024): segment and object sizes are memory sizes. A bare "B" means bytes.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace tandem {

// kInvalidParams for anything else: empty, signs, fractions, unknown suffixes, > 2^64 - 1.
StatusOr<uint64_t> ParseSize(std::string_view text);

}  // namespace tandem
