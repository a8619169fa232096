/* `p2p-sharer gen`: hash a file's pieces on every core and write its seed. */
#ifndef P2P_SEED_GEN_H
#define P2P_SEED_GEN_H

#include "seed/seed.h"

/**
 * Hashes path into a new seed (fills *out; free with p2p_seed_cleanup; pieces hashed in parallel
 * on nthreads threads, 0 = number of CPUs). file_name defaults to basename(path) and must be a
 * safe name. piece_length 0 = the default (v2: p2p_seed_default_piece_length; v1: 1 MiB).
 * version 1 requires P2P_HASH_SHA1, 1 MiB pieces and exactly one tracker. trackers (1..16,
 * borrowed, copied) are checked with p2p_seed_check_tracker; trackers[0] becomes trackerAddr.
 * Only regular files; a file that changes while hashed, or whose seed could not fit
 * P2P_SEED_MAX_BYTES, is refused. Returns 0 or -1 with err set. Blocking: for the CLI, or for
 * the thread pool.
 */
int p2p_gen_seed(const char *path, const char *file_name, enum p2p_hash_algo algo, int version,
                 uint64_t piece_length, char *const *trackers, size_t ntrackers,
                 unsigned nthreads, struct p2p_seed *out, char *err, size_t errlen);

/**
 * The `gen` subcommand: argv[0] is "gen". Returns the process exit status: 0 ok, 1 runtime
 * error, 2 usage error (docs/PROTOCOL.md "gen").
 */
int p2p_gen_main(int argc, char **argv);

#endif
