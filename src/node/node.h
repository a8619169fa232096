/* The node service: downloads files from the swarm, serves pieces and files, tasks API. */
#ifndef P2P_NODE_NODE_H
#define P2P_NODE_NODE_H

/**
 * The `node` subcommand: argv[0] is "node". Flags: -c/--config FILE, --listen ADDR (overrides
 * web.listen_address). Prints "LISTENING <host>:<port>" on stdout once bound, runs until
 * SIGINT/SIGTERM, then saves bitfields, tells the trackers and returns 0 (the exit status).
 */
int p2p_node_main(int argc, char **argv);

#endif
