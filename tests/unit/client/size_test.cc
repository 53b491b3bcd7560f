#include "client/size.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

uint64_t Parse(const char* text) {
  auto v = ParseSize(text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().ToString();
  return v.ok() ? v.value() : 0;
}

TEST(ParseSize, PlainBytes) {
  EXPECT_EQ(Parse("0"), 0u);
  EXPECT_EQ(Parse("4096"), 4096u);
  EXPECT_EQ(Parse("18446744073709551615"), UINT64_MAX);
}

TEST(ParseSize, BinarySuffixesInAllSpellings) {
  EXPECT_EQ(Parse("64KiB"), 64u << 10);
  EXPECT_EQ(Parse("64K"), 64u << 10);
  EXPECT_EQ(Parse("64kb"), 64u << 10);
  EXPECT_EQ(Parse("3MiB"), 3u << 20);
  EXPECT_EQ(Parse("1G"), 1ull << 30);
  EXPECT_EQ(Parse("1GiB"), 1ull << 30);
  EXPECT_EQ(Parse("2T"), 2ull << 40);
  EXPECT_EQ(Parse("1PiB"), 1ull << 50);
  EXPECT_EQ(Parse("512B"), 512u);
}

TEST(ParseSize, RejectsGarbageWithInvalidParams) {
  for (const char* bad : {"", "K", "-1", "+5", "1.5G", "12XB", "1GiBs", "1 G", "0x10",
                          "18446744073709551616", "16777216T", "99999999999999999999"}) {
    auto v = ParseSize(bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().code(), ErrorCode::kInvalidParams) << bad;
  }
}

}  // namespace
}  // namespace tandem
