# Tracker tests (issue 3): unit tests of the hash map, the swarm state and request decoding,
# and end-to-end tests against the real binary.
if(TARGET p2p_tracker)
  p2p_unit(test_tracker_hmap p2p_tracker p2p_common)
  p2p_unit(test_tracker_swarm p2p_tracker p2p_common)
  p2p_unit(test_tracker_proto p2p_tracker p2p_common)
  p2p_e2e(tracker_routes)
  p2p_e2e(tracker_hostile)
  p2p_e2e(tracker_expiry)
  p2p_e2e(tracker_guards)
endif()
