#include "client/size.h"

#include <cctype>
#include <string>

namespace tandem {

namespace {

Status Bad(std::string_view text, std::string_view why) {
  return Status(ErrorCode::kInvalidParams,
                "bad size '" + std::string(text) + "': " + std::string(why));
}

// Power of 1024 for a suffix letter, or -1.
int SuffixExponent(char c) {
  switch (std::tolower(static_cast<unsigned char>(c))) {
    case 'k':
      return 1;
    case 'm':
      return 2;
    case 'g':
      return 3;
    case 't':
      return 4;
    case 'p':
      return 5;
    default:
      return -1;
  }
}

}  // namespace

StatusOr<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) return Bad(text, "too large");
    value = value * 10 + digit;
  }
  if (i == 0) return Bad(text, "expected a number of bytes, e.g. 4096 or 64KiB");
  std::string_view suffix = text.substr(i);
  int exponent = 0;
  if (!suffix.empty() && SuffixExponent(suffix[0]) > 0) {
    exponent = SuffixExponent(suffix[0]);
    suffix.remove_prefix(1);
    if (!suffix.empty() && (suffix[0] == 'i' || suffix[0] == 'I')) suffix.remove_prefix(1);
  }
  if (!suffix.empty() && (suffix[0] == 'b' || suffix[0] == 'B')) suffix.remove_prefix(1);
  if (!suffix.empty()) return Bad(text, "unknown suffix");
  for (int e = 0; e < exponent; ++e) {
    if (value > UINT64_MAX / 1024) return Bad(text, "too large");
    value *= 1024;
  }
  return value;
}

}  // namespace tandem
