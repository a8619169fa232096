/* The client side shared by the HTTP-level fuzz targets: feeds bytes to a p2p_httpd server over a
 * socketpair, runs the loop, collects the responses and detects connections that hang. */
#ifndef P2P_TESTS_FUZZ_NET_H
#define P2P_TESTS_FUZZ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/httpd.h"

/** Hooks of one run; every member may be NULL. */
struct fuzz_net_ops {
    /** After each loop turn (resume paused bodies, send deferred responses, ...). Returns
     *  whether it did anything (a turn that did something is not an idle turn). */
    bool (*turn)(void *ud);
    /** True while asynchronous work (thread pool) is in flight: quiet turns are then no hang. */
    bool (*busy)(void *ud);
    /** True while handlers still owe responses: the server is not stopped before they answer. */
    bool (*pending)(void *ud);
    /** Stops the server (and what routes to it), then calls done(done_ud); NULL = a plain
     *  p2p_httpd_shutdown(srv, 0, ...). */
    void (*stop)(void *ud, void (*done)(void *), void *done_ud);
    /** Before each write: may rewrite the bytes not yet sent (in[sent..len)), knowing what the
     *  client has received (out[0..outlen)) and for how many turns in a row the server has been
     *  idle (idle >= FUZZ_NET_IDLE_TURNS: it will not move again without more input). Returns
     *  how many of the unsent bytes may go now (0 = wait for the server). */
    size_t (*rewrite)(void *ud, uint8_t *in, size_t sent, size_t len, const char *out,
                      size_t outlen, int idle);
};

/**
 * A loop turn is idle when nothing moved in it and nothing is due: the client sent and received
 * nothing, the server consumed no byte of its socket, turn() did nothing, busy() is false, no
 * request (write, shutdown, fs, pool) is active on the loop and no callback or expired timer is
 * waiting to run. Timers still in the future are not waited for (the server's are seconds
 * away; a paced file response counts as busy()). After this many idle turns in a row the server
 * waits for the client: the second turn also polls a watcher the first one started late.
 */
#define FUZZ_NET_IDLE_TURNS 2

/**
 * Connects a socketpair to srv (p2p_httpd_adopt), sends in[0..len) step bytes per loop turn
 * (0 = all at once), half-closes once everything is sent and the server has been idle for
 * FUZZ_NET_IDLE_TURNS turns, and runs the loop until the server closed the connection,
 * pending() is false and the server has been stopped. in is modified only through rewrite.
 * Collects up to outcap response bytes into out and returns how many. A connection on which
 * nothing moves for 1000 turns and 2 s (50 ms with FUZZ_HTTP_ALLOW_HANG=1) is a hang: it aborts
 * unless FUZZ_HTTP_ALLOW_HANG=1, which stops the server instead. Afterwards the loop must be
 * empty (checked). FUZZ_HTTP_DUMP=1 prints what the client received.
 */
size_t fuzz_net_run(uv_loop_t *loop, struct p2p_httpd *srv, uint8_t *in, size_t len, size_t step,
                    const struct fuzz_net_ops *ops, void *ud, char *out, size_t outcap);

#endif
