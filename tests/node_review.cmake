# Node review fixes (issue 4 review): pure helpers (report backoff, endgame gate, SHA-1 piece
# index, URL escaping, zone rule) and end-to-end runs against a scriptable fake tracker
# (tests/unit/node_fake_tracker.c: the original's tracker, failing reports, hanging calls).
if(TARGET p2p_node)
  p2p_unit(test_node_review p2p_node p2p_seed p2p_cfg p2p_http p2p_common)

  add_executable(node_fake_tracker unit/node_fake_tracker.c)
  target_compile_options(node_fake_tracker PRIVATE ${P2P_WARNINGS})
  target_link_libraries(node_fake_tracker PRIVATE p2p_http p2p_common)

  set(P2P_NODE_REVIEW_ENV ${P2P_TEST_ENV} "FAKE_TRACKER=$<TARGET_FILE:node_fake_tracker>")
  foreach(t node_announce node_stop_calls node_store_races node_abandon)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh)
      p2p_e2e(${t})
      set_tests_properties(${t} PROPERTIES RESOURCE_LOCK p2p_node_e2e
                           ENVIRONMENT "${P2P_NODE_REVIEW_ENV}")
    endif()
  endforeach()
endif()
