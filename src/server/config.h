/* config.h - echolinkd's configuration: defaults, command line, environment.
 *
 * Every option `--some-name` can also be given as the environment variable
 * ECHOLINK_SOME_NAME; the command line wins. The option table in config.c is
 * the single source of truth for names, defaults and the --help text. */
#ifndef EL_SERVER_CONFIG_H
#define EL_SERVER_CONFIG_H

#include <stddef.h>

#define EL_CONFIG_MAX_URLS 8

typedef struct {
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
    char *turn_secret;
    char *turn_urls;          /* comma-separated turn: URLs */
    char *stun_urls;          /* comma-separated stun: URLs */
    int turn_ttl;
    int queue_max;            /* offline envelopes per recipient */
    int envelope_ttl;         /* seconds */
} el_server_config;

/* Fills cfg with defaults, then the environment, then argv. Returns 0 to go
 * on, 1 when --help/--version was handled (exit 0), -1 on a bad option (a
 * message is in err). Strings in cfg are owned by cfg: el_config_clear(). */
int el_config_load(el_server_config *cfg, int argc, char **argv, char *err, size_t errlen);
void el_config_clear(el_server_config *cfg);

#endif
