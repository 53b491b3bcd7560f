// gtest helpers for Status / StatusOr results: ASSERT_OK(expr), EXPECT_CODE(expr, ErrorCode::kX).
#pragma once

#include <gtest/gtest.h>

#include "common/status.h"

namespace tandem::testing {

inline const ::tandem::Status& StatusOf(const ::tandem::Status& s) { return s; }
template <typename T>
const ::tandem::Status& StatusOf(const ::tandem::StatusOr<T>& s) {
  return s.status();
}

}  // namespace tandem::testing

#define EXPECT_CODE(expr, code_value)                                     \
  do {                                                                    \
    const auto& _r = (expr);                                              \
    EXPECT_EQ(::tandem::testing::StatusOf(_r).code(), (code_value))       \
        << #expr << " -> " << ::tandem::testing::StatusOf(_r).ToString(); \
  } while (0)
#define ASSERT_OK(expr)                                                   \
  do {                                                                    \
    const auto& _r = (expr);                                              \
    ASSERT_TRUE(::tandem::testing::StatusOf(_r).ok())                     \
        << #expr << " -> " << ::tandem::testing::StatusOf(_r).ToString(); \
  } while (0)
