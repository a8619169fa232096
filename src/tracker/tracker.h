/* The tracker service: `p2p-sharer tracker` (config, HTTP routes, expiry timer, shutdown). */
#ifndef P2P_TRACKER_TRACKER_H
#define P2P_TRACKER_TRACKER_H

/**
 * Runs the tracker until SIGINT/SIGTERM. Flags: -c/--config FILE, --listen ADDR (overrides
 * web.listen_address), -h/--help. Prints "LISTENING host:port" on stdout once bound.
 * Returns the process exit status (0 after a graceful stop, 1 on errors, 2 on bad usage).
 */
int p2p_tracker_main(int argc, char **argv);

#endif
