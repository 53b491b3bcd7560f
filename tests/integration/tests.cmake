# Integration tests: real tandem-master processes driven by tandem::Client and tandemctl.
# Included by tests/integration/CMakeLists.txt. Each test is its own ctest entry with the LABEL
# "integration" (run them with `ctest -L integration`).
if(NOT TARGET tandem-master OR NOT TARGET tandemctl OR NOT TARGET tandem_client)
  message(STATUS "integration tests: tandem-master/tandemctl not built yet, skipped")
  return()
endif()

# Process helpers reused by later suites (several masters, etcd, chaos).
add_library(tandem_test_cluster STATIC ${CMAKE_CURRENT_LIST_DIR}/test_cluster.cc)
target_include_directories(tandem_test_cluster PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(tandem_test_cluster PUBLIC Threads::Threads)

function(tandem_integration_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE tandem_test_cluster tandem_client
                        nlohmann_json::nlohmann_json GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    TANDEM_MASTER_BIN="$<TARGET_FILE:tandem-master>"
    TANDEMCTL_BIN="$<TARGET_FILE:tandemctl>")
  add_dependencies(${name} tandem-master tandemctl)
  # Leadership tests are timing-sensitive (leases, etcd elections): they run alone, not next to
  # other tests on 2 cores.
  set(_serial)
  if(name STREQUAL "failover_it")
    set(_serial RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS integration TIMEOUT 60 ${_serial}
    DISCOVERY_TIMEOUT 60)
endfunction()

tandem_integration_test(client_api_it ${CMAKE_CURRENT_LIST_DIR}/client_api_test.cc)
tandem_integration_test(batch_and_stream_it ${CMAKE_CURRENT_LIST_DIR}/batch_and_stream_test.cc)
tandem_integration_test(maintenance_it ${CMAKE_CURRENT_LIST_DIR}/maintenance_test.cc)
tandem_integration_test(tandemctl_it ${CMAKE_CURRENT_LIST_DIR}/tandemctl_test.cc)
tandem_integration_test(robustness_it ${CMAKE_CURRENT_LIST_DIR}/robustness_test.cc)

# OpLog replication (issue 3): primary + standbys by flag, kill -9, sync/async modes, bad input.
# Several processes per test; each test is bounded well under the 60 s ctest timeout.
tandem_integration_test(replication_it ${CMAKE_CURRENT_LIST_DIR}/replication_test.cc)

# Leadership through etcd (issue 4): a real etcd (1 or 3 members, tmpfs) and 3 masters per test.
tandem_integration_test(failover_it ${CMAKE_CURRENT_LIST_DIR}/failover_test.cc)

# The client side of issue 4: NOT_LEADER redirects, retries, request ids, leader discovery through
# etcd, tandemctl status/failover against etcd (fake member entries).
tandem_integration_test(client_failover_it ${CMAKE_CURRENT_LIST_DIR}/client_failover_test.cc)
target_link_libraries(client_failover_it PRIVATE tandem_coord tandem_proto_rpc)

# Snapshots, local WAL and cold start (issue 5): kill -9 and restart on the same data dir,
# damaged snapshot / torn WAL, snapshot-while-writing, tandemctl snapshot and bad flags.
tandem_integration_test(durability_it ${CMAKE_CURRENT_LIST_DIR}/durability_test.cc)

# bench/failover.sh's driver: reuses the cluster helpers above (real etcd + masters).
add_executable(tandem-failover-bench ${PROJECT_SOURCE_DIR}/bench/failover_bench.cc)
target_include_directories(tandem-failover-bench PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(tandem-failover-bench PRIVATE tandem_test_cluster tandem_client
                      nlohmann_json::nlohmann_json)
target_compile_definitions(tandem-failover-bench PRIVATE
  TANDEM_MASTER_BIN="$<TARGET_FILE:tandem-master>")
add_dependencies(tandem-failover-bench tandem-master)
set_target_properties(tandem-failover-bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})

# Verification (issue 6): primary + standby, divergence through the standby's test-only hook.
tandem_integration_test(verification_it ${CMAKE_CURRENT_LIST_DIR}/verification_test.cc)
