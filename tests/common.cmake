p2p_unit(test_common p2p_common)
