/* The tracker's and the node's configuration tables (keys, types, defaults, bounds), their
 * loading, and the cross-field checks that run after a load (docs/CONFIG.md). */
#include "common/config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define KiB (1024ULL)
#define MiB (1024ULL * 1024)

static const char *const web_modes[] = {"release", "debug", "test", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "warning", "error", "off", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const store_types[] = {"memory", "redis", NULL};
static const char *const verify_modes[] = {"size", "full", NULL};

#define T_OFF(m) offsetof(struct p2p_tracker_cfg, m)
#define N_OFF(m) offsetof(struct p2p_node_cfg, m)

const struct p2p_cfg_field p2p_tracker_cfg_fields[] = {
    {"web.mode", P2P_CFG_ENUM, T_OFF(web_mode), "release", 0, 0, web_modes},
    {"web.listen_address", P2P_CFG_STR, T_OFF(listen_address), ":35330", 0, 256, NULL},
    {"piece_size", P2P_CFG_SIZE, T_OFF(piece_size), "1048576", 16 * KiB, 64 * MiB, NULL},
    {"session_expire", P2P_CFG_DURATION, T_OFF(session_expire_ms), "10s", 1, 0, NULL},
    {"session_check_interval", P2P_CFG_DURATION, T_OFF(session_check_interval_ms), "3s", 1, 0,
     NULL},
    {"auth_token", P2P_CFG_STR, T_OFF(auth_token), "", 0, 1024, NULL},
    {"max_peers", P2P_CFG_U64, T_OFF(max_peers), "50", 1, 10000, NULL},
    {"max_nodes", P2P_CFG_U64, T_OFF(max_nodes), "100000", 1, 100000000, NULL},
    {"max_files", P2P_CFG_U64, T_OFF(max_files), "100000", 1, 100000000, NULL},
    /* A seed file is capped at 64 MiB (P2P_SEED_MAX_BYTES): at ~130 bytes per piece entry it
     * lists about 500k pieces at most, so larger counts only serve to waste memory. */
    {"max_pieces", P2P_CFG_U64, T_OFF(max_pieces), "524288", 1, 16777216, NULL},
    /* Memory budget (docs/CONFIG.md): 4 B of holder counts per piece of every file (256 MiB at
     * the default), plus the holders' bitfields (1 GiB); ~1.3 GiB in all at worst. */
    {"max_total_pieces", P2P_CFG_U64, T_OFF(max_total_pieces), "67108864", 1, 1ULL << 40, NULL},
    {"max_holder_bytes", P2P_CFG_SIZE, T_OFF(max_holder_bytes), "1GiB", 1, 0, NULL},
    {"store.type", P2P_CFG_ENUM, T_OFF(store_type), "memory", 0, 0, store_types},
    {"store.redis_url", P2P_CFG_STR, T_OFF(redis_url), "redis://127.0.0.1:6379", 0, 1024, NULL},
    {"log.level", P2P_CFG_ENUM, T_OFF(log.level), "info", 0, 0, log_levels},
    {"log.format", P2P_CFG_ENUM, T_OFF(log.format), "text", 0, 0, log_formats},
};
const size_t p2p_tracker_cfg_nfields = P2P_ARRAY_LEN(p2p_tracker_cfg_fields);

const struct p2p_cfg_field p2p_node_cfg_fields[] = {
    {"web.mode", P2P_CFG_ENUM, N_OFF(web_mode), "release", 0, 0, web_modes},
    {"web.listen_address", P2P_CFG_STR, N_OFF(listen_address), ":35331", 0, 256, NULL},
    {"advertise_address", P2P_CFG_STR, N_OFF(advertise_address), "", 0, 256, NULL},
    {"zone", P2P_CFG_STR, N_OFF(zone), "", 0, 128, NULL},
    {"piece_size", P2P_CFG_SIZE, N_OFF(piece_size), "1048576", 16 * KiB, 64 * MiB, NULL},
    {"session_expire", P2P_CFG_DURATION, N_OFF(session_expire_ms), "10s", 1, 0, NULL},
    {"session_check_interval", P2P_CFG_DURATION, N_OFF(session_check_interval_ms), "3s", 1, 0,
     NULL},
    {"download_dir", P2P_CFG_STR, N_OFF(download_dir), "./data", 0, 4096, NULL},
    {"complete_dir", P2P_CFG_STR, N_OFF(complete_dir), "", 0, 4096, NULL},
    {"trackers", P2P_CFG_STRLIST, N_OFF(trackers), NULL, 0, 64, NULL},
    {"max_download_concurrency", P2P_CFG_U64, N_OFF(max_download_concurrency), "16", 1, 1024,
     NULL},
    {"max_peer_concurrency", P2P_CFG_U64, N_OFF(max_peer_concurrency), "4", 1, 256, NULL},
    {"max_upload_slots", P2P_CFG_U64, N_OFF(max_upload_slots), "32", 1, 4096, NULL},
    {"upload_rate_limit", P2P_CFG_SIZE, N_OFF(upload_rate_limit), "0", 0, 0, NULL},
    {"download_rate_limit", P2P_CFG_SIZE, N_OFF(download_rate_limit), "0", 0, 0, NULL},
    {"verify_on_scan", P2P_CFG_ENUM, N_OFF(verify_on_scan), "size", 0, 0, verify_modes},
    {"auth_token", P2P_CFG_STR, N_OFF(auth_token), "", 0, 1024, NULL},
    {"max_tasks", P2P_CFG_U64, N_OFF(max_tasks), "64", 1, 100000, NULL},
    {"max_file_size", P2P_CFG_SIZE, N_OFF(max_file_size), "1TiB", 1, 0, NULL},
    {"tus.enabled", P2P_CFG_BOOL, N_OFF(tus.enabled), "true", 0, 0, NULL},
    {"tus.base_path", P2P_CFG_STR, N_OFF(tus.base_path), "/files/", 0, 256, NULL},
    {"tus.dir", P2P_CFG_STR, N_OFF(tus.dir), "", 0, 4096, NULL},
    {"tus.max_size", P2P_CFG_SIZE, N_OFF(tus.max_size), "0", 0, 0, NULL},
    {"tus.expiration", P2P_CFG_DURATION, N_OFF(tus.expiration_ms), "24h", 1, 0, NULL},
    {"tus.hook_url", P2P_CFG_STR, N_OFF(tus.hook_url), "", 0, 2048, NULL},
    {"log.level", P2P_CFG_ENUM, N_OFF(log.level), "info", 0, 0, log_levels},
    {"log.format", P2P_CFG_ENUM, N_OFF(log.format), "text", 0, 0, log_formats},
};
const size_t p2p_node_cfg_nfields = P2P_ARRAY_LEN(p2p_node_cfg_fields);

/* ---- cross-field checks ------------------------------------------------------------------ */

static bool is_hostname(const char *h, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        if (!ok || ++label > 63)
            return false;
    }
    return true;
}

/*
 * Checks "host:port", ":port" (when host_optional) or "[v6]:port". The host is an IPv4 or IPv6
 * literal or a DNS name; the port is decimal 0..65535 (0 only when port0_ok).
 */
static int check_hostport(const char *s, bool host_optional, bool port0_ok, char *why,
                          size_t whylen)
{
    const char *colon;
    const char *host = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') {
            snprintf(why, whylen, "expected [ipv6]:port");
            return -1;
        }
        char v6[64];
        size_t n = (size_t)(rb - s - 1);
        struct in6_addr a6;
        if (n == 0 || n >= sizeof v6) {
            snprintf(why, whylen, "bad IPv6 address");
            return -1;
        }
        memcpy(v6, s + 1, n);
        v6[n] = '\0';
        if (inet_pton(AF_INET6, v6, &a6) != 1) {
            snprintf(why, whylen, "bad IPv6 address '%s'", v6);
            return -1;
        }
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(why, whylen, "expected host:port");
            return -1;
        }
        hlen = (size_t)(colon - host);
        if (memchr(host, ':', hlen)) {
            snprintf(why, whylen, "an IPv6 address must be written in brackets: [addr]:port");
            return -1;
        }
        if (hlen == 0 && !host_optional) {
            snprintf(why, whylen, "host missing (expected host:port)");
            return -1;
        }
        if (hlen > 0 && !is_hostname(host, hlen)) {
            snprintf(why, whylen, "bad host '%.*s'", (int)(hlen > 64 ? 64 : hlen), host);
            return -1;
        }
    }
    uint64_t port;
    const char *ps = colon + 1;
    if (p2p_parse_u64(ps, strlen(ps), &port) < 0 || port > 65535 || (port == 0 && !port0_ok)) {
        snprintf(why, whylen, "bad port '%.16s' (expected %s..65535)", ps, port0_ok ? "0" : "1");
        return -1;
    }
    return 0;
}

static bool is_pow2(uint64_t v)
{
    return v && (v & (v - 1)) == 0;
}

/* TUS base path: "/seg/.../", URL-safe characters, no empty/dot segments, not under /v1 or /v2. */
static int check_base_path(const char *p, char *why, size_t whylen)
{
    size_t len = strlen(p);
    if (len < 3 || p[0] != '/' || p[len - 1] != '/') {
        snprintf(why, whylen, "must start and end with '/' and name a path, e.g. \"/files/\"");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || strchr("/-._~", ch) != NULL;
        if (!ok) {
            snprintf(why, whylen, "character '%c' not allowed (use letters, digits, -._~)", ch);
            return -1;
        }
    }
    if (strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../")) {
        snprintf(why, whylen, "empty, '.' or '..' path segment");
        return -1;
    }
    if (strncmp(p, "/v1/", 4) == 0 || strncmp(p, "/v2/", 4) == 0) {
        snprintf(why, whylen, "must not be under the API paths /v1/ or /v2/");
        return -1;
    }
    return 0;
}

#define CHECK_FAIL(key, ...)                                                                       \
    do {                                                                                           \
        char why_[256];                                                                            \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                                  \
        snprintf(err, errlen, "%s: %s: %s", where, key, why_);                                     \
        return -1;                                                                                 \
    } while (0)

static int check_common(const char *where, const char *listen, uint64_t piece_size,
                        uint64_t expire_ms, uint64_t check_ms, char *err, size_t errlen)
{
    char why[160];
    if (check_hostport(listen, true, true, why, sizeof why) < 0)
        CHECK_FAIL("web.listen_address", "'%.64s': %s", listen, why);
    if (!is_pow2(piece_size) || piece_size < 16 * KiB || piece_size > 64 * MiB)
        CHECK_FAIL("piece_size", "%llu must be a power of two from 16KiB to 64MiB",
                   (unsigned long long)piece_size);
    if (expire_ms == 0)
        CHECK_FAIL("session_expire", "must be greater than 0");
    if (check_ms == 0)
        CHECK_FAIL("session_check_interval", "must be greater than 0");
    return 0;
}

static int tracker_check(const struct p2p_tracker_cfg *cfg, const char *where, char *err,
                         size_t errlen)
{
    if (check_common(where, cfg->listen_address, cfg->piece_size, cfg->session_expire_ms,
                     cfg->session_check_interval_ms, err, errlen) < 0)
        return -1;
    if (strcmp(cfg->store_type, "redis") == 0 && strncmp(cfg->redis_url, "redis://", 8) != 0 &&
        strncmp(cfg->redis_url, "unix://", 7) != 0)
        CHECK_FAIL("store.redis_url", "'%.64s' must start with redis:// or unix://",
                   cfg->redis_url);
    return 0;
}

/* The tracker's rule for zones (src/tracker/proto.c): at most 64 bytes of printable ASCII
 * without space, '"' or '\\'; empty = none. */
static bool zone_ok(const char *z)
{
    size_t n = 0;
    for (; z[n]; n++)
        if (n >= 64 || (unsigned char)z[n] <= 0x20 || (unsigned char)z[n] >= 0x7f ||
            z[n] == '"' || z[n] == '\\')
            return false;
    return true;
}

static int node_check(const struct p2p_node_cfg *cfg, const char *where, char *err, size_t errlen)
{
    char why[160];
    if (check_common(where, cfg->listen_address, cfg->piece_size, cfg->session_expire_ms,
                     cfg->session_check_interval_ms, err, errlen) < 0)
        return -1;
    if (cfg->advertise_address[0] &&
        check_hostport(cfg->advertise_address, false, false, why, sizeof why) < 0)
        CHECK_FAIL("advertise_address", "'%.64s': %s", cfg->advertise_address, why);
    if (cfg->download_dir[0] == '\0')
        CHECK_FAIL("download_dir", "must not be empty");
    if (!zone_ok(cfg->zone))
        CHECK_FAIL("zone", "at most 64 printable characters, no spaces, quotes or backslashes");
    for (size_t i = 0; i < cfg->trackers.n; i++)
        if (check_hostport(cfg->trackers.v[i], false, false, why, sizeof why) < 0)
            CHECK_FAIL("trackers", "entry %zu '%.64s': %s", i + 1, cfg->trackers.v[i], why);
    if (cfg->max_download_concurrency < 1)
        CHECK_FAIL("max_download_concurrency", "must be at least 1");
    if (cfg->max_peer_concurrency < 1)
        CHECK_FAIL("max_peer_concurrency", "must be at least 1");
    if (cfg->max_upload_slots < 1)
        CHECK_FAIL("max_upload_slots", "must be at least 1");
    if (check_base_path(cfg->tus.base_path, why, sizeof why) < 0)
        CHECK_FAIL("tus.base_path", "'%.64s': %s", cfg->tus.base_path, why);
    if (cfg->tus.expiration_ms == 0)
        CHECK_FAIL("tus.expiration", "must be greater than 0");
    if (cfg->tus.hook_url[0] && strncmp(cfg->tus.hook_url, "http://", 7) != 0 &&
        strncmp(cfg->tus.hook_url, "https://", 8) != 0)
        CHECK_FAIL("tus.hook_url", "'%.64s' must be an http:// or https:// URL",
                   cfg->tus.hook_url);
    return 0;
}

/* web.mode "debug" is the original's switch for verbose output: it means log level debug. */
static void apply_web_mode(const char *mode, char **level)
{
    if (strcmp(mode, "debug") == 0 && strcmp(*level, "debug") != 0) {
        free(*level);
        *level = p2p_xstrdup("debug");
    }
}

/* Shared body of both loaders. */
static int load_role(const char *role, const struct p2p_cfg_field *fields, size_t n, void *cfg,
                     const char *explicit_path, char **used_path, char *err, size_t errlen,
                     int (*check)(const void *cfg, const char *where, char *err, size_t errlen))
{
    int rc = -1;
    char *path = p2p_cfg_find(role, explicit_path);
    p2p_cfg_defaults(fields, n, cfg);
    if (path && p2p_cfg_load_file(fields, n, cfg, path, err, errlen) < 0)
        goto out;
    if (check(cfg, path ? path : "(defaults)", err, errlen) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0) {
        p2p_cfg_free(fields, n, cfg);
        free(path);
        path = NULL;
    }
    if (used_path)
        *used_path = path;
    else
        free(path);
    return rc;
}

static int tracker_check_v(const void *cfg, const char *where, char *err, size_t errlen)
{
    return tracker_check(cfg, where, err, errlen);
}

static int node_check_v(const void *cfg, const char *where, char *err, size_t errlen)
{
    return node_check(cfg, where, err, errlen);
}

int p2p_tracker_cfg_load(struct p2p_tracker_cfg *cfg, const char *explicit_path,
                         char **used_path, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    int rc = load_role("tracker", p2p_tracker_cfg_fields, p2p_tracker_cfg_nfields, cfg,
                       explicit_path, used_path, err, errlen, tracker_check_v);
    if (rc == 0)
        apply_web_mode(cfg->web_mode, &cfg->log.level);
    return rc;
}

void p2p_tracker_cfg_free(struct p2p_tracker_cfg *cfg)
{
    if (cfg)
        p2p_cfg_free(p2p_tracker_cfg_fields, p2p_tracker_cfg_nfields, cfg);
}

int p2p_node_cfg_load(struct p2p_node_cfg *cfg, const char *explicit_path, char **used_path,
                      char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    int rc = load_role("node", p2p_node_cfg_fields, p2p_node_cfg_nfields, cfg, explicit_path,
                       used_path, err, errlen, node_check_v);
    if (rc == 0)
        apply_web_mode(cfg->web_mode, &cfg->log.level);
    return rc;
}

void p2p_node_cfg_free(struct p2p_node_cfg *cfg)
{
    if (cfg)
        p2p_cfg_free(p2p_node_cfg_fields, p2p_node_cfg_nfields, cfg);
}
