p2p_unit(test_httpc p2p_http p2p_common)
