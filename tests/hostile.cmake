# Hostile-network tests (issue 6, item 4): misbehaving clients and a misbehaving peer against the
# real tracker and node binaries. The helpers are small standalone C programs (no project
# libraries) built with the project's warnings; the scripts get their paths from HOSTILE_CLIENT
# and HOSTILE_PEER.
foreach(h hostile_client hostile_peer)
  add_executable(${h} unit/${h}.c)
  target_compile_definitions(${h} PRIVATE _GNU_SOURCE)
  target_compile_options(${h} PRIVATE ${P2P_WARNINGS})
  target_link_libraries(${h} PRIVATE Threads::Threads)
endforeach()

if(TARGET p2p_tracker AND TARGET p2p_node)
  set(P2P_HOSTILE_ENV ${P2P_TEST_ENV}
      "HOSTILE_CLIENT=$<TARGET_FILE:hostile_client>" "HOSTILE_PEER=$<TARGET_FILE:hostile_peer>")
  # raw-socket clients: oversized headers, slowloris, short bodies, bad chunks, idle floods
  p2p_e2e(hostile_http)
  set_tests_properties(hostile_http PROPERTIES TIMEOUT 180 ENVIRONMENT "${P2P_HOSTILE_ENV}")
  # fake peers serving too-long / too-short / slow pieces to a real downloading node
  p2p_e2e(hostile_peer)
  set_tests_properties(hostile_peer PROPERTIES TIMEOUT 180 RESOURCE_LOCK p2p_node_e2e
                       ENVIRONMENT "${P2P_HOSTILE_ENV}")
endif()
