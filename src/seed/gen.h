/* `p2p-sharer gen`: hash a file's pieces on every core and write its seed. */
#ifndef P2P_SEED_GEN_H
#define P2P_SEED_GEN_H

#include "seed/seed.h"

/**
 * Hashes path into a new seed (fills *out; pieces hashed in parallel on nthreads threads,
 * 0 = number of CPUs). file_name defaults to basename(path). Returns 0 or -1 with err set.
 * Blocking: for the CLI, or for the thread pool.
 */
int p2p_gen_seed(const char *path, const char *file_name, enum p2p_hash_algo algo, int version,
                 uint64_t piece_length, char *const *trackers, size_t ntrackers,
                 unsigned nthreads, struct p2p_seed *out, char *err, size_t errlen);

/** The `gen` subcommand: argv[0] is "gen". Returns the process exit status. */
int p2p_gen_main(int argc, char **argv);

#endif
