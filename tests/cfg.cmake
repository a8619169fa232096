# Config loader (cfg.c, config.c) and JSON helpers (json.c).
p2p_unit(test_cfg p2p_cfg p2p_common)
p2p_unit(test_json p2p_common)
