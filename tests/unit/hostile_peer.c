/* A fake peer for tests/integration/hostile_peer.sh: a tiny HTTP server on 127.0.0.1:0 that
 * answers GET /v2/piece/{infoHash}/{index} from a real file, but misbehaves in one way per run
 * (longer than the piece, shorter, chunked past the end, slow, smuggled extra response). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HEAD_CAP 16384      /* request head cap */
#define EXTRA 4096          /* bytes beyond the piece for the "long" modes */
#define SLOW_STEP 512       /* slow mode: bytes per step ... */
#define SLOW_STEP_MS 100    /* ... every this many ms */
#define MAX_PIECE (64u << 20)

enum mode { M_GOOD, M_LONG_CL, M_LONG_CHUNKED, M_SHORT_CLOSE, M_SHORT_CL, M_SLOW, M_EXCESS };

static const char *const mode_names[] = {"good",     "long-cl", "long-chunked", "short-close",
                                         "short-cl", "slow",    "excess"};

static enum mode g_mode;
static int g_file = -1;
static uint64_t g_size;
static uint64_t g_plen;
static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

static void note(const char *what, long index)
{
    pthread_mutex_lock(&g_out);
    printf("REQ %s %ld\n", what, index);
    fflush(stdout);
    pthread_mutex_unlock(&g_out);
}

/* Reads one request head into buf (NUL-terminated); returns its length or -1 (EOF, error, too
 * large). Bytes past the head (pipelining) are not expected from libcurl and are dropped. */
static ssize_t read_head(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end)
            return end + 4 - buf;
    }
    return -1;
}

/* Parses "GET /v2/piece/<hash>/<index> ": the index, or -1 for another path. */
static long piece_index(const char *head)
{
    static const char pre[] = "GET /v2/piece/";
    if (strncmp(head, pre, sizeof pre - 1) != 0)
        return -1;
    const char *p = head + sizeof pre - 1;
    const char *slash = strchr(p, '/');
    const char *sp = strchr(p, ' ');
    if (!slash || !sp || slash > sp)
        return -1;
    char *end = NULL;
    long i = strtol(slash + 1, &end, 10);
    return end == sp && i >= 0 ? i : -1;
}

/* Answers one piece request the way the mode says. Returns 0 to keep the connection. */
static int answer_piece(int fd, long index)
{
    uint64_t off = (uint64_t)index * g_plen;
    if (off >= g_size) {
        send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return 0;
    }
    size_t len = (size_t)(g_size - off < g_plen ? g_size - off : g_plen);
    char *data = malloc(len + EXTRA);
    if (!data)
        return -1;
    int rc = -1;
    if (pread(g_file, data, len, (off_t)off) != (ssize_t)len)
        goto out;
    memset(data + len, 'J', EXTRA); /* junk past the real piece */
    char head[512];
    note(mode_names[g_mode], index);
    switch (g_mode) {
    case M_GOOD:
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
        rc = send_str(fd, head) < 0 || send_all(fd, data, len) < 0 ? -1 : 0;
        break;
    case M_LONG_CL: /* a lying Content-Length: the right bytes, then more */
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                 len + EXTRA);
        rc = send_str(fd, head) < 0 || send_all(fd, data, len + EXTRA) < 0 ? -1 : 0;
        break;
    case M_LONG_CHUNKED: /* chunked, no length announced: the right bytes, then a junk chunk */
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n", len);
        if (send_str(fd, head) < 0 || send_all(fd, data, len) < 0)
            break;
        snprintf(head, sizeof head, "\r\n%x\r\n", EXTRA);
        if (send_str(fd, head) < 0 || send_all(fd, data + len, EXTRA) < 0)
            break;
        rc = send_str(fd, "\r\n0\r\n\r\n");
        break;
    case M_SHORT_CLOSE: /* honest length, half the bytes, then gone */
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
        send_str(fd, head);
        send_all(fd, data, len / 2);
        rc = -1;
        break;
    case M_SHORT_CL: /* a complete response that is shorter than the piece */
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len / 2);
        rc = send_str(fd, head) < 0 || send_all(fd, data, len / 2) < 0 ? -1 : 0;
        break;
    case M_SLOW: /* the right bytes, trickled */
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
        if (send_str(fd, head) < 0)
            break;
        rc = 0;
        for (size_t done = 0; done < len && rc == 0; done += SLOW_STEP) {
            size_t n = len - done < SLOW_STEP ? len - done : SLOW_STEP;
            rc = send_all(fd, data + done, n);
            struct timespec ts = {.tv_nsec = SLOW_STEP_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        break;
    case M_EXCESS: /* a correct response followed by a smuggled second one full of junk */
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
        if (send_str(fd, head) < 0 || send_all(fd, data, len) < 0)
            break;
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", EXTRA);
        rc = send_str(fd, head) < 0 || send_all(fd, data + len, EXTRA) < 0 ? -1 : 0;
        break;
    }
out:
    free(data);
    return rc;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(HEAD_CAP);
    while (buf) {
        if (read_head(fd, buf, HEAD_CAP) < 0)
            break;
        long index = piece_index(buf);
        if (index >= 0) {
            if (answer_piece(fd, index) < 0)
                break;
        } else if (strncmp(buf, "GET /healthz ", 13) == 0) {
            if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") < 0)
                break;
        } else if (send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") < 0) {
            break;
        }
    }
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: hostile_peer good|long-cl|long-chunked|short-close|short-cl|"
                        "slow|excess FILE PIECE_LENGTH [LIFETIME_S]\n");
        return 2;
    }
    size_t m = 0;
    while (m < sizeof mode_names / sizeof mode_names[0] && strcmp(mode_names[m], argv[1]) != 0)
        m++;
    char *end = NULL;
    unsigned long long plen = strtoull(argv[3], &end, 10);
    long life = argc == 5 ? strtol(argv[4], NULL, 10) : 120;
    if (m == sizeof mode_names / sizeof mode_names[0] || *end || plen == 0 || plen > MAX_PIECE ||
        life <= 0) {
        fprintf(stderr, "hostile_peer: bad arguments\n");
        return 2;
    }
    g_mode = (enum mode)m;
    g_plen = plen;
    struct stat st;
    g_file = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (g_file < 0 || fstat(g_file, &st) < 0) {
        fprintf(stderr, "hostile_peer: %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    g_size = (uint64_t)st.st_size;
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 64) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0) {
        fprintf(stderr, "hostile_peer: listen: %s\n", strerror(errno));
        return 2;
    }
    printf("LISTENING 127.0.0.1:%u\n", ntohs(a.sin_port));
    fflush(stdout);

    time_t stop = time(NULL) + life;
    while (time(NULL) < stop) {
        struct pollfd p = {.fd = ls, .events = POLLIN};
        if (poll(&p, 1, 500) <= 0)
            continue;
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 30};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, serve, (void *)(intptr_t)fd) != 0)
            close(fd);
        pthread_attr_destroy(&at);
    }
    fprintf(stderr, "hostile_peer: lifetime of %ld s over\n", life);
    _exit(0); /* serving threads may still run: no exit-time leak check of their buffers */
}
