/* Fuzz target: YAML config loading (src/common/cfg.c, config.c). The first byte picks the node
 * or tracker table and the path: p2p_cfg_load_string over the defaults, or the whole role loader
 * (file read, cross-field checks) through a memfd. Also the size/duration scalar parsers. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "fuzz.h"

#define MAX_YAML (256 * 1024)

static void check_strings_loaded(const struct p2p_cfg_field *f, size_t n, const void *target,
                                 bool ok)
{
    /* After any load, every string field is a valid (possibly empty) C string: defaults first,
     * then values replaced, never left dangling. */
    for (size_t i = 0; i < n; i++) {
        const char *base = (const char *)target + f[i].offset;
        if (f[i].type == P2P_CFG_STR || f[i].type == P2P_CFG_ENUM) {
            const char *s = *(char *const *)base;
            FUZZ_CHECK(s != NULL);
            size_t len = strlen(s);
            if (ok)
                FUZZ_CHECK(len <= (f[i].max ? f[i].max : 4096));
            if (ok && f[i].type == P2P_CFG_ENUM) {
                bool found = false;
                for (const char *const *c = f[i].choices; c && *c; c++)
                    found = found || strcmp(*c, s) == 0;
                FUZZ_CHECK(found);
            }
        } else if (ok && (f[i].type == P2P_CFG_U64 || f[i].type == P2P_CFG_SIZE ||
                          f[i].type == P2P_CFG_DURATION)) {
            uint64_t v = *(const uint64_t *)base;
            FUZZ_CHECK(v >= f[i].min && (f[i].max == 0 || v <= f[i].max));
        } else if (f[i].type == P2P_CFG_STRLIST) {
            const struct p2p_cfg_strlist *l = (const struct p2p_cfg_strlist *)base;
            FUZZ_CHECK(l->n == 0 || l->v != NULL);
            for (size_t k = 0; k < l->n; k++)
                FUZZ_CHECK(l->v[k] != NULL);
        }
    }
}

static void load_table(const struct p2p_cfg_field *f, size_t n, void *target, const char *yaml,
                       size_t len)
{
    char err[512];
    err[0] = '\0';
    p2p_cfg_defaults(f, n, target);
    int rc = p2p_cfg_load_string(f, n, target, yaml, len, "fuzz.yaml", err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    FUZZ_CHECK(rc == 0 || err[0] != '\0');
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    check_strings_loaded(f, n, target, rc == 0);
    p2p_cfg_free(f, n, target);
}

/* The role loaders read a file: give them the input as a memfd seen through /proc. */
static void load_role_file(bool node, const char *yaml, size_t len)
{
    int fd = memfd_create("fuzzcfg", MFD_CLOEXEC);
    if (fd < 0)
        return;
    if (write(fd, yaml, len) != (ssize_t)len) {
        close(fd);
        return;
    }
    char path[64], err[512];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    char *used = NULL;
    if (node) {
        struct p2p_node_cfg cfg;
        if (p2p_node_cfg_load(&cfg, path, &used, err, sizeof(err)) == 0) {
            FUZZ_CHECK(used != NULL);
            check_strings_loaded(p2p_node_cfg_fields, p2p_node_cfg_nfields, &cfg, true);
            p2p_node_cfg_free(&cfg);
        }
    } else {
        struct p2p_tracker_cfg cfg;
        if (p2p_tracker_cfg_load(&cfg, path, &used, err, sizeof(err)) == 0) {
            FUZZ_CHECK(used != NULL);
            check_strings_loaded(p2p_tracker_cfg_fields, p2p_tracker_cfg_nfields, &cfg, true);
            p2p_tracker_cfg_free(&cfg);
        }
    }
    free(used);
    close(fd);
}

static void check_scalars(const char *s)
{
    uint64_t v;
    if (p2p_cfg_parse_size(s, &v) == 0 && strspn(s, "0123456789") == strlen(s)) {
        FUZZ_CHECK(strtoull(s, NULL, 10) == v); /* bare numbers are bytes */
    }
    if (p2p_cfg_parse_duration_ms(s, &v) == 0 && strspn(s, "0123456789") == strlen(s)) {
        unsigned long long secs = strtoull(s, NULL, 10);
        FUZZ_CHECK(secs <= UINT64_MAX / 1000 && v == secs * 1000); /* bare numbers are s */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        p2p_log_setup(P2P_LOG_OFF, P2P_LOG_TEXT, "fuzz");
        quiet = true;
    }
    if (size < 1 || size > MAX_YAML)
        return 0;
    unsigned mode = data[0] & 3;
    char *yaml = p2p_xstrndup((const char *)data + 1, size - 1); /* NUL-terminated copy */
    size_t len = size - 1;   /* the real length: embedded NULs must be handled too */
    union {
        struct p2p_node_cfg node;
        struct p2p_tracker_cfg tracker;
    } u;
    switch (mode) {
    case 0:
        load_table(p2p_node_cfg_fields, p2p_node_cfg_nfields, &u.node, yaml, len);
        break;
    case 1:
        load_table(p2p_tracker_cfg_fields, p2p_tracker_cfg_nfields, &u.tracker, yaml, len);
        break;
    case 2:
    case 3:
        load_role_file(mode == 2, yaml, len);
        break;
    }
    if (len <= 64 && memchr(yaml, '\0', len) == NULL)
        check_scalars(yaml);
    free(yaml);
    return 0;
}
