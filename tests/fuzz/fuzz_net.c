/* Client side of the HTTP-level fuzz targets: a socketpair adopted by the server, the input sent
 * in steps, the loop run in NOWAIT turns, responses collected, hangs detected. */
#include "fuzz_net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_QUIET 1000                /* loop turns without I/O ... */
#define MAX_QUIET_MS 2000             /* ... that also last this long = a hang */
#define MAX_STUCK_NS 8000000000ull    /* a stopped server must finish within this */

struct run {
    bool srv_done;
    struct p2p_httpd *srv;
};

static void on_done(void *ud)
{
    struct run *r = ud;
    r->srv_done = true;
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes the loop up */
}

/* Bytes the client sent that the server has not read from its socket yet (-1: unknown). */
static int unread(int sfd)
{
    int n = 0;
    return ioctl(sfd, FIONREAD, &n) == 0 ? n : -1;
}

/* Nothing on the loop is due now: no active request (a write or shutdown still going out, an fs
 * or pool job), and either nothing alive or no pending callback, closing handle or expired timer
 * (uv_backend_timeout is 0 exactly then, or when nothing is alive). */
static bool loop_idle(uv_loop_t *loop)
{
    if (loop->active_reqs.count > 0)
        return false;
    return !uv_loop_alive(loop) || uv_backend_timeout(loop) != 0;
}

static void stop(const struct fuzz_net_ops *ops, void *ud, struct run *r)
{
    if (ops && ops->stop)
        ops->stop(ud, on_done, r);
    else
        p2p_httpd_shutdown(r->srv, 0, on_done, r);
}

size_t fuzz_net_run(uv_loop_t *loop, struct p2p_httpd *srv, uint8_t *in, size_t len, size_t step,
                    const struct fuzz_net_ops *ops, void *ud, char *out, size_t outcap)
{
    struct run r = {.srv_done = false, .srv = srv};
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
    FUZZ_CHECK(p2p_httpd_adopt(srv, sv[0]) == 0);
    int cfd = sv[1];
    if (step == 0)
        step = len ? len : 1;

    size_t outlen = 0, sent = 0;
    bool wr_closed = false, server_closed = false, stopped = false;
    bool allow_hang = getenv("FUZZ_HTTP_ALLOW_HANG") != NULL;
    /* A known hang (FUZZ_HTTP_ALLOW_HANG) should not cost seconds per input. */
    uint64_t quiet_ns = (allow_hang ? 50 : MAX_QUIET_MS) * 1000000ull;
    uint64_t last_progress = uv_hrtime();
    /* While the thread pool works, block in the loop (woken by its completion, or by this timer
     * after 1 ms) instead of spinning against the pool's threads for the CPU. */
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    int idle = 0; /* consecutive idle turns (fuzz_net.h) */
    for (int quiet = 0;; quiet++) {
        bool moved = false;
        size_t may = len - sent;
        if (!wr_closed && sent < len && ops && ops->rewrite)
            may = ops->rewrite(ud, in, sent, len, out, outlen, idle);
        if (!wr_closed && may > 0) {
            size_t n = may < step ? may : step;
            ssize_t w = send(cfd, in + sent, n, MSG_NOSIGNAL);
            if (w > 0) {
                sent += (size_t)w;
                moved = true;
                quiet = 0;
                last_progress = uv_hrtime();
            } else if (w < 0 && errno != EAGAIN) {
                wr_closed = true; /* the server closed on us (EPIPE/ECONNRESET) */
            }
        }
        if (!wr_closed && sent == len && idle >= FUZZ_NET_IDLE_TURNS) {
            /* The server answered what it will answer without more input: half-close (httpd
             * treats an EOF during a pending request as an abort, so closing right after the
             * last byte would cut every asynchronous answer). */
            shutdown(cfd, SHUT_WR);
            wr_closed = true;
            moved = true;
            quiet = 0;
            last_progress = uv_hrtime();
        }
        /* Idle turns count only where they decide something: the half-close once all is sent,
         * and rewrite() (fuzz_net.h). Until the client sees the server's EOF (below) and before
         * the server is stopped, sv[0] is still the server's end of the connection. */
        bool need_idle = !wr_closed && (sent == len || (ops && ops->rewrite));
        bool watch = need_idle && !server_closed && !stopped;
        int unread0 = watch ? unread(sv[0]) : 0;
        if (quiet > 0 && ops && ops->busy && ops->busy(ud)) {
            uv_timer_start(&tick, on_tick, 1, 0);
            uv_run(loop, UV_RUN_ONCE);
            uv_timer_stop(&tick);
        } else {
            uv_run(loop, UV_RUN_NOWAIT);
        }
        if (ops && ops->turn && ops->turn(ud))
            moved = true;
        if (ops && ops->busy && ops->busy(ud)) {
            /* Waiting on the thread pool, which may take a while on a loaded machine: not a
             * hang (a stuck job trips libFuzzer's -timeout instead). */
            quiet = 0;
            moved = true;
            last_progress = uv_hrtime();
        }
        while (!server_closed) {
            static char buf[256 * 1024];
            ssize_t got = recv(cfd, buf, sizeof(buf), 0);
            if (got > 0) {
                quiet = 0;
                moved = true;
                last_progress = uv_hrtime();
                size_t k = (size_t)got < outcap - outlen ? (size_t)got : outcap - outlen;
                memcpy(out + outlen, buf, k);
                outlen += k;
                /* A stream socket's recv takes all that is queued, up to the buffer: a short
                 * read leaves nothing behind (an EOF right after shows on the next turn). */
                if ((size_t)got < sizeof(buf))
                    break;
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                server_closed = true;
            } else {
                break;
            }
        }
        watch = watch && !server_closed;
        if (!moved && (!loop_idle(loop) || (watch && unread(sv[0]) != unread0)))
            moved = true;
        idle = moved || !need_idle ? 0 : idle + 1;
        if (server_closed && !stopped && !(ops && ops->pending && ops->pending(ud))) {
            stop(ops, ud, &r);
            stopped = true;
        }
        if (r.srv_done)
            break;
        if (quiet >= MAX_QUIET && !stopped && uv_hrtime() - last_progress > quiet_ns) {
            /* Nothing moves any more (the server neither reads, answers nor closes) while its
             * timers are seconds away: the connection hangs. */
            fprintf(stderr, "fuzz_net: no progress for %d turns (sent %zu/%zu), client got %zu "
                    "bytes:\n%.*s\n", quiet, sent, len, outlen, (int)outlen, out);
            /* FUZZ_HTTP_ALLOW_HANG=1 lets a long run go on past a known, reported hang. */
            FUZZ_CHECK(allow_hang && "connection hangs");
            stop(ops, ud, &r);
            stopped = true;
        }
        FUZZ_CHECK(uv_hrtime() - last_progress < MAX_STUCK_NS);
    }
    close(cfd);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    /* The server and whatever routed to it left nothing on the loop. */
    FUZZ_CHECK(uv_run(loop, UV_RUN_NOWAIT) == 0);
    FUZZ_CHECK(!uv_loop_alive(loop));
    if (getenv("FUZZ_HTTP_DUMP"))
        fprintf(stderr, "--- %zu response bytes:\n%.*s\n---\n", outlen, (int)outlen, out);
    return outlen;
}
