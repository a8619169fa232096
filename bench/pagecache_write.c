/* Page-cache write cost with many writers (docs/BENCHMARKS.md, Swarm, "S3 is CPU-bound"): P
 * processes each write one 95 MiB file in 1 MiB pieces in a scattered order, with
 * sync_file_range(WRITE) after each piece and fsync at the end, as a downloading node does, but
 * with no network and no hashing. Prints the wall time and GB/s; run it under /usr/bin/time to
 * see the system time.
 *   cc -O2 -o /tmp/pw bench/pagecache_write.c && /usr/bin/time /tmp/pw 64 /tmp/pw-dir
 * The directory is created if missing; its files are removed at the end. Variants (environment):
 * PW_FALLOC=1 fallocate()s each file first (as the node does since session 3), PW_DIRECT=1 opens
 * it O_DIRECT (no page-cache copy; the node's path for whole-block pieces), PW_NOSYNC=1 leaves
 * out the sync_file_range calls. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIECES 95
#define PIECE (1 << 20)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int writer(const char *dir, int k)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/w%d", dir, k);
    char *buf = aligned_alloc(4096, PIECE);
    if (!buf)
        return 1;
    memset(buf, 0x5a ^ k, PIECE);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC | (getenv("PW_DIRECT") ? O_DIRECT : 0),
                  0644);
    if (fd < 0 || ftruncate(fd, (off_t)PIECES * PIECE) < 0)
        return 1;
    if (getenv("PW_FALLOC") && fallocate(fd, 0, 0, (off_t)PIECES * PIECE) < 0)
        return 1;
    for (int i = 0; i < PIECES; i++) {
        off_t off = (off_t)((i * 37) % PIECES) * PIECE; /* every piece once, scattered */
        if (pwrite(fd, buf, PIECE, off) != PIECE)
            return 1;
        if (!getenv("PW_NOSYNC"))
            sync_file_range(fd, off, PIECE, SYNC_FILE_RANGE_WRITE);
        usleep(1000); /* a node receives pieces over time, not in one burst */
    }
    int rc = fsync(fd) < 0;
    close(fd);
    unlink(path);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3 || atoi(argv[1]) < 1 || atoi(argv[1]) > 1024) {
        fprintf(stderr, "usage: %s PROCESSES DIR\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    mkdir(argv[2], 0755);
    double t = now_s();
    for (int k = 0; k < n; k++) {
        pid_t p = fork();
        if (p < 0)
            return 1;
        if (p == 0)
            _exit(writer(argv[2], k));
    }
    int status, bad = 0;
    while (wait(&status) > 0)
        bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    double d = now_s() - t;
    printf("%d writers x %d MiB: %.2f s, %.2f GB/s%s\n", n, PIECES, d,
           (double)n * PIECES * PIECE / 1e9 / d, bad ? " (some writers failed)" : "");
    return bad != 0;
}
