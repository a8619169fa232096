# Node tests (issue 4): unit tests of the piece picker and the rate limiter, and end-to-end
# swarms of real processes on 127.0.0.1 (tracker + nodes, ephemeral ports).
if(TARGET p2p_node)
  p2p_unit(test_node_pick p2p_node p2p_seed p2p_cfg p2p_http p2p_common)
  foreach(t node_swarm node_resume node_liar node_tracker_restart node_hostile node_sigterm node_cancel
            node_range node_v1 node_ratelimit node_upqueue node_nospace)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh)
      p2p_e2e(${t})
      set_tests_properties(${t} PROPERTIES RESOURCE_LOCK p2p_node_e2e SKIP_RETURN_CODE 77)
    endif()
  endforeach()
endif()
