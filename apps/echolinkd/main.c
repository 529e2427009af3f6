/* echolinkd - the EchoLink signaling server. See --help and docs/PROTOCOL.md. */
#include "base/clock.h"
#include "base/log.h"
#include "server/config.h"
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What SIGHUP needs: the command line to load the configuration again, and
 * the running configuration (the server reads it through a pointer, so an
 * option changed here applies from then on). */
typedef struct {
    int argc;
    char **argv;
    el_server_config *cfg;
} reload_ctx;

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Options the running server cannot change (sockets, store, TLS, cluster,
 * protocol timings of open sessions): a new value is reported, not applied. */
static void report_fixed(const el_server_config *now, const el_server_config *next)
{
    struct {
        const char *key;
        int changed;
    } fixed[] = {
        {"port", now->port != next->port},
        {"bind", !same_str(now->bind, next->bind)},
        {"port-file", !same_str(now->port_file, next->port_file)},
        {"db", !same_str(now->db, next->db)},
        {"web", !same_str(now->web, next->web)},
        {"tls-cert", !same_str(now->tls_cert, next->tls_cert)},
        {"tls-key", !same_str(now->tls_key, next->tls_key)},
        {"conformance", now->conformance != next->conformance},
        {"open-presence", now->open_presence != next->open_presence},
        {"ping-interval", now->ping_interval_ms != next->ping_interval_ms},
        {"ping-timeout", now->ping_timeout_ms != next->ping_timeout_ms},
        {"connect-timeout", now->connect_timeout_ms != next->connect_timeout_ms},
        {"max-payload", now->max_payload != next->max_payload},
        {"login-timeout", now->login_timeout_ms != next->login_timeout_ms},
        {"max-conns", now->max_conns != next->max_conns}, /* sizes libwebsockets' fd table */
        {"redis", !same_str(now->redis, next->redis)},
        {"node-id", !same_str(now->node_id, next->node_id)},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (fixed[i].changed)
            EL_WARN("reload: %s changed; it takes effect at the next restart", fixed[i].key);
}

static void swap_str(char **a, char **b)
{
    char *t = *a;
    *a = *b;
    *b = t;
}

/* SIGHUP: the configuration file, environment and command line again. A
 * configuration that does not load leaves the running one as it is. */
static void reload(el_server *srv, void *user)
{
    reload_ctx *r = user;
    (void)srv;
    el_server_config next;
    char err[512] = "";
    el_log_level level;
    int rc = el_config_load(&next, r->argc, r->argv, err, sizeof err);
    if (rc == 0 && el_log_parse_level(next.log_level, &level) < 0)
        rc = -1, snprintf(err, sizeof err, "--log-level must be error, warn, info or debug");
    if (rc != 0) {
        EL_ERROR("reload: %s; the running configuration is kept", err);
        el_config_clear(&next);
        return;
    }
    report_fixed(r->cfg, &next);
    el_server_config *cfg = r->cfg;
    el_log_set_level(level);
    swap_str(&cfg->log_level, &next.log_level);
    cfg->max_event_size = next.max_event_size;
    cfg->rate = next.rate;
    cfg->burst = next.burst;
    cfg->max_conns_per_ip = next.max_conns_per_ip;
    cfg->max_new_ids_per_ip = next.max_new_ids_per_ip;
    swap_str(&cfg->turn_secret, &next.turn_secret);
    swap_str(&cfg->turn_urls, &next.turn_urls);
    swap_str(&cfg->stun_urls, &next.stun_urls);
    cfg->turn_ttl = next.turn_ttl;
    cfg->queue_max = next.queue_max;
    cfg->envelope_ttl = next.envelope_ttl;
    el_config_clear(&next); /* the replaced values, and what was not applied */
    EL_INFO("reload: configuration loaded again (log level, rate, event size, connections "
            "per address, TURN/STUN, offline queue)");
}

int main(int argc, char **argv)
{
    el_server_config cfg;
    char err[512] = "";
    int rc = el_config_load(&cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "echolinkd: %s\n", err);
        el_config_clear(&cfg);
        return rc < 0 ? 2 : 0;
    }
    el_log_level level;
    if (el_log_parse_level(cfg.log_level, &level) < 0) {
        fprintf(stderr, "echolinkd: --log-level must be error, warn, info or debug\n");
        el_config_clear(&cfg);
        return 2;
    }
    el_log_set_level(level);
    el_clock_init(); /* warns now if a test moved the clock */
    el_server *srv = el_server_new(&cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "echolinkd: %s\n", err);
        el_config_clear(&cfg);
        return 1;
    }
    reload_ctx r = {argc, argv, &cfg};
    el_server_on_reload(srv, reload, &r);
    rc = el_server_run(srv);
    el_server_free(srv);
    el_config_clear(&cfg);
    return rc;
}
