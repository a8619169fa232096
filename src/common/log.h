/* Process-wide logging: levels, text or JSON lines on stderr, level checked before formatting. */
#ifndef P2P_COMMON_LOG_H
#define P2P_COMMON_LOG_H

#include "common/util.h"

enum p2p_log_level { P2P_LOG_DEBUG = 0, P2P_LOG_INFO, P2P_LOG_WARN, P2P_LOG_ERROR, P2P_LOG_OFF };
enum p2p_log_format { P2P_LOG_TEXT = 0, P2P_LOG_JSON };

extern enum p2p_log_level p2p_log_min_level;

/** Sets level and format; component names the process ("tracker", "node", "gen"). */
void p2p_log_setup(enum p2p_log_level level, enum p2p_log_format format, const char *component);
/** Parses "debug|info|warn|error|off" (and "warning"); returns 0 or -1. */
int p2p_log_parse_level(const char *s, enum p2p_log_level *out);
/** Parses "text|json"; returns 0 or -1. */
int p2p_log_parse_format(const char *s, enum p2p_log_format *out);

void p2p_log_write(enum p2p_log_level level, const char *file, int line, const char *fmt, ...)
    P2P_PRINTF(4, 5);

#define p2p_log(level, ...)                                                                        \
    do {                                                                                           \
        if ((level) >= p2p_log_min_level)                                                          \
            p2p_log_write((level), __FILE__, __LINE__, __VA_ARGS__);                               \
    } while (0)
#define p2p_debug(...) p2p_log(P2P_LOG_DEBUG, __VA_ARGS__)
#define p2p_info(...) p2p_log(P2P_LOG_INFO, __VA_ARGS__)
#define p2p_warn(...) p2p_log(P2P_LOG_WARN, __VA_ARGS__)
#define p2p_error(...) p2p_log(P2P_LOG_ERROR, __VA_ARGS__)

#endif
