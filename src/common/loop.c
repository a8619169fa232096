/* Event-loop ownership: signals to a graceful stop, walk-and-close shutdown, pool sizing. */
#include "common/loop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uv_signal_t sig_handles[3];
static int sig_count;
static p2p_loop_stop_cb stop_cb;
static void *stop_ud;
static int stop_requested;

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (stop_requested) {
        fprintf(stderr, "p2p-sharer: second signal %d, exiting now\n", signum);
        _exit(1);
    }
    stop_requested = 1;
    if (stop_cb)
        stop_cb(stop_ud);
}

void p2p_loop_signals(uv_loop_t *loop, p2p_loop_stop_cb stop, void *ud)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGQUIT};
    signal(SIGPIPE, SIG_IGN);
    stop_cb = stop;
    stop_ud = ud;
    stop_requested = 0;
    sig_count = 0;
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &sig_handles[i]);
        uv_signal_start(&sig_handles[i], on_signal, sigs[i]);
        uv_unref((uv_handle_t *)&sig_handles[i]);
        sig_count++;
    }
}

void p2p_loop_signals_close(void)
{
    for (int i = 0; i < sig_count; i++)
        if (!uv_is_closing((uv_handle_t *)&sig_handles[i]))
            uv_close((uv_handle_t *)&sig_handles[i], NULL);
    sig_count = 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int p2p_loop_close_all(uv_loop_t *loop)
{
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop);
}

void p2p_loop_threadpool_size(unsigned n)
{
    char buf[16];
    if (n == 0 || getenv("UV_THREADPOOL_SIZE"))
        return;
    if (n > 128)
        n = 128;
    snprintf(buf, sizeof buf, "%u", n);
    setenv("UV_THREADPOOL_SIZE", buf, 0);
}
