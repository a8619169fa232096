/* The tracker's and the node's configuration: every key of docs/CONFIG.md with its default. */
#ifndef P2P_COMMON_CONFIG_H
#define P2P_COMMON_CONFIG_H

#include "common/cfg.h"

struct p2p_log_cfg {
    char *level;   /* debug | info | warn | error */
    char *format;  /* text | json */
};

struct p2p_tracker_cfg {
    char *web_mode;                  /* web.mode: release | debug | test (debug = log level debug) */
    char *listen_address;            /* web.listen_address, default ":35330" */
    uint64_t piece_size;             /* accepted for the original's shipped config; unused */
    uint64_t session_expire_ms;      /* default 10s */
    uint64_t session_check_interval_ms; /* default 3s */
    char *auth_token;                /* Bearer token for heartbeat/report; "" = none */
    uint64_t max_peers;              /* cap on `max` of /v2/peers; default 50 */
    uint64_t max_nodes;              /* 503 beyond; default 100000 */
    uint64_t max_files;              /* 503 beyond; default 100000 */
    uint64_t max_pieces;             /* largest pieceCount accepted; default 524288 */
    uint64_t max_total_pieces;       /* sum of pieceCount over files, 503 beyond; default 64Mi */
    uint64_t max_holder_bytes;       /* holder entries + v1 pairs, 503 beyond; default 1GiB */
    char *store_type;                /* store.type: memory | redis */
    char *redis_url;                 /* store.redis_url */
    struct p2p_log_cfg log;
};

struct p2p_tus_cfg {
    bool enabled;         /* default true */
    char *base_path;      /* default "/files/" */
    char *dir;            /* default "" = <download_dir>/.tus */
    uint64_t max_size;    /* bytes, 0 = unlimited */
    uint64_t expiration_ms; /* default 24h */
    char *hook_url;       /* "" = none */
};

struct p2p_node_cfg {
    char *web_mode;
    char *listen_address;            /* default ":35331" */
    char *advertise_address;         /* "" = derived */
    char *zone;
    uint64_t piece_size;             /* v1 seeds only; default 1048576 */
    uint64_t session_expire_ms;      /* heartbeat period = session_expire / 2 */
    uint64_t session_check_interval_ms;
    char *download_dir;              /* default "./data" */
    char *complete_dir;              /* "" = download_dir */
    struct p2p_cfg_strlist trackers; /* for files that enter through TUS */
    uint64_t max_download_concurrency; /* default 16 */
    uint64_t max_peer_concurrency;     /* default 4 */
    uint64_t max_upload_slots;         /* default 32 */
    uint64_t upload_rate_limit;        /* bytes/s, 0 = unlimited */
    uint64_t download_rate_limit;
    char *verify_on_scan;              /* size | full */
    char *auth_token;
    uint64_t max_tasks;                /* concurrent tasks; default 64 */
    uint64_t max_file_size;            /* largest seed length accepted; default 1 TiB */
    struct p2p_tus_cfg tus;
    struct p2p_log_cfg log;
};

extern const struct p2p_cfg_field p2p_tracker_cfg_fields[];
extern const size_t p2p_tracker_cfg_nfields;
extern const struct p2p_cfg_field p2p_node_cfg_fields[];
extern const size_t p2p_node_cfg_nfields;

/**
 * Loads the role's config: defaults, then the file found by p2p_cfg_find (if any), then
 * cross-field checks. Returns 0 or -1 with err set. *used_path gets the file read (new string)
 * or NULL when running on defaults.
 */
int p2p_tracker_cfg_load(struct p2p_tracker_cfg *cfg, const char *explicit_path,
                         char **used_path, char *err, size_t errlen);
void p2p_tracker_cfg_free(struct p2p_tracker_cfg *cfg);
int p2p_node_cfg_load(struct p2p_node_cfg *cfg, const char *explicit_path, char **used_path,
                      char *err, size_t errlen);
void p2p_node_cfg_free(struct p2p_node_cfg *cfg);

#endif
