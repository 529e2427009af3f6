/* config.c - see config.h. */
#include "server/config.h"

#include "base/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_INT, OPT_LONG, OPT_STR, OPT_FLAG } opt_type;

typedef struct {
    const char *name;
    opt_type type;
    size_t offset;
    const char *def;
    const char *help;
} opt;

#define F(field) offsetof(el_server_config, field)

static const opt options[] = {
    {"port", OPT_INT, F(port), "5000", "TCP port for HTTP and WebSocket (0 = any free port)"},
    {"bind", OPT_STR, F(bind), NULL, "listen address (default: all interfaces)"},
    {"port-file", OPT_STR, F(port_file), NULL, "write the listening port to this file"},
    {"db", OPT_STR, F(db), "sqlite:data/echolink.db", "store URL: sqlite:PATH or sqlite::memory:"},
    {"web", OPT_STR, F(web), NULL, "serve static files (the web client) from this folder"},
    {"log-level", OPT_STR, F(log_level), "info", "error, warn, info or debug"},
    {"tls-cert", OPT_STR, F(tls_cert), NULL, "PEM certificate: serve HTTPS/WSS"},
    {"tls-key", OPT_STR, F(tls_key), NULL, "PEM private key for --tls-cert"},
    {"conformance", OPT_FLAG, F(conformance), "0", "Socket.IO conformance-suite mode (port 3000, short timers, echo handlers)"},
    {"open-presence", OPT_FLAG, F(open_presence), "0", "every user sees every online user (small deployments)"},
    {"ping-interval", OPT_INT, F(ping_interval_ms), "25000", "Engine.IO ping interval, ms"},
    {"ping-timeout", OPT_INT, F(ping_timeout_ms), "20000", "Engine.IO ping timeout, ms"},
    {"connect-timeout", OPT_INT, F(connect_timeout_ms), "45000", "Socket.IO CONNECT deadline after open, ms"},
    {"login-timeout", OPT_INT, F(login_timeout_ms), "10000", "login deadline after connect, ms"},
    {"max-payload", OPT_LONG, F(max_payload), "1000000", "largest HTTP long-polling body, bytes"},
    {"max-event-size", OPT_LONG, F(max_event_size), "65536", "largest Socket.IO event, bytes"},
    {"rate", OPT_INT, F(rate), "50", "events per second per connection"},
    {"burst", OPT_INT, F(burst), "100", "event burst per connection"},
    {"max-conns", OPT_INT, F(max_conns), "10000", "most concurrent connections"},
    {"max-conns-per-ip", OPT_INT, F(max_conns_per_ip), "64", "most concurrent connections from one address (0 = no limit)"},
    {"turn-secret", OPT_STR, F(turn_secret), NULL, "secret shared with coturn (use-auth-secret)"},
    {"turn-urls", OPT_STR, F(turn_urls), NULL, "comma-separated TURN URLs handed to clients"},
    {"stun-urls", OPT_STR, F(stun_urls), NULL, "comma-separated STUN URLs handed to clients"},
    {"turn-ttl", OPT_INT, F(turn_ttl), "3600", "lifetime of minted TURN credentials, s"},
    {"queue-max", OPT_INT, F(queue_max), "1000", "offline envelopes kept per recipient"},
    {"envelope-ttl", OPT_INT, F(envelope_ttl), "604800", "longest an offline envelope is kept, s"},
};

static int set_opt(el_server_config *cfg, const opt *o, const char *val, char *err, size_t errlen)
{
    void *p = (char *)cfg + o->offset;
    char *end;
    switch (o->type) {
    case OPT_FLAG:
        if (!val || !strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes")) {
            *(int *)p = 1;
        } else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no")) {
            *(int *)p = 0;
        } else {
            return el_seterr(err, errlen, -1, "--%s takes no value (or 0/1)", o->name);
        }
        return 0;
    case OPT_INT:
    case OPT_LONG: {
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < 0 || (o->type == OPT_INT && v > 0x7fffffff))
            return el_seterr(err, errlen, -1, "--%s needs a non-negative number, not '%s'",
                             o->name, val);
        if (o->type == OPT_INT)
            *(int *)p = (int)v;
        else
            *(long *)p = v;
        return 0;
    }
    case OPT_STR: {
        char **s = p;
        free(*s);
        *s = val ? strdup(val) : NULL;
        return 0;
    }
    }
    return -1;
}

static void env_name(const opt *o, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "ECHOLINK_");
    for (const char *c = o->name; *c && n + 1 < outlen; c++)
        out[n++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
    out[n] = '\0';
}

static void usage(void)
{
    printf("usage: echolinkd [options]\n\nEchoLink signaling server: Socket.IO-compatible "
           "signaling, presence, contacts,\noffline envelopes and the web client on one port.\n\n");
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const opt *o = &options[i];
        char env[64];
        env_name(o, env, sizeof env);
        printf("  --%-18s %s%s%s%s\n  %20s (env %s)\n", o->name, o->help,
               o->def && o->type != OPT_FLAG ? " [" : "",
               o->def && o->type != OPT_FLAG ? o->def : "",
               o->def && o->type != OPT_FLAG ? "]" : "", "", env);
    }
    printf("  --%-18s %s\n  --%-18s %s\n", "help", "this text", "version", "print the version");
}

int el_config_load(el_server_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    const size_t nopt = sizeof options / sizeof options[0];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < nopt; i++)
        if (options[i].def && set_opt(cfg, &options[i], options[i].def, err, errlen) < 0)
            return -1;
    for (size_t i = 0; i < nopt; i++) {
        char env[64];
        env_name(&options[i], env, sizeof env);
        const char *v = getenv(env);
        char why[256] = "";
        if (v && set_opt(cfg, &options[i], v, why, sizeof why) < 0)
            return el_seterr(err, errlen, -1, "%s: %s", env, why);
    }
    int port_given = getenv("ECHOLINK_PORT") != NULL;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage();
            return 1;
        }
        if (!strcmp(arg, "--version")) {
            printf("echolinkd %s\n", EL_VERSION);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0)
            return el_seterr(err, errlen, -1, "unexpected argument '%s' (see --help)", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = NULL;
        for (size_t i = 0; i < nopt; i++)
            if (strlen(options[i].name) == nlen && !strncmp(options[i].name, name, nlen))
                o = &options[i];
        if (!o)
            return el_seterr(err, errlen, -1, "unknown option '%s' (see --help)", arg);
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type != OPT_FLAG) {
            if (a + 1 >= argc)
                return el_seterr(err, errlen, -1, "--%s needs a value", o->name);
            val = argv[++a];
        }
        if (set_opt(cfg, o, val, err, errlen) < 0)
            return -1;
        if (o->offset == F(port))
            port_given = 1;
    }
    if (cfg->conformance) {
        cfg->ping_interval_ms = 300;
        cfg->ping_timeout_ms = 200;
        cfg->connect_timeout_ms = 1000;
        cfg->max_payload = 1000000;
        if (!port_given)
            cfg->port = 3000;
    }
    if (cfg->port > 65535)
        return el_seterr(err, errlen, -1, "--port must be at most 65535");
    if (!!cfg->tls_cert != !!cfg->tls_key)
        return el_seterr(err, errlen, -1, "--tls-cert and --tls-key go together");
    if (cfg->ping_interval_ms == 0 || cfg->ping_timeout_ms == 0)
        return el_seterr(err, errlen, -1, "ping interval and timeout must be positive");
    if (cfg->burst < 1 || cfg->rate < 1)
        return el_seterr(err, errlen, -1, "--rate and --burst must be at least 1");
    if (cfg->max_event_size < 1024)
        return el_seterr(err, errlen, -1, "--max-event-size must be at least 1024");
    return 0;
}

void el_config_clear(el_server_config *cfg)
{
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        if (options[i].type == OPT_STR) {
            char **s = (char **)((char *)cfg + options[i].offset);
            free(*s);
            *s = NULL;
        }
    }
}
