# Seed model and `gen` (src/seed): cmocka unit tests and the end-to-end gen script.
p2p_unit(test_seed p2p_seed p2p_common)
p2p_e2e(gen)
