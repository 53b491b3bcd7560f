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
  gtest_discover_tests(${name}
    PROPERTIES LABELS integration TIMEOUT 60
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
