/* config.h - echolinkd's configuration: defaults, a file, environment,
 * command line.
 *
 * Every option `--some-name` can also be given as the environment variable
 * ECHOLINK_SOME_NAME and, except --config itself, as the line
 * `some-name = value` in the file named by --config (or ECHOLINK_CONFIG).
 * Precedence, highest first: command line, environment, file, defaults.
 * The option table in config.c is the single source of truth for names,
 * types, ranges, defaults and the --help text; el_config_option_get() shows
 * it to the tests that keep etc/echolinkd.conf.example and the man page in
 * step.
 *
 * The file format (see docs/man/echolinkd.8):
 *   - one `key = value` per line; spaces around '=' and at both ends are
 *     ignored, the value is the rest of the line (it may contain '=' or '#');
 *   - lines whose first non-blank character is '#' are comments, blank lines
 *     are ignored; there are no trailing comments, because secrets and URLs
 *     may contain '#';
 *   - flags take 1/0, true/false or yes/no; every key at most once;
 *   - lines end in LF or CRLF and are at most EL_CONFIG_MAX_LINE bytes.
 * Errors name the file, the line and the key: "PATH:LINE: key ...". */
#ifndef EL_SERVER_CONFIG_H
#define EL_SERVER_CONFIG_H

#include <stddef.h>

#define EL_CONFIG_MAX_URLS 8
#define EL_CONFIG_MAX_LINE 4096

typedef struct {
    char *config;             /* the configuration file read, NULL = none */
    int port;                 /* 0 = any free port */
    char *bind;               /* NULL = all interfaces */
    char *port_file;          /* write the chosen port here */
    char *db;                 /* "sqlite:PATH" */
    char *web;                /* static files root, NULL = none */
    char *log_level;
    char *tls_cert, *tls_key;
    int conformance;          /* protocol-suite mode (timings + echo handlers) */
    int open_presence;        /* everyone sees everyone (the seed's behaviour) */
    int ping_interval_ms, ping_timeout_ms, connect_timeout_ms, login_timeout_ms;
    long max_payload;         /* Engine.IO polling body limit */
    long max_event_size;      /* one Socket.IO event */
    int rate, burst;          /* events per second per connection */
    int max_conns, max_conns_per_ip;
    int max_new_ids_per_ip;   /* per hour; 0 = no limit (server/idquota.h) */
    char *turn_secret;
    char *turn_urls;          /* comma-separated turn: URLs */
    char *stun_urls;          /* comma-separated stun: URLs */
    int turn_ttl;
    int queue_max;            /* offline envelopes per recipient */
    int envelope_ttl;         /* seconds */
    char *redis;              /* cluster mode: redis://host:port[/db], NULL = one node */
    char *node_id;            /* this node's id in the cluster, NULL = random */
} el_server_config;

/* Fills cfg with defaults, then the configuration file (if --config or
 * ECHOLINK_CONFIG names one), then the environment, then argv. Returns 0 to
 * go on, 1 when --help/--version was handled (exit 0), -1 on a bad option,
 * value or file (a message is in err). --help/--version are handled before
 * any value is checked or the file is read. Strings in cfg are owned by cfg,
 * also after an error: always el_config_clear(). */
int el_config_load(el_server_config *cfg, int argc, char **argv, char *err, size_t errlen);
void el_config_clear(el_server_config *cfg);

/* One row of the option table, for documentation and its tests. All strings
 * are static. */
typedef struct {
    const char *name;  /* "max-conns": --max-conns, ECHOLINK_MAX_CONNS, `max-conns = ` */
    const char *type;  /* "number", "flag", "string" or "action" (--help, --version) */
    const char *def;   /* the default as written in a file; NULL = unset */
    const char *help;
    long min, max;     /* numbers: the accepted range */
    int file_key;      /* 1 if the key is valid in a configuration file */
} el_config_option;

/* Describes option i (0, 1, ... in table order) into *out. Returns 0, or -1
 * past the end of the table. */
int el_config_option_get(size_t i, el_config_option *out);

#endif
