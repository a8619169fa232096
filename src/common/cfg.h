/* Table-driven YAML config loading (libyaml) into typed structs, with file:line errors. */
#ifndef P2P_COMMON_CFG_H
#define P2P_COMMON_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum p2p_cfg_type {
    P2P_CFG_STR,      /* char * (heap, replaced on load) */
    P2P_CFG_BOOL,     /* bool: true/false/yes/no/on/off */
    P2P_CFG_U64,      /* uint64_t: plain decimal integer */
    P2P_CFG_SIZE,     /* uint64_t bytes: 1048576, "4MiB", "4MB", "512KiB", "1GiB", "1k" */
    P2P_CFG_DURATION, /* uint64_t milliseconds: "10s", "500ms", "1m30s", "24h", bare int = s */
    P2P_CFG_STRLIST,  /* struct p2p_cfg_strlist */
    P2P_CFG_ENUM,     /* char * restricted to a NULL-terminated list in `choices` */
};

struct p2p_cfg_strlist {
    char **v;
    size_t n;
};

/** One key. key is a dotted path ("web.listen_address"); offset is into the target struct. */
struct p2p_cfg_field {
    const char *key;
    enum p2p_cfg_type type;
    size_t offset;
    const char *def;            /* default in the YAML scalar syntax; NULL = zero/empty */
    uint64_t min, max;          /* numeric bounds (inclusive), max 0 = unbounded; for STR/ENUM
                                 * max is the longest value in bytes (0 = 4096), for STRLIST
                                 * the most entries (0 = 1024) */
    const char *const *choices; /* for P2P_CFG_ENUM */
};

/**
 * Fills every field of target with its default. target may be uninitialised: nothing in it is
 * freed (call p2p_cfg_free first to reuse a loaded struct). Strings default to "" when def is
 * NULL, lists to empty. Returns 0 (defaults are trusted: a bad one aborts).
 */
int p2p_cfg_defaults(const struct p2p_cfg_field *fields, size_t n, void *target);

/**
 * Loads a YAML file over the defaults. Unknown keys, wrong types, bad sizes/durations, values
 * out of range, duplicate keys and YAML syntax errors fail with "file:line: key: reason" in err
 * (lines 1-based). An empty file is valid; a null value ("key:" or "key: ~") keeps the default.
 * Files over 1 MiB are refused. On error target may be partly updated (still freeable with
 * p2p_cfg_free). Returns 0 or -1.
 */
int p2p_cfg_load_file(const struct p2p_cfg_field *fields, size_t n, void *target,
                      const char *path, char *err, size_t errlen);
/** Same from a string (name is used in messages). */
int p2p_cfg_load_string(const struct p2p_cfg_field *fields, size_t n, void *target,
                        const char *yaml, size_t len, const char *name, char *err, size_t errlen);

/** Frees heap members (strings, lists) of target. */
void p2p_cfg_free(const struct p2p_cfg_field *fields, size_t n, void *target);

/**
 * Parses a size ("4MiB") / duration ("10s") scalar; 0 or -1. Exposed for CLI flags. Sizes: bare =
 * bytes, K/M/G/T/P/E and KiB.. = 1024^n, KB.. = 1000^n (case-insensitive); durations: bare =
 * seconds, else h, m, s, ms in that order ("1m30s"). Fractions ("1.5MiB", "1.5s") are accepted
 * only when the result is a whole number of bytes / milliseconds. No sign, spaces or overflow.
 */
int p2p_cfg_parse_size(const char *s, uint64_t *out);
int p2p_cfg_parse_duration_ms(const char *s, uint64_t *out);

/**
 * Finds the config file for role ("tracker" or "node"): explicit (from -c/--config) if given,
 * else ./config/config.<role>.yaml, else /etc/p2p-sharer/config.<role>.yaml. Returns a new
 * string, or NULL if none exists (services then run on defaults).
 */
char *p2p_cfg_find(const char *role, const char *explicit_path);

#endif
