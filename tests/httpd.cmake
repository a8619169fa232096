p2p_unit(test_httpd p2p_http p2p_common)
