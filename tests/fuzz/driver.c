/* Crash-regression driver: feeds every file named on the command line (directories are walked,
 * one level, dot files skipped) to LLVMFuzzerTestOneInput, so the fuzz targets run without
 * libFuzzer under gcc, ASan and UBSan in `make test` / `make asan`. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define DRIVER_MAX_INPUT (8u << 20) /* larger files are a mistake in the corpus */

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* Sized from fstat: an 8 MiB buffer per input made the ASan runs spend most of their time
     * in page faults. The target gets an exactly sized buffer, as libFuzzer gives, so ASan sees
     * overreads. */
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > DRIVER_MAX_INPUT) {
        fprintf(stderr, "driver: %s: unreadable or too large\n", path);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *in = malloc(n ? n : 1);
    if (!in)
        abort();
    /* The whole file and nothing more (a file that changed meanwhile is an error). */
    int bad = fread(in, 1, n, f) != n || fgetc(f) != EOF || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "driver: %s: read error\n", path);
        free(in);
        return -1;
    }
    if (getenv("FUZZ_DRIVER_VERBOSE"))
        fprintf(stderr, "driver: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in dir in name order; returns the count or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "driver: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(*names));
            if (!names)
                abort();
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (!names[n])
            abort();
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_str);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(names[i]) < 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;
    int rc = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            /* A regress/ directory may not exist yet: that is no input, not an error. */
            if (errno == ENOENT)
                continue;
            fprintf(stderr, "driver: %s: %s\n", argv[i], strerror(errno));
            rc = 1;
            continue;
        }
        long n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : (run_file(argv[i]) < 0 ? -1 : 1);
        if (n < 0)
            rc = 1;
        else
            total += n;
    }
    fprintf(stderr, "driver: %ld inputs ran\n", total);
    if (total == 0) {
        fprintf(stderr, "driver: no inputs found (wrong path?)\n");
        rc = 1;
    }
    return rc;
}
