/* Process-wide logging: levels, text or JSON lines on stderr, level checked before formatting. */
#include "common/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

enum p2p_log_level p2p_log_min_level = P2P_LOG_INFO;
static enum p2p_log_format log_format = P2P_LOG_TEXT;
static const char *log_component = "p2p-sharer";

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void p2p_log_setup(enum p2p_log_level level, enum p2p_log_format format, const char *component)
{
    p2p_log_min_level = level;
    log_format = format;
    if (component)
        log_component = component;
}

int p2p_log_parse_level(const char *s, enum p2p_log_level *out)
{
    for (int i = 0; i <= P2P_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum p2p_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = P2P_LOG_WARN;
        return 0;
    }
    return -1;
}

int p2p_log_parse_format(const char *s, enum p2p_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = P2P_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = P2P_LOG_JSON;
    else
        return -1;
    return 0;
}

void p2p_log_write(enum p2p_log_level level, const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;

    if (log_format == P2P_LOG_JSON) {
        char src[128];
        snprintf(src, sizeof src, "%s:%d", base, line);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ts", ts, "level",
                              level_names[level], "component", log_component, "msg", msg,
                              "src", src);
        if (!o)  /* msg was not valid UTF-8: log it escaped rather than lose it */
            o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level],
                          "component", log_component, "msg", "(invalid UTF-8 in log message)");
        char *s = json_dumps(o, JSON_COMPACT);
        fprintf(stderr, "%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        fprintf(stderr, "%s %-5s %s: %s (%s:%d)\n", ts, level_names[level], log_component, msg,
                base, line);
    }
}
