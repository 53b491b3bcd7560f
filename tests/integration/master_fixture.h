// MasterTest: a GoogleTest fixture that runs one real tandem-master (standalone) per test, on
// free loopback ports with a temp data dir, and stops it by PID in TearDown. Suites that need
// other flags override MasterArgs(). On failure the master's log tail is printed.
#pragma once

#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "status_macros.h"
#include "test_cluster.h"

#ifndef TANDEM_MASTER_BIN
#error "TANDEM_MASTER_BIN must be defined by CMake"
#endif

namespace tandem::testing {

class MasterTest : public ::testing::Test {
 protected:
  virtual std::vector<std::string> MasterArgs() const { return {}; }

  void SetUp() override {
    MasterOptions options;
    options.extra_args = MasterArgs();
    master_ = std::make_unique<MasterProcess>(TANDEM_MASTER_BIN, dir_.path(), options);
    std::string error;
    ASSERT_TRUE(master_->Start(&error)) << error;
  }

  void TearDown() override {
    if (HasFailure() && master_ && master_->process() != nullptr) {
      std::cerr << "---- tandem-master log tail (" << master_->log_path() << ") ----\n"
                << master_->process()->LogTail() << "\n";
    }
    if (master_) master_->Stop();
  }

  // A client of this master. Unary unless `streams`. No retries by default: these tests look at
  // what one master answers (retries are tested in client_failover_test.cc).
  std::unique_ptr<Client> NewClient(const std::string& client_id = "", bool streams = false,
                                    uint32_t timeout_ms = 5000, uint32_t max_retry_ms = 0) const {
    ClientOptions options;
    options.address = master_->address();
    options.max_retry_ms = max_retry_ms;
    options.client_id = client_id;
    options.use_streams = streams;
    options.timeout_ms = timeout_ms;
    return std::make_unique<Client>(options);
  }

  static Segment MakeSegment(const std::string& name, uint64_t size, uint64_t base = 0) {
    return Segment{"", name, base, size, name + ".node:7000"};
  }

  MasterStatus MasterState() const {
    auto status = NewClient()->GetStatus();
    EXPECT_TRUE(status.ok()) << status.status().ToString();
    return status.ok() ? status.value() : MasterStatus{};
  }

  TempDir dir_{"tandem-it"};
  std::unique_ptr<MasterProcess> master_;
};

}  // namespace tandem::testing
