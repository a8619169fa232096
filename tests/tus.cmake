# TUS ingest tests (issue 5): unit tests of the header parsers, and protocol suites run by Node.js
# against a harness (the TUS module on its own HTTP server, 127.0.0.1:0, stub node callbacks).
# Real-client (tus-js-client) and swarm tests run against the real node binary.
if(TARGET p2p_tus)
  p2p_unit(test_tus_proto p2p_tus p2p_seed p2p_http p2p_common)

  add_executable(test_tus_harness unit/test_tus_harness.c)
  target_compile_options(test_tus_harness PRIVATE ${P2P_WARNINGS} -Wno-missing-prototypes)
  target_link_libraries(test_tus_harness PRIVATE p2p_tus p2p_seed p2p_cfg p2p_http p2p_common)

  # Each suite is its own ctest entry; suites start their own harness processes.
  foreach(suite core creation concat checksum expiration lock malformed restart hook auth)
    add_test(NAME tus_${suite}
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/tus_suite.sh ${suite})
    set_tests_properties(tus_${suite} PROPERTIES TIMEOUT 120 LABELS integration
      ENVIRONMENT "${P2P_TEST_ENV};TUS_HARNESS=$<TARGET_FILE:test_tus_harness>")
  endforeach()

  add_test(NAME tus_jsclient COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/tus_jsclient.sh)
  set_tests_properties(tus_jsclient PROPERTIES TIMEOUT 300 LABELS integration
    ENVIRONMENT "${P2P_TEST_ENV};TUS_HARNESS=$<TARGET_FILE:test_tus_harness>;TUS_NPM_DIR=${CMAKE_BINARY_DIR}/npm")

  # tracker + two nodes: the node's TUS routes, tus-js-client against the node, swarm download
  if(TARGET p2p_node)
    p2p_e2e(tus_swarm)
    set_tests_properties(tus_swarm PROPERTIES TIMEOUT 300 RESOURCE_LOCK p2p_node_e2e
      ENVIRONMENT "${P2P_TEST_ENV};TUS_NPM_DIR=${CMAKE_BINARY_DIR}/npm")
  endif()
endif()
