/* Event-loop ownership: the loop, SIGINT/SIGTERM to a graceful stop, walk-and-close shutdown. */
#ifndef P2P_COMMON_LOOP_H
#define P2P_COMMON_LOOP_H

#include <uv.h>

typedef void (*p2p_loop_stop_cb)(void *ud);

/**
 * Installs SIGINT/SIGTERM (and SIGQUIT) handlers on loop that call stop(ud) once; a second
 * signal exits the process at once with status 1. SIGPIPE is ignored. The signal handles are
 * unref'd so they do not keep the loop alive.
 */
void p2p_loop_signals(uv_loop_t *loop, p2p_loop_stop_cb stop, void *ud);
/** Closes the signal handles installed by p2p_loop_signals. */
void p2p_loop_signals_close(void);

/**
 * Closes every handle still open on loop, runs it until all close callbacks fire, and closes it.
 * Returns the result of uv_loop_close (0 when everything was released).
 */
int p2p_loop_close_all(uv_loop_t *loop);

/** Sets UV_THREADPOOL_SIZE (if not already set by the user) before the pool starts. */
void p2p_loop_threadpool_size(unsigned n);

#endif
