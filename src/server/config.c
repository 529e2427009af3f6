/* config.c - see config.h. */
#include "server/config.h"

#include "base/err.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_INT, OPT_LONG, OPT_STR, OPT_FLAG, OPT_ACTION } opt_type;

/* Where a value came from: it decides how an error names the option
 * ("--port" on the command line and in the environment, "port" in a file)
 * and what a flag's error suggests. */
typedef enum { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_ARG } opt_src;

typedef struct {
    const char *name;
    opt_type type;
    size_t offset;
    const char *def;
    long min, max;           /* OPT_INT, OPT_LONG */
    const char *const *choices; /* OPT_STR: NULL-terminated, or NULL = any */
    int no_file;             /* not a key of the configuration file */
    const char *help;
} opt;

#define F(field) offsetof(el_server_config, field)
#define INT(n, field, def, lo, hi, help) {n, OPT_INT, F(field), def, lo, hi, NULL, 0, help}
#define LNG(n, field, def, lo, hi, help) {n, OPT_LONG, F(field), def, lo, hi, NULL, 0, help}
#define STR(n, field, def, help) {n, OPT_STR, F(field), def, 0, 0, NULL, 0, help}
#define FLAG(n, field, help) {n, OPT_FLAG, F(field), "0", 0, 1, NULL, 0, help}
#define ACTION(n, help) {n, OPT_ACTION, 0, NULL, 0, 0, NULL, 1, help}

/* The names base/log.c's el_log_parse_level() accepts. */
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

static const opt options[] = {
    /* A file naming another file would need include rules: --config stays
     * on the command line and in the environment. */
    {"config", OPT_STR, F(config), NULL, 0, 0, NULL, 1,
     "read options from this file (key = value lines, see echolinkd(8))"},
    INT("port", port, "5000", 0, 65535, "TCP port for HTTP and WebSocket (0 = any free port)"),
    STR("bind", bind, NULL, "listen address (default: all interfaces)"),
    STR("port-file", port_file, NULL, "write the listening port to this file"),
    STR("db", db, "sqlite:data/echolink.db", "store URL: sqlite:PATH or sqlite::memory:"),
    STR("web", web, NULL, "serve static files (the web client) from this folder"),
    {"log-level", OPT_STR, F(log_level), "info", 0, 0, log_levels, 0, "error, warn, info or debug"},
    STR("tls-cert", tls_cert, NULL, "PEM certificate: serve HTTPS/WSS"),
    STR("tls-key", tls_key, NULL, "PEM private key for --tls-cert"),
    FLAG("conformance", conformance,
         "Socket.IO conformance-suite mode (port 3000, short timers, echo handlers)"),
    FLAG("open-presence", open_presence, "every user sees every online user (small deployments)"),
    INT("ping-interval", ping_interval_ms, "25000", 1, INT_MAX, "Engine.IO ping interval, ms"),
    INT("ping-timeout", ping_timeout_ms, "20000", 1, INT_MAX, "Engine.IO ping timeout, ms"),
    INT("connect-timeout", connect_timeout_ms, "45000", 0, INT_MAX,
        "Socket.IO CONNECT deadline after open, ms"),
    INT("login-timeout", login_timeout_ms, "10000", 0, INT_MAX, "login deadline after connect, ms"),
    LNG("max-payload", max_payload, "1000000", 0, LONG_MAX, "largest HTTP long-polling body, bytes"),
    LNG("max-event-size", max_event_size, "65536", 1024, LONG_MAX,
        "largest Socket.IO event, bytes"),
    INT("rate", rate, "50", 1, INT_MAX, "events per second per connection"),
    INT("burst", burst, "100", 1, INT_MAX, "event burst per connection"),
    INT("max-conns", max_conns, "10000", 0, INT_MAX, "most concurrent connections"),
    INT("max-conns-per-ip", max_conns_per_ip, "64", 0, INT_MAX,
        "most concurrent connections from one address (0 = no limit)"),
    INT("max-new-ids-per-ip", max_new_ids_per_ip, "100", 0, INT_MAX,
        "new identities one address (IPv6: its /64) may create per hour (0 = no limit)"),
    STR("turn-secret", turn_secret, NULL, "secret shared with coturn (use-auth-secret)"),
    STR("turn-urls", turn_urls, NULL, "comma-separated TURN URLs handed to clients"),
    STR("stun-urls", stun_urls, NULL, "comma-separated STUN URLs handed to clients"),
    INT("turn-ttl", turn_ttl, "3600", 0, INT_MAX, "lifetime of minted TURN credentials, s"),
    INT("queue-max", queue_max, "1000", 0, INT_MAX, "offline envelopes kept per recipient"),
    INT("envelope-ttl", envelope_ttl, "604800", 0, INT_MAX,
        "longest an offline envelope is kept, s"),
    STR("redis", redis, NULL, "cluster mode: share presence and routing through redis://host:port[/db]"),
    STR("node-id", node_id, NULL, "this node's id in the cluster, [A-Za-z0-9_-]{1,64} (default: random)"),
    ACTION("help", "print this text and exit"),
    ACTION("version", "print the version and exit"),
};

#define NOPT (sizeof options / sizeof options[0])

static const opt *find_opt(const char *name, size_t nlen)
{
    for (size_t i = 0; i < NOPT; i++)
        if (strlen(options[i].name) == nlen && !strncmp(options[i].name, name, nlen))
            return &options[i];
    return NULL;
}

/* Stores val (NULL: a flag without value) into cfg. The message names the
 * option as its source spells it; the caller adds where it came from. */
static int set_opt(el_server_config *cfg, const opt *o, const char *val, opt_src src, char *err,
                   size_t errlen)
{
    void *p = (char *)cfg + o->offset;
    const char *dash = src == SRC_FILE ? "" : "--";
    switch (o->type) {
    case OPT_FLAG:
        if ((!val && src == SRC_ARG) || (val && (!strcmp(val, "1") || !strcmp(val, "true") ||
                                                 !strcmp(val, "yes")))) {
            *(int *)p = 1;
        } else if (val && (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no"))) {
            *(int *)p = 0;
        } else if (src == SRC_FILE) {
            return el_seterr(err, errlen, -1, "%s needs 1/0, true/false or yes/no, not '%s'",
                             o->name, val ? val : "");
        } else {
            return el_seterr(err, errlen, -1, "--%s takes no value (or 0/1), not '%s'", o->name,
                             val ? val : "");
        }
        return 0;
    case OPT_INT:
    case OPT_LONG: {
        /* strtol alone would take " 12", "+12" and "-0": digits only. */
        if (!val || !isdigit((unsigned char)val[0]))
            return el_seterr(err, errlen, -1, "%s%s needs a non-negative number, not '%s'", dash,
                             o->name, val ? val : "");
        char *end;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (*end)
            return el_seterr(err, errlen, -1, "%s%s needs a non-negative number, not '%s'", dash,
                             o->name, val);
        if (errno == ERANGE || v > o->max)
            return el_seterr(err, errlen, -1, "%s%s must be at most %ld, not '%s'", dash, o->name,
                             o->max, val);
        if (v < o->min)
            return el_seterr(err, errlen, -1, "%s%s must be at least %ld, not '%s'", dash,
                             o->name, o->min, val);
        if (o->type == OPT_INT)
            *(int *)p = (int)v;
        else
            *(long *)p = v;
        return 0;
    }
    case OPT_STR: {
        if (o->choices && val) {
            size_t i = 0;
            while (o->choices[i] && strcmp(o->choices[i], val))
                i++;
            if (!o->choices[i]) {
                char list[128] = "";
                for (size_t k = 0; o->choices[k]; k++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                             k ? ", " : "", o->choices[k]);
                return el_seterr(err, errlen, -1, "%s%s must be one of %s; not '%s'", dash,
                                 o->name, list, val);
            }
        }
        char *copy = NULL;
        if (val) {
            copy = strdup(val);
            if (!copy)
                return el_seterr(err, errlen, -1, "out of memory");
        }
        char **s = p;
        free(*s);
        *s = copy;
        return 0;
    }
    case OPT_ACTION:
        break;
    }
    return el_seterr(err, errlen, -1, "%s%s is not a setting", dash, o->name);
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
    for (size_t i = 0; i < NOPT; i++) {
        const opt *o = &options[i];
        int bracket = o->def && o->type != OPT_FLAG;
        printf("  --%-18s %s%s%s%s\n", o->name, o->help, bracket ? " [" : "",
               bracket ? o->def : "", bracket ? "]" : "");
        if (o->type != OPT_ACTION) {
            char env[64];
            env_name(o, env, sizeof env);
            printf("  %20s (env %s)\n", "", env);
        }
    }
    printf("\nIn the --config file every option but --config is a `name = value` line\n"
           "(flags: 1/0, true/false, yes/no; `#` starts a comment line). The command\n"
           "line beats the environment, which beats the file. See echolinkd(8).\n");
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Reads one configuration file into cfg; *port_set records a `port` line
 * (for --conformance's default port). */
static int load_file(el_server_config *cfg, const char *path, int *port_set, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return el_seterr(err, errlen, -1, "cannot read configuration file '%s': %s", path,
                         strerror(errno));
    int set_on[NOPT] = {0}; /* line where each key was set, for duplicates */
    char line[EL_CONFIG_MAX_LINE + 2];
    char why[256];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        else if (!feof(f) || n > EL_CONFIG_MAX_LINE) {
            rc = el_seterr(err, errlen, -1, "%s:%d: line longer than %d bytes", path, lineno,
                           EL_CONFIG_MAX_LINE);
            goto out;
        }
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        char *s = line;
        if (lineno == 1 && !strncmp(s, "\xEF\xBB\xBF", 3)) /* editors' UTF-8 BOM */
            s += 3;
        s = trim(s);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq || eq == s) {
            rc = el_seterr(err, errlen, -1, "%s:%d: expected 'key = value', not '%.60s'", path,
                           lineno, s);
            goto out;
        }
        *eq = '\0';
        char *key = trim(s);
        char *val = trim(eq + 1);
        const opt *o = find_opt(key, strlen(key));
        if (!o) {
            rc = el_seterr(err, errlen, -1, "%s:%d: unknown key '%.60s'%s", path, lineno, key,
                           !strncmp(key, "--", 2) ? " (keys have no leading dashes)" : "");
            goto out;
        }
        if (o->type == OPT_ACTION) {
            rc = el_seterr(err, errlen, -1,
                           "%s:%d: '%s' is a command-line action, not a configuration key",
                           path, lineno, key);
            goto out;
        }
        if (o->no_file) {
            rc = el_seterr(err, errlen, -1,
                           "%s:%d: '%s' is not valid in a configuration file", path, lineno, key);
            goto out;
        }
        size_t idx = (size_t)(o - options);
        if (set_on[idx]) {
            rc = el_seterr(err, errlen, -1, "%s:%d: duplicate key '%s' (first set on line %d)",
                           path, lineno, key, set_on[idx]);
            goto out;
        }
        set_on[idx] = lineno;
        if (!*val) {
            rc = el_seterr(err, errlen, -1, "%s:%d: %s has no value", path, lineno, key);
            goto out;
        }
        if (set_opt(cfg, o, val, SRC_FILE, why, sizeof why) < 0) {
            rc = el_seterr(err, errlen, -1, "%s:%d: %s", path, lineno, why);
            goto out;
        }
        if (o->offset == F(port))
            *port_set = 1;
    }
    if (ferror(f))
        rc = el_seterr(err, errlen, -1, "cannot read configuration file '%s': %s", path,
                       strerror(errno));
out:
    fclose(f);
    return rc;
}

typedef struct {
    const opt *o;
    const char *val;
} arg_pair;

/* Splits argv into (option, value) pairs without applying them, so that
 * --help/--version work whatever the values say and the file named by
 * --config is read before the environment and the command line override it.
 * Returns 0, 1 (help/version printed) or -1. */
static int parse_args(int argc, char **argv, arg_pair *pairs, int *npairs, char *err,
                      size_t errlen)
{
    *npairs = 0;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "-h"))
            arg = "--help";
        if (strncmp(arg, "--", 2) != 0)
            return el_seterr(err, errlen, -1, "unexpected argument '%s' (see --help)", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        const opt *o = find_opt(name, eq ? (size_t)(eq - name) : strlen(name));
        if (!o)
            return el_seterr(err, errlen, -1, "unknown option '%s' (see --help)", arg);
        if (o->type == OPT_ACTION) {
            if (!strcmp(o->name, "help"))
                usage();
            else
                printf("echolinkd %s\n", EL_VERSION);
            return 1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type != OPT_FLAG) {
            if (a + 1 >= argc)
                return el_seterr(err, errlen, -1, "--%s needs a value", o->name);
            val = argv[++a];
        }
        pairs[*npairs].o = o;
        pairs[*npairs].val = val;
        (*npairs)++;
    }
    return 0;
}

int el_config_load(el_server_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    arg_pair *pairs = calloc(argc > 0 ? (size_t)argc : 1, sizeof *pairs);
    if (!pairs)
        return el_seterr(err, errlen, -1, "out of memory");
    int npairs = 0, port_given = 0;
    int rc = parse_args(argc, argv, pairs, &npairs, err, errlen);
    if (rc != 0)
        goto out;

    for (size_t i = 0; i < NOPT; i++) {
        if (options[i].def) {
            rc = set_opt(cfg, &options[i], options[i].def, SRC_DEFAULT, err, errlen);
            if (rc < 0)
                goto out;
        }
    }

    const char *path = getenv("ECHOLINK_CONFIG");
    for (int k = 0; k < npairs; k++)
        if (!strcmp(pairs[k].o->name, "config"))
            path = pairs[k].val;
    if (path) {
        rc = load_file(cfg, path, &port_given, err, errlen);
        if (rc < 0)
            goto out;
    }

    for (size_t i = 0; i < NOPT; i++) {
        if (options[i].type == OPT_ACTION)
            continue;
        char env[64];
        env_name(&options[i], env, sizeof env);
        const char *v = getenv(env);
        if (!v)
            continue;
        char why[256] = "";
        rc = set_opt(cfg, &options[i], v, SRC_ENV, why, sizeof why);
        if (rc < 0) {
            el_seterr(err, errlen, -1, "%s: %s", env, why);
            goto out;
        }
        if (options[i].offset == F(port))
            port_given = 1;
    }

    for (int k = 0; k < npairs; k++) {
        rc = set_opt(cfg, pairs[k].o, pairs[k].val, SRC_ARG, err, errlen);
        if (rc < 0)
            goto out;
        if (pairs[k].o->offset == F(port))
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
    /* Ranges are checked per value (with its source); only rules that join
     * two options are left for here. */
    if (!!cfg->tls_cert != !!cfg->tls_key)
        rc = el_seterr(err, errlen, -1, "--tls-cert and --tls-key go together");
out:
    free(pairs);
    return rc;
}

void el_config_clear(el_server_config *cfg)
{
    for (size_t i = 0; i < NOPT; i++) {
        if (options[i].type == OPT_STR) {
            char **s = (char **)((char *)cfg + options[i].offset);
            free(*s);
            *s = NULL;
        }
    }
}

int el_config_option_get(size_t i, el_config_option *out)
{
    static const char *const type_names[] = {
        [OPT_INT] = "number", [OPT_LONG] = "number", [OPT_STR] = "string",
        [OPT_FLAG] = "flag", [OPT_ACTION] = "action",
    };
    if (i >= NOPT)
        return -1;
    const opt *o = &options[i];
    out->name = o->name;
    out->type = type_names[o->type];
    out->def = o->def;
    out->help = o->help;
    out->min = o->min;
    out->max = o->max;
    out->file_key = !o->no_file;
    return 0;
}
