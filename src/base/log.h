/* log.h - level-checked logging into an application-supplied sink.
 *
 * Library code never prints: it calls EL_LOG, which checks the level first
 * (so arguments of a suppressed message are not formatted) and records the
 * source location. The process installs one sink with el_log_set_sink(); the
 * default writes "time level file:line message" lines to stderr. The level
 * and sink are the process's only logging state (a true singleton). */
#ifndef EL_LOG_H
#define EL_LOG_H

typedef enum {
    EL_LOG_ERROR = 0,
    EL_LOG_WARN = 1,
    EL_LOG_INFO = 2,
    EL_LOG_DEBUG = 3,
} el_log_level;

typedef void (*el_log_sink)(el_log_level level, const char *file, int line,
                            const char *msg, void *user);

extern el_log_level el_log_threshold;

void el_log_set_level(el_log_level level);
/* Parses "error", "warn", "info" or "debug"; returns -1 on anything else. */
int el_log_parse_level(const char *name, el_log_level *out);
void el_log_set_sink(el_log_sink sink, void *user);
void el_log_write(el_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define EL_LOG(level, ...)                                                     \
    do {                                                                       \
        if ((level) <= el_log_threshold)                                       \
            el_log_write((level), __FILE__, __LINE__, __VA_ARGS__);            \
    } while (0)
#define EL_ERROR(...) EL_LOG(EL_LOG_ERROR, __VA_ARGS__)
#define EL_WARN(...) EL_LOG(EL_LOG_WARN, __VA_ARGS__)
#define EL_INFO(...) EL_LOG(EL_LOG_INFO, __VA_ARGS__)
#define EL_DEBUG(...) EL_LOG(EL_LOG_DEBUG, __VA_ARGS__)

#endif
