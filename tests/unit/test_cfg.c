/* Unit tests for src/common/cfg.c and config.c: defaults, every error with its line, size and
 * duration syntax, cross-field checks, the original's configs, and config file lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/config.h"

#define KIB 1024ULL
#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)
#define TIB (1024ULL * 1024 * 1024 * 1024)

static char tmpdir[256];

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/p2p-test-cfg-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to tmpdir/name and returns the path (static buffer). */
static const char *write_tmp(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads yaml (as "t.yaml") over node defaults; returns rc, err in err. */
static int node_str(const char *yaml, struct p2p_node_cfg *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    p2p_cfg_defaults(p2p_node_cfg_fields, p2p_node_cfg_nfields, cfg);
    return p2p_cfg_load_string(p2p_node_cfg_fields, p2p_node_cfg_nfields, cfg, yaml,
                               strlen(yaml), "t.yaml", err, errlen);
}

/* Asserts the node table rejects yaml with exactly the message want. */
static void expect_err(const char *yaml, const char *want)
{
    struct p2p_node_cfg cfg;
    char err[512] = "";
    int rc = node_str(yaml, &cfg, err, sizeof err);
    p2p_node_cfg_free(&cfg);
    if (rc != -1 || strcmp(err, want) != 0)
        fail_msg("yaml:\n%s\nrc %d\n got: %s\nwant: %s", yaml, rc, err, want);
}

/* Asserts the node table rejects yaml with a message starting with prefix. */
static void expect_err_prefix(const char *yaml, const char *prefix)
{
    struct p2p_node_cfg cfg;
    char err[512] = "";
    int rc = node_str(yaml, &cfg, err, sizeof err);
    p2p_node_cfg_free(&cfg);
    if (rc != -1 || strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("yaml:\n%s\nrc %d\n got: %s\nwant prefix: %s", yaml, rc, err, prefix);
}

static void check_tracker_defaults(const struct p2p_tracker_cfg *c)
{
    assert_string_equal(c->web_mode, "release");
    assert_string_equal(c->listen_address, ":35330");
    assert_int_equal(c->piece_size, 1048576);
    assert_int_equal(c->session_expire_ms, 10000);
    assert_int_equal(c->session_check_interval_ms, 3000);
    assert_string_equal(c->auth_token, "");
    assert_int_equal(c->max_peers, 50);
    assert_int_equal(c->max_nodes, 100000);
    assert_int_equal(c->max_files, 100000);
    assert_int_equal(c->max_pieces, 524288);
    assert_int_equal(c->max_total_pieces, 67108864);
    assert_int_equal(c->max_holder_bytes, 1024ULL * 1024 * 1024);
    assert_string_equal(c->store_type, "memory");
    assert_string_equal(c->redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(c->log.level, "info");
    assert_string_equal(c->log.format, "text");
}

static void check_node_defaults(const struct p2p_node_cfg *c, const char *download_dir)
{
    assert_string_equal(c->web_mode, "release");
    assert_string_equal(c->listen_address, ":35331");
    assert_string_equal(c->advertise_address, "");
    assert_string_equal(c->zone, "");
    assert_int_equal(c->piece_size, 1048576);
    assert_int_equal(c->session_expire_ms, 10000);
    assert_int_equal(c->session_check_interval_ms, 3000);
    assert_string_equal(c->download_dir, download_dir);
    assert_string_equal(c->complete_dir, "");
    assert_int_equal(c->trackers.n, 0);
    assert_int_equal(c->max_download_concurrency, 16);
    assert_int_equal(c->max_peer_concurrency, 4);
    assert_int_equal(c->max_upload_slots, 32);
    assert_int_equal(c->upload_rate_limit, 0);
    assert_int_equal(c->download_rate_limit, 0);
    assert_string_equal(c->verify_on_scan, "size");
    assert_string_equal(c->auth_token, "");
    assert_int_equal(c->max_tasks, 64);
    assert_int_equal(c->max_file_size, TIB);
    assert_true(c->tus.enabled);
    assert_string_equal(c->tus.base_path, "/files/");
    assert_string_equal(c->tus.dir, "");
    assert_int_equal(c->tus.max_size, 0);
    assert_int_equal(c->tus.expiration_ms, 24ULL * 3600 * 1000);
    assert_string_equal(c->tus.hook_url, "");
    assert_string_equal(c->log.level, "info");
    assert_string_equal(c->log.format, "text");
}

static void test_defaults_empty_files(void **state)
{
    (void)state;
    static const char *const empties[] = {"", "\n\n", "# only a comment\n  # another\n", "---\n",
                                          "---\n...\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        const char *path = write_tmp("empty.yaml", empties[i]);
        char err[512] = "";
        char *used = NULL;
        struct p2p_tracker_cfg t;
        if (p2p_tracker_cfg_load(&t, path, &used, err, sizeof err) != 0)
            fail_msg("tracker, empty #%zu: %s", i, err);
        assert_string_equal(used, path);
        check_tracker_defaults(&t);
        p2p_tracker_cfg_free(&t);
        free(used);

        struct p2p_node_cfg n;
        if (p2p_node_cfg_load(&n, path, NULL, err, sizeof err) != 0)
            fail_msg("node, empty #%zu: %s", i, err);
        check_node_defaults(&n, "./data");
        p2p_node_cfg_free(&n);
    }
}

static void test_defaults_table_only(void **state)
{
    (void)state;
    struct p2p_node_cfg n;
    memset(&n, 0x5a, sizeof n); /* defaults must not read or free what was there */
    p2p_cfg_defaults(p2p_node_cfg_fields, p2p_node_cfg_nfields, &n);
    check_node_defaults(&n, "./data");
    p2p_node_cfg_free(&n);
    p2p_node_cfg_free(NULL);
    p2p_tracker_cfg_free(NULL);

    struct p2p_tracker_cfg t;
    memset(&t, 0x5a, sizeof t);
    p2p_cfg_defaults(p2p_tracker_cfg_fields, p2p_tracker_cfg_nfields, &t);
    check_tracker_defaults(&t);
    p2p_tracker_cfg_free(&t);
}

static void test_original_configs(void **state)
{
    (void)state;
    char err[512] = "";
    struct p2p_tracker_cfg t;
    if (p2p_tracker_cfg_load(&t, "fixtures/original/config.tracker.yaml", NULL, err,
                             sizeof err) != 0)
        fail_msg("%s", err);
    check_tracker_defaults(&t);
    p2p_tracker_cfg_free(&t);

    struct p2p_node_cfg n;
    if (p2p_node_cfg_load(&n, "fixtures/original/config.node.yaml", NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    check_node_defaults(&n, "/tmp");
    p2p_node_cfg_free(&n);
}

static void test_shipped_examples(void **state)
{
    (void)state;
    char err[512] = "";
    struct p2p_tracker_cfg t;
    if (p2p_tracker_cfg_load(&t, "../config/config.tracker.yaml", NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    check_tracker_defaults(&t);
    p2p_tracker_cfg_free(&t);

    struct p2p_node_cfg n;
    if (p2p_node_cfg_load(&n, "../config/config.node.yaml", NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    /* equal to the defaults except the demo tracker */
    assert_int_equal(n.trackers.n, 1);
    assert_string_equal(n.trackers.v[0], "127.0.0.1:35330");
    free(n.trackers.v[0]);
    free(n.trackers.v);
    n.trackers.v = NULL;
    n.trackers.n = 0;
    check_node_defaults(&n, "./data");
    p2p_node_cfg_free(&n);
}

static void test_full_node_config(void **state)
{
    (void)state;
    const char *yaml = "web:\n"
                       "  mode: test\n"
                       "  listen_address: 127.0.0.1:0\n"
                       "advertise_address: 'node1.example:4000'\n"
                       "zone: \"eu-1\"\n"
                       "piece_size: 4MiB\n"
                       "session_expire: 1m30s\n"
                       "session_check_interval: 500ms\n"
                       "download_dir: /var/lib/p2p\n"
                       "complete_dir: /srv/done\n"
                       "trackers: [\"10.0.0.5:35330\", '[::1]:35330']\n"
                       "max_download_concurrency: \"8\"\n"
                       "max_peer_concurrency: 2\n"
                       "max_upload_slots: 1\n"
                       "upload_rate_limit: 20MiB\n"
                       "download_rate_limit: \"1.5MB\"\n"
                       "verify_on_scan: full\n"
                       "auth_token: s3cret\n"
                       "max_tasks: 3\n"
                       "max_file_size: 2GiB\n"
                       "tus:\n"
                       "  enabled: no\n"
                       "  base_path: /up/load/\n"
                       "  dir: /tmp/tus\n"
                       "  max_size: 1G\n"
                       "  expiration: 2h\n"
                       "  hook_url: http://127.0.0.1:9/hook\n"
                       "log: {level: warn, format: json}\n";
    const char *path = write_tmp("full.yaml", yaml);
    struct p2p_node_cfg c;
    char err[512] = "";
    if (p2p_node_cfg_load(&c, path, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.web_mode, "test");
    assert_string_equal(c.listen_address, "127.0.0.1:0");
    assert_string_equal(c.advertise_address, "node1.example:4000");
    assert_string_equal(c.zone, "eu-1");
    assert_int_equal(c.piece_size, 4 * MIB);
    assert_int_equal(c.session_expire_ms, 90000);
    assert_int_equal(c.session_check_interval_ms, 500);
    assert_string_equal(c.download_dir, "/var/lib/p2p");
    assert_string_equal(c.complete_dir, "/srv/done");
    assert_int_equal(c.trackers.n, 2);
    assert_string_equal(c.trackers.v[0], "10.0.0.5:35330");
    assert_string_equal(c.trackers.v[1], "[::1]:35330");
    assert_int_equal(c.max_download_concurrency, 8);
    assert_int_equal(c.max_peer_concurrency, 2);
    assert_int_equal(c.max_upload_slots, 1);
    assert_int_equal(c.upload_rate_limit, 20 * MIB);
    assert_int_equal(c.download_rate_limit, 1500000);
    assert_string_equal(c.verify_on_scan, "full");
    assert_string_equal(c.auth_token, "s3cret");
    assert_int_equal(c.max_tasks, 3);
    assert_int_equal(c.max_file_size, 2 * GIB);
    assert_false(c.tus.enabled);
    assert_string_equal(c.tus.base_path, "/up/load/");
    assert_string_equal(c.tus.dir, "/tmp/tus");
    assert_int_equal(c.tus.max_size, GIB);
    assert_int_equal(c.tus.expiration_ms, 2 * 3600 * 1000);
    assert_string_equal(c.tus.hook_url, "http://127.0.0.1:9/hook");
    assert_string_equal(c.log.level, "warn");
    assert_string_equal(c.log.format, "json");
    p2p_node_cfg_free(&c);
}

static void test_full_tracker_config(void **state)
{
    (void)state;
    const char *yaml = "web: {mode: debug, listen_address: \"[::]:0\"}\n"
                       "session_expire: 30\n"
                       "auth_token: tok\n"
                       "max_peers: 7\nmax_nodes: 10\nmax_files: 20\nmax_pieces: 4096\n"
                       "store:\n  type: redis\n  redis_url: redis://10.0.0.1:6380/2\n"
                       "log:\n  level: error\n";
    const char *path = write_tmp("tracker.yaml", yaml);
    struct p2p_tracker_cfg c;
    char err[512] = "";
    char *used = NULL;
    if (p2p_tracker_cfg_load(&c, path, &used, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(used, path);
    free(used);
    assert_string_equal(c.web_mode, "debug");
    assert_string_equal(c.listen_address, "[::]:0");
    assert_int_equal(c.session_expire_ms, 30000);
    assert_string_equal(c.auth_token, "tok");
    assert_int_equal(c.max_peers, 7);
    assert_int_equal(c.max_nodes, 10);
    assert_int_equal(c.max_files, 20);
    assert_int_equal(c.max_pieces, 4096);
    assert_string_equal(c.store_type, "redis");
    assert_string_equal(c.redis_url, "redis://10.0.0.1:6380/2");
    /* web.mode debug means log level debug */
    assert_string_equal(c.log.level, "debug");
    p2p_tracker_cfg_free(&c);
}

static void test_null_keeps_default(void **state)
{
    (void)state;
    struct p2p_node_cfg c;
    char err[512] = "";
    assert_int_equal(node_str("download_dir:\nzone: ~\ntrackers: null\nweb:\ntus:\n"
                              "  expiration: NULL\n",
                              &c, err, sizeof err),
                     0);
    check_node_defaults(&c, "./data");
    /* a quoted empty string is a value, not null */
    assert_int_equal(p2p_cfg_load_string(p2p_node_cfg_fields, p2p_node_cfg_nfields, &c,
                                         "zone: ''\nauth_token: \"\"\n", 24, "t", err,
                                         sizeof err),
                     0);
    assert_string_equal(c.zone, "");
    p2p_node_cfg_free(&c);
}

static void test_reload_replaces(void **state)
{
    (void)state;
    struct p2p_node_cfg c;
    char err[512] = "";
    assert_int_equal(node_str("zone: a\ntrackers: [\"h:1\", \"h:2\"]\n", &c, err, sizeof err), 0);
    const char *y2 = "zone: b\ntrackers: [\"h:3\"]\n";
    assert_int_equal(p2p_cfg_load_string(p2p_node_cfg_fields, p2p_node_cfg_nfields, &c, y2,
                                         strlen(y2), "t2", err, sizeof err),
                     0);
    assert_string_equal(c.zone, "b");
    assert_int_equal(c.trackers.n, 1);
    assert_string_equal(c.trackers.v[0], "h:3");
    /* an empty sequence empties the list */
    assert_int_equal(p2p_cfg_load_string(p2p_node_cfg_fields, p2p_node_cfg_nfields, &c,
                                         "trackers: []\n", 13, "t3", err, sizeof err),
                     0);
    assert_int_equal(c.trackers.n, 0);
    p2p_node_cfg_free(&c); /* ASan: nothing leaked */
}

static void test_errors_with_lines(void **state)
{
    (void)state;
    /* unknown keys, top level and nested */
    expect_err("web:\n  mode: release\nbogus: 1\n", "t.yaml:3: bogus: unknown key");
    expect_err("web:\n  mode: release\n  listen: \":1\"\n", "t.yaml:3: web.listen: unknown key");
    expect_err("# c\n\ntus:\n  enabled: true\n\n  nope:\n    deeper: 1\n",
               "t.yaml:6: tus.nope: unknown key");
    expect_err("web.mode: debug\n",
               "t.yaml:1: web.mode: unknown key (write nested keys as mappings, not dotted)");
    expect_err("Piece_Size: 1\n", "t.yaml:1: Piece_Size: unknown key");
    expect_err("store:\n  type: memory\n", "t.yaml:1: store: unknown key"); /* tracker-only */
    /* a mapping where a scalar is expected (the value starts on line 2) */
    expect_err("piece_size:\n  a: 1\n",
               "t.yaml:2: piece_size: expected a scalar value, got a mapping");
    /* a sequence for a scalar */
    expect_err("\nzone: [a, b]\n", "t.yaml:2: zone: expected a scalar value, got a sequence");
    expect_err("web:\n  mode:\n    - release\n",
               "t.yaml:3: web.mode: expected a scalar value, got a sequence");
    /* a scalar where a section is expected */
    expect_err("log: info\n", "t.yaml:1: log: expected a mapping, got a scalar");
    expect_err("x: 1\n", "t.yaml:1: x: unknown key");
    /* U64 */
    expect_err("max_tasks: 1.5\n",
               "t.yaml:1: max_tasks: invalid value '1.5': expected a non-negative integer");
    expect_err("max_tasks: ten\n",
               "t.yaml:1: max_tasks: invalid value 'ten': expected a non-negative integer");
    expect_err("max_tasks: -3\n", "t.yaml:1: max_tasks: invalid value '-3': must not be negative");
    expect_err("max_tasks: 0x10\n",
               "t.yaml:1: max_tasks: invalid value '0x10': expected a non-negative integer");
    expect_err("max_tasks: 99999999999999999999999\n",
               "t.yaml:1: max_tasks: invalid value '99999999999999999999999': expected a "
               "non-negative integer");
    /* sizes */
    expect_err_prefix("tus:\n  max_size: 4XB\n", "t.yaml:2: tus.max_size: invalid size '4XB'");
    expect_err_prefix("upload_rate_limit: -1MiB\n",
                      "t.yaml:1: upload_rate_limit: invalid size '-1MiB': must not be negative");
    expect_err_prefix("upload_rate_limit: 20EiB\n",
                      "t.yaml:1: upload_rate_limit: invalid size '20EiB'"); /* overflow */
    /* durations */
    expect_err_prefix("session_expire: 10x\n",
                      "t.yaml:1: session_expire: invalid duration '10x'");
    expect_err_prefix("a_comment: 1\n", "t.yaml:1: a_comment: unknown key");
    expect_err_prefix("\n\nsession_check_interval: \"-3s\"\n",
                      "t.yaml:3: session_check_interval: invalid duration '-3s': must not be");
    /* bool */
    expect_err("tus:\n  enabled: maybe\n",
               "t.yaml:2: tus.enabled: invalid boolean 'maybe': expected true or false");
    /* enum */
    expect_err("verify_on_scan: fast\n",
               "t.yaml:1: verify_on_scan: invalid value 'fast': must be one of size, full");
    expect_err("web:\n  mode: RELEASE\n",
               "t.yaml:2: web.mode: invalid value 'RELEASE': must be one of release, debug, "
               "test");
    /* range */
    expect_err("max_peer_concurrency: 0\n",
               "t.yaml:1: max_peer_concurrency: value 0 out of range (1..256)");
    expect_err("piece_size: 128MiB\n",
               "t.yaml:1: piece_size: value 134217728 out of range (16384..67108864 bytes)");
    expect_err("session_expire: 0s\n", "t.yaml:1: session_expire: must be greater than 0");
    expect_err("tus:\n  expiration: 0\n", "t.yaml:2: tus.expiration: must be greater than 0");
    /* duplicates, top level and nested, and a repeated section */
    expect_err("zone: a\nzone: b\n", "t.yaml:2: zone: duplicate key (first given on line 1)");
    expect_err("tus:\n  dir: a\n  enabled: true\n  dir: b\n",
               "t.yaml:4: tus.dir: duplicate key (first given on line 2)");
    expect_err("web:\n  mode: debug\nzone: z\nweb:\n  mode: test\n",
               "t.yaml:4: web: duplicate key (first given on line 1)");
    /* lists */
    expect_err("trackers: \"a:1\"\n", "t.yaml:1: trackers: expected a sequence, got a scalar");
    expect_err("trackers:\n  - a:1\n  - [b]\n",
               "t.yaml:3: trackers: entry 2: expected a string, got a sequence");
    /* top level */
    expect_err("- a\n- b\n", "t.yaml:1: top level must be a mapping, got a sequence");
    expect_err("\n\nhello\n", "t.yaml:3: top level must be a mapping, got a scalar");
    expect_err("zone: a\n---\nzone: b\n", "t.yaml:3: only one YAML document is allowed");
    /* keys must be scalars */
    expect_err_prefix("? [a, b]\n: c\n", "t.yaml:1: mapping keys must be plain strings");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    /* unterminated quoted scalar: reported where the scanner gives up */
    expect_err_prefix("web:\n  mode: \"release\n", "t.yaml:3: YAML syntax error: ");
    /* bad indentation */
    expect_err_prefix("web:\n  mode: release\n listen_address: x\n",
                      "t.yaml:3: YAML syntax error: ");
    /* tab indentation */
    expect_err_prefix("web:\n\tmode: release\n", "t.yaml:2: YAML syntax error: ");
    /* unclosed flow sequence */
    expect_err_prefix("zone: a\ntrackers: [a, b\nfoo: 1\n", "t.yaml:3: YAML syntax error: ");
    /* undefined alias */
    expect_err_prefix("zone: a\n\nzone2: *nope\n", "t.yaml:3: YAML syntax error: ");
    /* invalid UTF-8 (reader error: line from the byte offset) */
    expect_err_prefix("zone: a\nauth_token: \"\xff\xfe\"\n", "t.yaml:2: YAML syntax error: ");
}

static void test_cross_checks(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *want; /* substring of the message, or NULL = must load */
    } cases[] = {
        {"piece_size: 1000000\n", "piece_size: 1000000 must be a power of two"},
        {"piece_size: 64MiB\n", NULL},
        {"piece_size: 16KiB\n", NULL},
        {"piece_size: 1.5MiB\n", "must be a power of two"},
        {"web:\n  listen_address: \"35331\"\n", "web.listen_address: '35331': expected host:port"},
        {"web:\n  listen_address: \":65536\"\n", "bad port"},
        {"web:\n  listen_address: \":http\"\n", "bad port"},
        {"web:\n  listen_address: \"::1:80\"\n", "brackets"},
        {"web:\n  listen_address: \"[::1]:80\"\n", NULL},
        {"web:\n  listen_address: \"[zz]:80\"\n", "bad IPv6"},
        {"web:\n  listen_address: \"bad host:80\"\n", "bad host"},
        {"web:\n  listen_address: \"0.0.0.0:35331\"\n", NULL},
        {"web:\n  listen_address: \"localhost:0\"\n", NULL},
        {"advertise_address: \":80\"\n", "advertise_address: ':80': host missing"},
        {"advertise_address: \"10.1.2.3:0\"\n", "bad port"},
        {"advertise_address: \"10.1.2.3:35331\"\n", NULL},
        {"trackers: [\"t1:35330\", \"nope\"]\n", "trackers: entry 2 'nope'"},
        {"download_dir: \"\"\n", "download_dir: must not be empty"},
        {"tus:\n  base_path: files/\n", "tus.base_path: 'files/': must start and end with '/'"},
        {"tus:\n  base_path: /files\n", "must start and end"},
        {"tus:\n  base_path: /\n", "must start and end"},
        {"tus:\n  base_path: /a//b/\n", "empty, '.' or '..'"},
        {"tus:\n  base_path: /a/../b/\n", "empty, '.' or '..'"},
        {"tus:\n  base_path: /v1/files/\n", "API paths"},
        {"tus:\n  base_path: \"/fi les/\"\n", "not allowed"},
        {"tus:\n  base_path: /uploads/tus/\n", NULL},
        {"tus:\n  hook_url: ftp://x/\n", "tus.hook_url"},
        {"tus:\n  hook_url: https://x/hook\n", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_tmp("cross.yaml", cases[i].yaml);
        struct p2p_node_cfg c;
        char err[512] = "";
        char *used = (char *)"sentinel";
        int rc = p2p_node_cfg_load(&c, path, &used, err, sizeof err);
        if (!cases[i].want) {
            if (rc != 0)
                fail_msg("case %zu (%s) failed: %s", i, cases[i].yaml, err);
            free(used);
            p2p_node_cfg_free(&c);
            continue;
        }
        if (rc != -1 || !strstr(err, cases[i].want) || strncmp(err, path, strlen(path)) != 0)
            fail_msg("case %zu (%s): rc %d, got '%s', want '%s'", i, cases[i].yaml, rc, err,
                     cases[i].want);
        assert_null(used); /* failure: no path handed out, cfg already freed */
        p2p_node_cfg_free(&c);
    }

    /* tracker: redis url checked only for the redis store */
    const char *path = write_tmp("t.yaml", "store:\n  type: redis\n  redis_url: http://x\n");
    struct p2p_tracker_cfg t;
    char err[512] = "";
    assert_int_equal(p2p_tracker_cfg_load(&t, path, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "store.redis_url"));
    path = write_tmp("t.yaml", "session_check_interval: 0\n");
    assert_int_equal(p2p_tracker_cfg_load(&t, path, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, ":1: session_check_interval: must be greater than 0"));
    /* node-only keys are unknown to the tracker */
    path = write_tmp("t.yaml", "web:\n  mode: release\ndownload_dir: /tmp\n");
    assert_int_equal(p2p_tracker_cfg_load(&t, path, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, ":3: download_dir: unknown key"));
}

static void test_file_errors(void **state)
{
    (void)state;
    struct p2p_node_cfg c;
    char err[512] = "";
    char *used = NULL;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/does-not-exist.yaml", tmpdir);
    assert_int_equal(p2p_node_cfg_load(&c, missing, &used, err, sizeof err), -1);
    assert_null(used);
    assert_non_null(strstr(err, "does-not-exist.yaml: cannot open config file"));
    /* a directory */
    assert_int_equal(p2p_node_cfg_load(&c, tmpdir, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    /* too large */
    char *big = malloc(1024 * 1024 + 10);
    assert_non_null(big);
    memset(big, '#', 1024 * 1024 + 9);
    big[1024 * 1024 + 9] = '\0';
    const char *path = write_tmp("big.yaml", big);
    free(big);
    assert_int_equal(p2p_node_cfg_load(&c, path, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "too large"));
    /* the file name is in a parse error */
    path = write_tmp("bad.yaml", "zone: a\nbad: 1\n");
    assert_int_equal(p2p_node_cfg_load(&c, path, NULL, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s:2: bad: unknown key", path);
    assert_string_equal(err, want);
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"18446744073709551615", UINT64_MAX},
        {"1B", 1},
        {"1b", 1},
        {"1k", 1024},
        {"1K", 1024},
        {"1KiB", 1024},
        {"1kib", 1024},
        {"1KB", 1000},
        {"1kB", 1000},
        {"512KiB", 512 * 1024},
        {"4MiB", 4 * MIB},
        {"4M", 4 * MIB},
        {"4MB", 4000000},
        {"20MiB", 20 * MIB},
        {"1GiB", GIB},
        {"1G", GIB},
        {"1GB", 1000000000},
        {"2TiB", 2 * TIB},
        {"1TB", 1000000000000ULL},
        {"1PiB", 1024 * TIB},
        {"15EiB", 15ULL << 60},
        {"1.5MiB", 1572864},
        {"0.5KiB", 512},
        {"1.5KB", 1500},
        {"2.0", 2},
        {"0.25GiB", GIB / 4},
        {"007", 7},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 0;
        if (p2p_cfg_parse_size(ok[i].s, &v) != 0 || v != ok[i].v)
            fail_msg("size '%s' -> %llu, want %llu", ok[i].s, (unsigned long long)v,
                     (unsigned long long)ok[i].v);
    }
    static const char *const bad[] = {
        "", "-1", "+1", " 1", "1 ", "1 MiB", "MiB", "1MiBx", "1Mi", "1iB", "1.", ".5MiB",
        "1.5", "0.1B", "1.1KiB", "1,5MiB", "1e3", "16EiB", "18446744073709551616",
        "99999999999999999999999", "1.0000000001GiB", "0x10", "1MiB1", "1 KB", "nan", "1_000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 42;
        if (p2p_cfg_parse_size(bad[i], &v) != -1)
            fail_msg("size '%s' accepted as %llu", bad[i], (unsigned long long)v);
        assert_int_equal(v, 42);
    }
    assert_int_equal(p2p_cfg_parse_size(NULL, &(uint64_t){0}), -1);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        {"0", 0},
        {"10", 10000},
        {"10s", 10000},
        {"3s", 3000},
        {"500ms", 500},
        {"1m", 60000},
        {"1m30s", 90000},
        {"24h", 86400000},
        {"1h30m", 5400000},
        {"1h2m3s4ms", 3723004},
        {"2h500ms", 7200500},
        {"1.5s", 1500},
        {"0.5h", 1800000},
        {"0s", 0},
        {"18446744073709551ms", 18446744073709551ULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 0;
        if (p2p_cfg_parse_duration_ms(ok[i].s, &v) != 0 || v != ok[i].ms)
            fail_msg("duration '%s' -> %llu, want %llu", ok[i].s, (unsigned long long)v,
                     (unsigned long long)ok[i].ms);
    }
    static const char *const bad[] = {
        "", "-1s", "+1s", "s", "10x", "10sec", "10S", "1s1s", "30s1m", "1ms1s", "10 s", " 10s",
        "10s ", "1.5", "0.5ms", "1.0001s", "1d", "100us", "5ns", "1h-1m",
        "18446744073709552s",     /* overflows in ms */
        "18446744073709551616",   /* overflows as an integer */
        "5124095576030432h",      /* overflows in ms */
        "1m 30s", "1..5s", "1.s", ".5s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 42;
        if (p2p_cfg_parse_duration_ms(bad[i], &v) != -1)
            fail_msg("duration '%s' accepted as %llu", bad[i], (unsigned long long)v);
        assert_int_equal(v, 42);
    }
}

static void test_bools(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool v;
    } ok[] = {{"true", true}, {"True", true}, {"yes", true}, {"on", true}, {"\"true\"", true},
              {"false", false}, {"FALSE", false}, {"no", false}, {"off", false}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char yaml[64];
        snprintf(yaml, sizeof yaml, "tus:\n  enabled: %s\n", ok[i].s);
        struct p2p_node_cfg c;
        char err[256] = "";
        if (node_str(yaml, &c, err, sizeof err) != 0)
            fail_msg("%s: %s", ok[i].s, err);
        assert_int_equal(c.tus.enabled, ok[i].v);
        p2p_node_cfg_free(&c);
    }
    expect_err_prefix("tus:\n  enabled: 1\n", "t.yaml:2: tus.enabled: invalid boolean '1'");
}

static void test_find_order(void **state)
{
    (void)state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char dir[512];
    snprintf(dir, sizeof dir, "%s/findcwd", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chdir(dir), 0);

    /* explicit path: returned as-is even if missing */
    char *p = p2p_cfg_find("node", "/no/such/file.yaml");
    assert_string_equal(p, "/no/such/file.yaml");
    free(p);

    /* nothing in ./config: the /etc file if this machine has one, else NULL */
    struct stat st;
    bool etc_node = stat("/etc/p2p-sharer/config.node.yaml", &st) == 0;
    p = p2p_cfg_find("node", NULL);
    if (etc_node)
        assert_string_equal(p, "/etc/p2p-sharer/config.node.yaml");
    else
        assert_null(p);
    free(p);
    /* an empty explicit path counts as none */
    p = p2p_cfg_find("node", "");
    if (!etc_node)
        assert_null(p);
    free(p);

    /* ./config/config.<role>.yaml wins over /etc, and only for its role */
    assert_int_equal(mkdir("config", 0700), 0);
    FILE *f = fopen("config/config.node.yaml", "w");
    assert_non_null(f);
    fputs("zone: here\n", f);
    fclose(f);
    p = p2p_cfg_find("node", NULL);
    assert_string_equal(p, "./config/config.node.yaml");
    free(p);
    bool etc_tracker = stat("/etc/p2p-sharer/config.tracker.yaml", &st) == 0;
    p = p2p_cfg_find("tracker", NULL);
    if (etc_tracker)
        assert_string_equal(p, "/etc/p2p-sharer/config.tracker.yaml");
    else
        assert_null(p);
    free(p);
    /* explicit still wins */
    p = p2p_cfg_find("node", "other.yaml");
    assert_string_equal(p, "other.yaml");
    free(p);

    /* the loader uses the lookup */
    struct p2p_node_cfg c;
    char err[512] = "";
    char *used = NULL;
    assert_int_equal(p2p_node_cfg_load(&c, NULL, &used, err, sizeof err), 0);
    assert_string_equal(used, "./config/config.node.yaml");
    assert_string_equal(c.zone, "here");
    free(used);
    p2p_node_cfg_free(&c);

    /* a directory named like the file is not a config file */
    assert_int_equal(mkdir("config/config.tracker.yaml", 0700), 0);
    p = p2p_cfg_find("tracker", NULL);
    if (!etc_tracker)
        assert_null(p);
    free(p);

    /* no file at all: defaults, used_path NULL */
    if (!etc_tracker) {
        struct p2p_tracker_cfg t;
        used = (char *)"sentinel";
        assert_int_equal(p2p_tracker_cfg_load(&t, NULL, &used, err, sizeof err), 0);
        assert_null(used);
        check_tracker_defaults(&t);
        p2p_tracker_cfg_free(&t);
    }
    assert_int_equal(chdir(cwd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_empty_files),
        cmocka_unit_test(test_defaults_table_only),
        cmocka_unit_test(test_original_configs),
        cmocka_unit_test(test_shipped_examples),
        cmocka_unit_test(test_full_node_config),
        cmocka_unit_test(test_full_tracker_config),
        cmocka_unit_test(test_null_keeps_default),
        cmocka_unit_test(test_reload_replaces),
        cmocka_unit_test(test_errors_with_lines),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_find_order),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
