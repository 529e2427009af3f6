/* log.c - see log.h. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

el_log_level el_log_threshold = EL_LOG_INFO;

static el_log_sink log_sink;
static void *log_user;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void el_log_set_level(el_log_level level)
{
    el_log_threshold = level;
}

int el_log_parse_level(const char *name, el_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (el_log_level)i;
            return 0;
        }
    }
    return -1;
}

void el_log_set_sink(el_log_sink sink, void *user)
{
    log_sink = sink;
    log_user = user;
}

void el_log_write(el_log_level level, const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_sink) {
        log_sink(level, file, line, msg, log_user);
        return;
    }
    const char *base = strrchr(file, '/');
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %s:%d %s\n", tm.tm_hour, tm.tm_min,
            tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], base ? base + 1 : file,
            line, msg);
}
