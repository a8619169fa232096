/* Hostile HTTP client for tests/integration/hostile_http.sh: one raw-socket misbehaviour per run
 * against a real tracker or node on 127.0.0.1 (oversized headers, slowloris, short bodies, bad
 * chunk sizes, thousands of idle connections). Exit 0 = the server behaved, 1 = not, 2 = usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RESP_CAP 4096            /* bytes of a response kept (status line + error JSON) */
#define IO_TIMEOUT_MS 10000      /* per-socket send/receive/connect timeout */
#define MAX_CONNS 20000

static struct sockaddr_in g_addr;

struct hconn {
    int fd;
    bool closed;      /* the server closed (EOF, reset, or a failed send) */
    uint64_t closed_ms;
    size_t got;
    char buf[RESP_CAP];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int parse_addr(const char *s)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return -1;
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &g_addr.sin_addr) == 1 ? 0 : -1;
}

static long arg_long(const char *s, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < lo || v > hi) {
        fprintf(stderr, "hostile_client: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

/* A connected socket with bounded blocking I/O, or -1. */
static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends everything; 0 or -errno (EPIPE/ECONNRESET when the server has closed). */
static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads what is available on c (non-blocking use after poll); marks it closed at EOF/error. */
static void hconn_read(struct hconn *c)
{
    char tmp[16384];
    ssize_t n = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        c->closed = true;
        c->closed_ms = now_ms();
        return;
    }
    size_t keep = (size_t)n < sizeof c->buf - 1 - c->got ? (size_t)n : sizeof c->buf - 1 - c->got;
    memcpy(c->buf + c->got, tmp, keep);
    c->got += keep;
    c->buf[c->got] = '\0';
}

/* Waits until the server closes c or timeout_ms pass; collects the response bytes. */
static void hconn_wait_close(struct hconn *c, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (!c->closed) {
        uint64_t now = now_ms();
        if (now >= end)
            return;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(end - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        hconn_read(c);
    }
}

/* The status code of the first response in buf, or 0. */
static int status_of(const char *buf, size_t len)
{
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
        return 0;
    return atoi(buf + 9);
}

/* Sends req on a new connection and expects a response with status want followed by the server
 * closing the connection. */
static int expect_close(const char *what, const char *req, size_t len, int want)
{
    struct hconn *c = calloc(1, sizeof *c);
    int rc = 1;
    if (!c)
        return 2;
    c->fd = dial();
    if (c->fd < 0) {
        fprintf(stderr, "%s: connect: %s\n", what, strerror(errno));
        goto out;
    }
    int src = send_all(c->fd, req, len);
    uint64_t t0 = now_ms();
    hconn_wait_close(c, IO_TIMEOUT_MS);
    int st = status_of(c->buf, c->got);
    printf("%s: send %s, status %d, %s after %llu ms\n", what, src ? strerror(-src) : "ok", st,
           c->closed ? "closed" : "NOT closed", (unsigned long long)(now_ms() - t0));
    if (st != want)
        fprintf(stderr, "%s: want status %d, got %d: %.200s\n", what, want, st, c->buf);
    else if (!c->closed)
        fprintf(stderr, "%s: the server kept the connection open\n", what);
    else if (!strstr(c->buf, "\"code\""))
        fprintf(stderr, "%s: the error has no JSON body: %.300s\n", what, c->buf);
    else
        rc = 0;
out:
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return rc;
}

static char *xmalloc(size_t n)
{
    char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "hostile_client: out of memory\n");
        exit(2);
    }
    return p;
}

/* bighead PATH KIB: one header line of KIB KiB -> 431 + close. */
static int mode_bighead(char **av)
{
    size_t big = (size_t)arg_long(av[1], 1, 4096) * 1024;
    char *req = xmalloc(big + 512);
    int n = snprintf(req, 512, "GET %s HTTP/1.1\r\nHost: t\r\nX-Big: ", av[0]);
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    int rc = expect_close("bighead", req, (size_t)n + big + 4, 431);
    free(req);
    return rc;
}

/* manyheaders PATH COUNT: COUNT tiny header lines -> 431 + close. */
static int mode_manyheaders(char **av)
{
    long count = arg_long(av[1], 1, 1000000);
    const char line[] = "X-h: v\r\n";
    size_t len = 512 + (size_t)count * (sizeof line - 1);
    char *req = xmalloc(len);
    size_t n = (size_t)snprintf(req, 512, "GET %s HTTP/1.1\r\nHost: t\r\n", av[0]);
    for (long i = 0; i < count; i++, n += sizeof line - 1)
        memcpy(req + n, line, sizeof line - 1);
    memcpy(req + n, "\r\n", 2);
    int rc = expect_close("manyheaders", req, n + 2, 431);
    free(req);
    return rc;
}

/* badchunk PATH VARIANT: a chunked POST with a broken chunk -> 400 + close. */
static int mode_badchunk(char **av)
{
    static const struct {
        const char *name;
        const char *body;
    } variants[] = {
        {"nonhex", "zz\r\n{}\r\n0\r\n\r\n"},
        {"overflow", "ffffffffffffffffff\r\n{}\r\n0\r\n\r\n"},
        {"negative", "-2\r\n{}\r\n0\r\n\r\n"},
        {"nocrlf", "2\r\n{}0\r\n\r\n"},        /* chunk data not followed by CRLF */
        {"lfonly", "2\n{}\n0\n\n"},                /* bare LF line ends */
        {"empty", "\r\n{}\r\n0\r\n\r\n"},      /* no size at all */
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        if (strcmp(av[1], variants[i].name) != 0)
            continue;
        char req[1024];
        int n = snprintf(req, sizeof req,
                         "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n%s",
                         av[0], variants[i].body);
        char what[64];
        snprintf(what, sizeof what, "badchunk %s", variants[i].name);
        return expect_close(what, req, (size_t)n, 400);
    }
    fprintf(stderr, "badchunk: unknown variant '%s'\n", av[1]);
    return 2;
}

/* slowloris CONNS INTERVAL_MS MIN_MS MAX_MS: CONNS connections each trickle one header byte
 * every INTERVAL_MS, never ending the header block. Every one must be closed by the server
 * between MIN_MS and MAX_MS after its first byte. */
static int mode_slowloris(char **av)
{
    long nc = arg_long(av[0], 1, 1000), iv = arg_long(av[1], 1, 10000);
    long min_ms = arg_long(av[2], 0, 600000), max_ms = arg_long(av[3], 1, 600000);
    static const char start[] = "GET /healthz HTTP/1.1\r\n";
    static const char drip[] = "X-Slow: 1\r\n";
    struct hconn *cs = calloc((size_t)nc, sizeof *cs);
    size_t *pos = calloc((size_t)nc, sizeof *pos);
    int rc = 1, n408 = 0, nclosed = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    if (!cs || !pos) {
        free(cs);
        free(pos);
        return 2;
    }
    for (long i = 0; i < nc; i++)
        cs[i].fd = -1;
    uint64_t t0 = now_ms();
    for (long i = 0; i < nc; i++) {
        cs[i].fd = dial();
        if (cs[i].fd < 0 || send_all(cs[i].fd, start, sizeof start - 1) < 0) {
            fprintf(stderr, "slowloris: connection %ld: %s\n", i, strerror(errno));
            goto out;
        }
    }
    struct pollfd *pf = calloc((size_t)nc, sizeof *pf);
    if (!pf)
        goto out;
    uint64_t next = now_ms() + (uint64_t)iv;
    while (nclosed < nc && now_ms() < t0 + (uint64_t)max_ms + 2000) {
        for (long i = 0; i < nc; i++) {
            pf[i].fd = cs[i].closed ? -1 : cs[i].fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        uint64_t now = now_ms();
        int wait = next > now ? (int)(next - now) : 0;
        if (poll(pf, (nfds_t)nc, wait) < 0 && errno != EINTR)
            break;
        for (long i = 0; i < nc; i++)
            if (!cs[i].closed && pf[i].revents)
                hconn_read(&cs[i]);
        if (now_ms() >= next) {
            next += (uint64_t)iv;
            for (long i = 0; i < nc; i++) {
                if (cs[i].closed)
                    continue;
                if (send_all(cs[i].fd, drip + pos[i] % (sizeof drip - 1), 1) < 0) {
                    cs[i].closed = true;
                    cs[i].closed_ms = now_ms();
                }
                pos[i]++;
            }
        }
        nclosed = 0;
        for (long i = 0; i < nc; i++)
            nclosed += cs[i].closed;
    }
    free(pf);
    for (long i = 0; i < nc; i++) {
        if (!cs[i].closed)
            continue;
        uint64_t el = cs[i].closed_ms - t0;
        lo = el < lo ? el : lo;
        hi = el > hi ? el : hi;
        n408 += status_of(cs[i].buf, cs[i].got) == 408;
    }
    printf("slowloris: closed %d/%ld, 408 answers %d, closed after %llu..%llu ms, header bytes "
           "sent per connection %zu\n",
           nclosed, nc, n408, (unsigned long long)(nclosed ? lo : 0), (unsigned long long)hi,
           pos[0] + sizeof start - 1);
    if (nclosed != nc)
        fprintf(stderr, "slowloris: %ld connection(s) still open after %ld ms\n", nc - nclosed,
                max_ms + 2000);
    else if (lo < (uint64_t)min_ms || hi > (uint64_t)max_ms)
        fprintf(stderr, "slowloris: closed outside %ld..%ld ms\n", min_ms, max_ms);
    else
        rc = 0;
out:
    for (long i = 0; i < nc; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    free(pos);
    return rc;
}

/* shortbody METHOD PATH HOW MIN_MS MAX_MS [HEADER...]: a request announcing Content-Length 1000
 * that sends 100 body bytes, then HOW = close (client goes away), halfclose (client shuts its
 * side: the server must close within MAX_MS) or stall (the server must close between MIN_MS
 * and MAX_MS). The extra HEADERs ("Name: value") replace the default JSON Content-Type. */
static int mode_shortbody(int ac, char **av)
{
    const char *how = av[2];
    long min_ms = arg_long(av[3], 0, 600000), max_ms = arg_long(av[4], 1, 600000);
    char req[4096];
    size_t n = (size_t)snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\n", av[0], av[1]);
    bool ctype = false;
    for (int i = 5; i < ac; i++) {
        ctype = ctype || strncasecmp(av[i], "content-type:", 13) == 0;
        n += (size_t)snprintf(req + n, sizeof req - n, "%s\r\n", av[i]);
        if (n >= sizeof req - 512)
            return 2;
    }
    if (!ctype)
        n += (size_t)snprintf(req + n, sizeof req - n, "Content-Type: application/json\r\n");
    n += (size_t)snprintf(req + n, sizeof req - n, "Content-Length: 1000\r\n\r\n");
    size_t body = 100; /* of the 1000 announced */
    memcpy(req + n, "{\"nodeId\":\"", 11);
    memset(req + n + 11, 'x', body - 11);
    n += body;

    struct hconn c = {.fd = dial()};
    if (c.fd < 0) {
        fprintf(stderr, "shortbody: connect: %s\n", strerror(errno));
        return 1;
    }
    int rc = 1;
    if (send_all(c.fd, req, n) < 0) {
        fprintf(stderr, "shortbody: send: %s\n", strerror(errno));
        goto out;
    }
    if (strcmp(how, "close") == 0) {
        printf("shortbody close: sent %zu of 1000 body bytes and closed\n", body);
        rc = 0;
        goto out;
    }
    if (strcmp(how, "halfclose") == 0)
        shutdown(c.fd, SHUT_WR);
    else if (strcmp(how, "stall") != 0) {
        fprintf(stderr, "shortbody: unknown HOW '%s'\n", how);
        rc = 2;
        goto out;
    }
    uint64_t t0 = now_ms();
    hconn_wait_close(&c, (int)max_ms + 2000);
    uint64_t el = now_ms() - t0;
    printf("shortbody %s: %s after %llu ms, response status %d\n", how,
           c.closed ? "closed by the server" : "NOT closed", (unsigned long long)el,
           status_of(c.buf, c.got));
    if (!c.closed || el > (uint64_t)max_ms)
        fprintf(stderr, "shortbody %s: not closed within %ld ms\n", how, max_ms);
    else if (el < (uint64_t)min_ms)
        fprintf(stderr, "shortbody %s: closed after %llu ms, before %ld ms\n", how,
                (unsigned long long)el, min_ms);
    else
        rc = 0;
out:
    close(c.fd);
    return rc;
}

/* conns COUNT HOLD_MS: opens COUNT idle connections, prints "OPEN COUNT", holds them HOLD_MS
 * (recording what the server sends meanwhile: a 503 + close beyond its cap), then asks
 * GET /healthz on every one still open and prints how many were answered 200. The caller
 * judges the counts. */
static int mode_conns(char **av)
{
    long nc = arg_long(av[0], 1, MAX_CONNS), hold = arg_long(av[1], 0, 600000);
    struct hconn *cs = calloc((size_t)nc, sizeof *cs);
    struct pollfd *pf = calloc((size_t)nc, sizeof *pf);
    int rc = 2;
    long opened = 0, refused = 0, dropped = 0, served = 0, bad = 0;
    if (!cs || !pf)
        goto out;
    for (long i = 0; i < nc; i++)
        cs[i].fd = -1;
    for (long i = 0; i < nc; i++, opened++) {
        cs[i].fd = dial();
        if (cs[i].fd < 0) {
            fprintf(stderr, "conns: connection %ld: %s\n", i, strerror(errno));
            goto out;
        }
    }
    printf("OPEN %ld\n", opened);
    fflush(stdout);
    /* hold: whatever arrives now is unsolicited (a refusal) */
    uint64_t end = now_ms() + (uint64_t)hold;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= end)
            break;
        for (long i = 0; i < nc; i++) {
            pf[i].fd = cs[i].closed ? -1 : cs[i].fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        if (poll(pf, (nfds_t)nc, (int)(end - now)) < 0 && errno != EINTR)
            goto out;
        for (long i = 0; i < nc; i++)
            if (!cs[i].closed && pf[i].revents)
                hconn_read(&cs[i]);
    }
    for (long i = 0; i < nc; i++) {
        if (cs[i].got > 0 && status_of(cs[i].buf, cs[i].got) == 503 && cs[i].closed) {
            refused++;
            cs[i].got = 0;
        } else if (cs[i].got > 0 || cs[i].closed) {
            dropped++;
            fprintf(stderr, "conns: connection %ld: %s, %zu unsolicited bytes: %.100s\n", i,
                    cs[i].closed ? "closed" : "open", cs[i].got, cs[i].buf);
        }
        if (cs[i].closed) {
            close(cs[i].fd);
            cs[i].fd = -1;
            continue;
        }
        static const char hz[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        cs[i].got = 0;
        if (send_all(cs[i].fd, hz, sizeof hz - 1) < 0) {
            cs[i].closed = true;
            bad++;
        }
    }
    /* every still-open connection now has one request: read until the server closes each */
    end = now_ms() + 20000;
    for (;;) {
        long pending = 0;
        for (long i = 0; i < nc; i++) {
            pf[i].fd = cs[i].closed || cs[i].fd < 0 ? -1 : cs[i].fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
            pending += pf[i].fd >= 0;
        }
        uint64_t now = now_ms();
        if (pending == 0 || now >= end)
            break;
        if (poll(pf, (nfds_t)nc, (int)(end - now)) < 0 && errno != EINTR)
            goto out;
        for (long i = 0; i < nc; i++)
            if (pf[i].fd >= 0 && pf[i].revents)
                hconn_read(&cs[i]);
    }
    for (long i = 0; i < nc; i++) {
        if (cs[i].fd < 0)
            continue;
        if (status_of(cs[i].buf, cs[i].got) == 200)
            served++;
        else
            bad++;
    }
    printf("conns: opened=%ld refused503=%ld dropped=%ld served=%ld failed=%ld\n", opened, refused,
           dropped, served, bad);
    rc = 0;
out:
    if (rc)
        printf("conns: opened=%ld (aborted)\n", opened);
    if (cs)
        for (long i = 0; i < nc; i++)
            if (cs[i].fd >= 0)
                close(cs[i].fd);
    free(cs);
    free(pf);
    return rc;
}

/* idle COUNT MIN_MS MAX_MS: opens COUNT connections that never send a byte; the server must
 * close every one (silently) between MIN_MS and MAX_MS after it was opened: its idle timeout. */
static int mode_idle(char **av)
{
    long nc = arg_long(av[0], 1, MAX_CONNS);
    long min_ms = arg_long(av[1], 0, 600000), max_ms = arg_long(av[2], 1, 600000);
    struct hconn *cs = calloc((size_t)nc, sizeof *cs);
    struct pollfd *pf = calloc((size_t)nc, sizeof *pf);
    int rc = 2;
    long nclosed = 0, talked = 0;
    uint64_t lo = UINT64_MAX, hi = 0, t0 = now_ms(), t1;
    if (!cs || !pf)
        goto out;
    for (long i = 0; i < nc; i++)
        cs[i].fd = -1;
    for (long i = 0; i < nc; i++) {
        cs[i].fd = dial();
        if (cs[i].fd < 0) {
            fprintf(stderr, "idle: connection %ld: %s\n", i, strerror(errno));
            goto out;
        }
    }
    t1 = now_ms();
    printf("OPEN %ld\n", nc);
    rc = 1;
    while (nclosed < nc && now_ms() < t0 + (uint64_t)max_ms + 2000) {
        for (long i = 0; i < nc; i++) {
            pf[i].fd = cs[i].closed ? -1 : cs[i].fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        uint64_t now = now_ms();
        if (poll(pf, (nfds_t)nc, (int)(t0 + (uint64_t)max_ms + 2000 - now)) < 0 &&
            errno != EINTR)
            goto out;
        for (long i = 0; i < nc; i++)
            if (!cs[i].closed && pf[i].revents)
                hconn_read(&cs[i]);
        nclosed = 0;
        for (long i = 0; i < nc; i++)
            nclosed += cs[i].closed;
    }
    for (long i = 0; i < nc; i++) {
        talked += cs[i].got > 0;
        if (!cs[i].closed)
            continue;
        /* opened between t0 and t1: measure from the later bound, so early closes show */
        uint64_t el = cs[i].closed_ms > t1 ? cs[i].closed_ms - t1 : 0;
        lo = el < lo ? el : lo;
        hi = cs[i].closed_ms - t0 > hi ? cs[i].closed_ms - t0 : hi;
    }
    printf("idle: closed %ld/%ld (opening took %llu ms), closed after %llu..%llu ms, %ld sent "
           "bytes\n",
           nclosed, nc, (unsigned long long)(t1 - t0), (unsigned long long)(nclosed ? lo : 0),
           (unsigned long long)hi, talked);
    if (nclosed != nc)
        fprintf(stderr, "idle: %ld connection(s) still open after %ld ms\n", nc - nclosed,
                max_ms + 2000);
    else if (lo < (uint64_t)min_ms || hi > (uint64_t)max_ms)
        fprintf(stderr, "idle: closed outside %ld..%ld ms\n", min_ms, max_ms);
    else if (talked)
        fprintf(stderr, "idle: the server sent bytes on %ld idle connection(s)\n", talked);
    else
        rc = 0;
out:
    if (cs)
        for (long i = 0; i < nc; i++)
            if (cs[i].fd >= 0)
                close(cs[i].fd);
    free(cs);
    free(pf);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: hostile_client MODE HOST:PORT ARGS...\n"
            "  bighead PATH KIB                    431 + close for a KIB KiB header line\n"
            "  manyheaders PATH COUNT              431 + close for COUNT header lines\n"
            "  badchunk PATH nonhex|overflow|negative|nocrlf|lfonly|empty   400 + close\n"
            "  slowloris CONNS INTERVAL_MS MIN_MS MAX_MS\n"
            "  shortbody METHOD PATH close|halfclose|stall MIN_MS MAX_MS [HEADER...]\n"
            "  conns COUNT HOLD_MS\n"
            "  idle COUNT MIN_MS MAX_MS\n");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3 || parse_addr(argv[2]) < 0) {
        usage();
        return 2;
    }
    const char *m = argv[1];
    int ac = argc - 3;
    char **av = argv + 3;
    if (strcmp(m, "bighead") == 0 && ac == 2)
        return mode_bighead(av);
    if (strcmp(m, "manyheaders") == 0 && ac == 2)
        return mode_manyheaders(av);
    if (strcmp(m, "badchunk") == 0 && ac == 2)
        return mode_badchunk(av);
    if (strcmp(m, "slowloris") == 0 && ac == 4)
        return mode_slowloris(av);
    if (strcmp(m, "shortbody") == 0 && ac >= 5)
        return mode_shortbody(ac, av);
    if (strcmp(m, "conns") == 0 && ac == 2)
        return mode_conns(av);
    if (strcmp(m, "idle") == 0 && ac == 3)
        return mode_idle(av);
    usage();
    return 2;
}
