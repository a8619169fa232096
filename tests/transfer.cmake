# Transfer path (issue 4 item 10): the sendfile file responses of src/common/httpd.c under a
# slow reader, ranges, pacing and a client reset. The figures come from bench/transfer.sh.
p2p_unit(test_httpd_file p2p_http p2p_common)
