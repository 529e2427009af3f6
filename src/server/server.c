/* server.c - echolinkd's lws context, protocol callback and main loop.
 *
 * One protocol serves everything on one port: plain HTTP (static files,
 * /healthz, /metrics, Engine.IO long-polling) and WebSocket upgrades of
 * /socket.io/. libwebsockets runs on its libuv event-loop plugin: the
 * default poll() loop slows down linearly with thousands of idle sockets. */
#include "server/server_int.h"
#include "server/idquota.h"

#include "base/clock.h"
#include "base/log.h"

#include <errno.h>
#include <limits.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

void el_random_id(char *out, size_t chars)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char rnd[64];
    if (chars > sizeof rnd)
        chars = sizeof rnd;
    if (RAND_bytes(rnd, (int)chars) != 1)
        abort(); /* no randomness: session ids would be guessable */
    for (size_t i = 0; i < chars; i++)
        out[i] = alpha[rnd[i] & 63];
    out[chars] = '\0';
}

int64_t el_now_us(void)
{
    return el_clock_mono_us();
}

/* Wall time for what is stored or shown (created_at, envelope expiry, TURN
 * credential expiry); deadlines use el_now_us. Injectable: base/clock.h. */
int64_t el_now_ms(void)
{
    return el_clock_wall_ms();
}

static int is_engine_path(const el_server *srv, const char *path)
{
    if (!strncmp(path, "/socket.io/", 11) || !strcmp(path, "/socket.io"))
        return 1;
    return srv->cfg->conformance && (!strncmp(path, "/engine.io/", 11) || !strcmp(path, "/engine.io"));
}

/* --- TCP connections per source address ---------------------------------
 *
 * Engine.IO sessions are counted per address only once a handshake arrives
 * (engine.c admit()). Connections that never send a request would hold
 * lws's descriptor table until lws times them out, and while it is full new
 * connections wait in the kernel's accept queue: one address could lock
 * everyone out. So every accepted connection counts against its address,
 * whatever it turns into (idle, static file, /healthz, long-polling request,
 * WebSocket), and one address may hold at most el_server_tcp_cap() of them. */

/* 2 per session: a long-polling session holds a GET while it POSTs; the 8
 * leave room for an upgrade in flight and for /healthz or a static file.
 * Read live, so a reload of --max-conns-per-ip applies; never more than a
 * quarter of the descriptors lws was sized for at start: a connection still
 * sending its request head holds two (rawws.c watches a dup of it), so one
 * address stays under half of them. 0 = no limit (behind a proxy,
 * every connection comes from the proxy's address). */
static int tcp_cap(const el_server *srv)
{
    int per_ip = srv->cfg->max_conns_per_ip;
    if (per_ip <= 0)
        return 0;
    int cap = per_ip > (INT_MAX - 8) / 2 ? INT_MAX : 2 * per_ip + 8;
    return cap < srv->tcp_ceiling ? cap : srv->tcp_ceiling;
}

static int tcp_over_cap(const el_server *srv, const char *ip)
{
    int cap = tcp_cap(srv);
    if (!cap)
        return 0;
    const el_ipcount *ipc = el_map_get(srv->ips, ip);
    return ipc && ipc->tcp >= cap;
}

el_ipcount *el_ipcount_get(el_server *srv, const char *ip)
{
    el_ipcount *ipc = el_map_get(srv->ips, ip);
    if (ipc)
        return ipc;
    ipc = calloc(1, sizeof *ipc);
    if (!ipc)
        return NULL;
    snprintf(ipc->ip, sizeof ipc->ip, "%s", ip);
    if (el_map_put(srv->ips, ipc->ip, ipc) < 0) {
        free(ipc);
        return NULL;
    }
    return ipc;
}

void el_ipcount_drop(el_server *srv, el_ipcount *ipc)
{
    if (ipc->count > 0 || ipc->tcp > 0)
        return;
    el_map_del(srv->ips, ipc->ip);
    free(ipc);
}

/* LWS_CALLBACK_FILTER_NETWORK_CONNECTION: `wsi` is the listener and `fd`
 * the accepted socket, which lws closes at once if we refuse - before it
 * allocates anything for it. */
static int tcp_filter(el_server *srv, int fd)
{
    char ip[48];
    lws_get_peer_simple_fd(fd, ip, sizeof ip);
    if (!tcp_over_cap(srv, ip))
        return 0;
    srv->metrics.rejected[EL_REJ_CONN_LIMIT]++;
    EL_DEBUG("refused a TCP connection from %s: it holds %d already", ip, tcp_cap(srv));
    return -1;
}

/* LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED (or RAW_ADOPT, rawws.c): the
 * connection has its wsi now, so the count is taken here and tied to it through the wsi's opaque
 * pointer; LWS_CALLBACK_WSI_DESTROY, which lws issues once for every wsi
 * whatever closed it, gives it back. Checked again: the filter has no wsi,
 * and the count must be taken where it can be given back. */
int el_server_tcp_open(el_server *srv, struct lws *wsi)
{
    if (!tcp_cap(srv))
        return 0;
    char ip[48];
    lws_get_peer_simple(wsi, ip, sizeof ip);
    if (tcp_over_cap(srv, ip)) {
        srv->metrics.rejected[EL_REJ_CONN_LIMIT]++;
        return -1;
    }
    el_ipcount *ipc = el_ipcount_get(srv, ip);
    if (!ipc)
        return -1;
    ipc->tcp++;
    lws_set_opaque_user_data(wsi, ipc);
    return 0;
}

void el_server_tcp_closed(el_server *srv, struct lws *wsi)
{
    el_ipcount *ipc = lws_get_opaque_user_data(wsi);
    if (!ipc)
        return; /* not counted: refused, or counting was off when it came */
    lws_set_opaque_user_data(wsi, NULL);
    ipc->tcp--;
    el_ipcount_drop(srv, ipc);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    el_pss *pss = user;
    struct lws_context *ctx = lws_get_context(wsi);
    el_server *srv = ctx ? lws_context_user(ctx) : NULL;

    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        const char *path = in ? in : "/";
        srv->metrics.http_requests++;
        pss->kind = 0; /* a keep-alive connection reuses pss for each request */
        if (is_engine_path(srv, path))
            return el_engine_http(wsi, pss, path);
        return el_http_serve(wsi, srv, path);
    }
    case LWS_CALLBACK_HTTP_BODY:
        return el_engine_http_body(wsi, pss, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return el_engine_http_body_done(wsi, pss);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return el_engine_http_writeable(wsi, pss);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss)
            el_engine_http_closed(wsi, pss);
        return 0;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return el_engine_ws_filter(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return el_engine_ws_established(wsi, pss);
    case LWS_CALLBACK_RECEIVE:
        return el_engine_ws_receive(wsi, pss, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return el_engine_ws_writeable(wsi, pss);
    case LWS_CALLBACK_CLOSED:
        el_engine_ws_closed(wsi, pss);
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return tcp_filter(srv, (int)(intptr_t)in);
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return el_server_tcp_open(srv, wsi);
    case LWS_CALLBACK_WSI_DESTROY:
        if (srv)
            el_server_tcp_closed(srv, wsi);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {
        .name = "echolink",
        .callback = callback,
        .per_session_data_size = sizeof(el_pss),
        /* A small receive buffer keeps idle connections cheap; longer
         * messages arrive as fragments and are reassembled (engine.c). */
        .rx_buffer_size = 512,
        /* Set explicitly: left at 0, lws would cap each send at the small
         * rx_buffer_size and split every frame into many writes. */
        .tx_packet_size = 65536,
    },
    {
        /* plain-TCP connections as accepted, before lws's HTTP server
         * (rawws.c); lws reads them into its one shared buffer */
        .name = "el-raw",
        .callback = el_rawws_callback,
        .per_session_data_size = sizeof(el_pss),
        /* as for "echolink": lws would otherwise cut every send at its
         * 4 KiB service buffer, the rest waiting for POLLOUT */
        .tx_packet_size = 65536,
    },
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log_bridge(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* lws 4.1 reports every adoption with pre-read bytes (rawws.c hands
     * each plain HTTP connection over that way) at error level */
    if (strstr(line, "adopt_socket_readbuf"))
        return;
    if (level & LLL_ERR)
        EL_WARN("lws: %.*s", (int)n, line);
    else
        EL_DEBUG("lws: %.*s", (int)n, line);
}

static int write_port_file(const char *path, int port, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return el_seterr(err, errlen, -1, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return el_seterr(err, errlen, -1, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

el_server *el_server_new(const el_server_config *cfg, char *err, size_t errlen)
{
    el_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    srv->cfg = cfg;
    srv->conns = el_map_new();
    srv->peers = el_map_new();
    srv->ips = el_map_new();
    srv->zombies = el_map_new();
    srv->idq = el_idquota_new();
    if (!srv->conns || !srv->peers || !srv->ips || !srv->zombies || !srv->idq) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (cfg->web) {
        if (!realpath(cfg->web, srv->web_root)) {
            el_seterr(err, errlen, EL_ERR_IO, "--web %s: %s", cfg->web, strerror(errno));
            goto fail;
        }
    }
    char serr[256] = "";
    srv->store = el_store_open(cfg->db, serr, sizeof serr);
    if (!srv->store) {
        el_seterr(err, errlen, EL_ERR_DB, "--db %s: %s", cfg->db, serr);
        goto fail;
    }

    /* Our loop, lent to lws as a "foreign" loop: we decide when it stops. */
    if (uv_loop_init(&srv->loop) != 0) {
        el_seterr(err, errlen, EL_ERR_IO, "cannot create the event loop");
        goto fail;
    }
    srv->loop_live = 1;
    srv->foreign[0] = &srv->loop;
    if (cfg->redis) { /* cluster mode: parsed here, connects in el_server_run */
        srv->cluster = el_cluster_new(srv, &srv->loop, cfg->redis, cfg->node_id, err, errlen);
        if (!srv->cluster)
            goto fail;
    }
    el_timers_init(&srv->timers, &srv->loop);
    el_tlist_init(&srv->t_ping, (int64_t)cfg->ping_interval_ms * 1000);
    el_tlist_init(&srv->t_pong, (int64_t)cfg->ping_timeout_ms * 1000);
    el_tlist_init(&srv->t_connect, (int64_t)cfg->connect_timeout_ms * 1000);
    el_tlist_init(&srv->t_login, (int64_t)cfg->login_timeout_ms * 1000);
    el_tlist_init(&srv->t_grace, 2000 * 1000); /* a kicked client's last chance to leave */
    el_tlist_init(&srv->t_pace, 3000);         /* --conformance frame spacing */
    el_tlist_init(&srv->t_free, 0);
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_bridge);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = cfg->bind;
    info.protocols = protocols;
    info.user = srv;
    info.foreign_loops = srv->foreign;
    info.pcontext = &srv->ctx;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cfg->bind && strchr(cfg->bind, ':'))
        info.options &= ~(uint64_t)LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cfg->tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    /* Room for every session (a long-polling one may hold two connections),
     * for twice what one address may hold, and 128 for the listener, Redis
     * and requests that are not sessions: one address can never fill it
     * (tcp_cap() keeps any address under half of it, even while each of its
     * connections holds a second descriptor during its request head). */
    int64_t per_addr = cfg->max_conns_per_ip > 0 ? 2 * (int64_t)cfg->max_conns_per_ip + 8 : 0;
    int64_t fds = 2 * (int64_t)cfg->max_conns + 2 * per_addr + 128;
    if (fds > INT_MAX / 2)
        fds = INT_MAX / 2;
    info.fd_limit_per_thread = (unsigned)fds;
    /* lws's table is no larger than the process may open (ulimit -n) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (int64_t)rl.rlim_cur < fds)
        fds = (int64_t)rl.rlim_cur;
    srv->tcp_ceiling = (int)(fds / 4);
    info.keepalive_timeout = 30;
    info.timeout_secs = 30;
    /* lws's one read buffer (per thread, not per connection): a raw
     * WebSocket (rawws.c) reads up to this much per recv() */
    info.pt_serv_buf_size = 65536;
    /* Engine.IO's own ping/pong (PROTOCOL.md §1) decides whether a client is
     * alive. lws's default idle policy would also WebSocket-PING every
     * connection 300 s after its last WebSocket PONG - our clients never send
     * one - and re-arm a validity timer per connection in lws 4.1's sorted
     * timer list: at 10,000 clients an O(n^2) burst of ~5 s of CPU every five
     * minutes, relays stalled meanwhile (found by scripts/soak.sh). A policy
     * without a hangup time turns that machinery off. */
    static const lws_retry_bo_t no_idle_policy = {.secs_since_valid_ping = 0,
                                                  .secs_since_valid_hangup = 0};
    info.retry_and_idle_policy = &no_idle_policy;
    /* Without TLS, lws hands us every accepted connection raw: rawws.c
     * speaks the engine's WebSockets itself and passes the rest to lws's
     * HTTP server on a second vhost that does not listen. With TLS only lws
     * can read the bytes, and does everything as before. */
    if (!cfg->tls_cert) {
        info.options |= LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
        info.listen_accept_role = "raw-skt";
        info.listen_accept_protocol = "el-raw";
    }
    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        el_seterr(err, errlen, EL_ERR_IO, "cannot listen on port %d (in use, or TLS files unreadable?)",
                  cfg->port);
        goto fail;
    }
    if (!cfg->tls_cert) {
        struct lws_context_creation_info hv = info;
        hv.port = CONTEXT_PORT_NO_LISTEN_SERVER;
        hv.vhost_name = "http";
        hv.options &= ~(uint64_t)LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
        hv.listen_accept_role = NULL;
        hv.listen_accept_protocol = NULL;
        srv->http_vhost = lws_create_vhost(srv->ctx, &hv);
        if (!srv->http_vhost) {
            el_seterr(err, errlen, EL_ERR_IO, "cannot create the HTTP vhost");
            goto fail;
        }
    }
    srv->vhost = lws_get_vhost_by_name(srv->ctx, "default");
    if (!srv->vhost) {
        el_seterr(err, errlen, EL_ERR_IO, "cannot listen on port %d (in use?)", cfg->port);
        goto fail;
    }
    srv->port = lws_get_vhost_listen_port(srv->vhost);
    return srv;
fail:
    el_server_free(srv);
    return NULL;
}

/* lws on libuv runs uv_run(UV_RUN_DEFAULT) inside lws_service(), so a
 * shutdown must come from the loop itself: libuv signal watchers start it,
 * and a timer stops the loop once the goodbyes had time to go out. */
static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Runs on the loop 300 ms after the shutdown began: lws tears its context
 * down on the running loop (it closes libuv handles asynchronously and
 * clears srv->ctx through info.pcontext when done); once our own handles are
 * closed too, uv_run() in el_server_run returns by itself. */
static void stop_cb(uv_timer_t *t)
{
    el_server *srv = t->data;
    close_handle((uv_handle_t *)&srv->sig_term);
    close_handle((uv_handle_t *)&srv->sig_int);
    close_handle((uv_handle_t *)&srv->sig_hup);
    close_handle((uv_handle_t *)&srv->purge_timer);
    close_handle((uv_handle_t *)&srv->stop_timer);
    close_handle((uv_handle_t *)&srv->flush_check);
    close_handle((uv_handle_t *)&srv->flush_prepare);
    el_cluster_close(srv->cluster);
    el_timers_close(&srv->timers);
    if (srv->ctx)
        lws_context_destroy(srv->ctx);
}

static void begin_shutdown(el_server *srv)
{
    if (srv->stopping)
        return;
    EL_INFO("shutting down: closing %d connections", srv->nconns);
    srv->stopping = 1;
    el_server_close_all(srv);
    el_cluster_shutdown(srv->cluster); /* after the logouts: then the heartbeat goes */
    uv_timer_start(&srv->stop_timer, stop_cb, 300, 0);
}

/* Expired offline envelopes are never delivered; this removes them from
 * disk too. */
static void purge_cb(uv_timer_t *t)
{
    el_server *srv = t->data;
    int n = el_store_envelope_purge(srv->store, el_now_ms(), NULL, 0);
    if (n > 0)
        EL_INFO("purged %d expired offline envelopes", n);
    el_idquota_purge(srv->idq, srv->cfg->max_new_ids_per_ip, el_now_ms());
}

/* After each turn's I/O callbacks, and before the loop blocks (for what
 * timers queued): write what the turn queued, one send per session. */
static void flush_check_cb(uv_check_t *h)
{
    el_engine_flush(h->data);
}

static void flush_prepare_cb(uv_prepare_t *h)
{
    el_engine_flush(h->data);
}

static void signal_cb(uv_signal_t *h, int sig)
{
    (void)sig;
    begin_shutdown(h->data);
}

static void hup_cb(uv_signal_t *h, int sig)
{
    el_server *srv = h->data;
    (void)sig;
    if (srv->reload)
        srv->reload(srv, srv->reload_user);
    else
        EL_WARN("SIGHUP: nothing to reload");
}

void el_server_on_reload(el_server *srv, el_server_reload_fn fn, void *user)
{
    srv->reload = fn;
    srv->reload_user = user;
}

void el_server_stop(el_server *srv)
{
    begin_shutdown(srv);
}

/* The port on stdout and, with --port-file, in that file. */
static int announce(el_server *srv)
{
    char err[300];
    if (srv->cfg->port_file && write_port_file(srv->cfg->port_file, srv->port, err, sizeof err) < 0) {
        EL_ERROR("%s", err);
        return 1;
    }
    printf("echolinkd %s listening on port %d\n", EL_VERSION, srv->port);
    fflush(stdout);
    return 0;
}

int el_server_run(el_server *srv)
{
    uv_loop_t *loop = &srv->loop;
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &srv->sig_term);
    uv_signal_init(loop, &srv->sig_int);
    uv_signal_init(loop, &srv->sig_hup);
    uv_timer_init(loop, &srv->stop_timer);
    uv_timer_init(loop, &srv->purge_timer);
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv->stop_timer.data =
        srv->purge_timer.data = srv;
    uv_timer_start(&srv->purge_timer, purge_cb, 1000, 10 * 60 * 1000);
    uv_unref((uv_handle_t *)&srv->purge_timer);
    uv_check_init(loop, &srv->flush_check);
    uv_prepare_init(loop, &srv->flush_prepare);
    srv->flush_check.data = srv->flush_prepare.data = srv;
    uv_check_start(&srv->flush_check, flush_check_cb);
    uv_prepare_start(&srv->flush_prepare, flush_prepare_cb);
    uv_unref((uv_handle_t *)&srv->flush_check);
    uv_unref((uv_handle_t *)&srv->flush_prepare);
    uv_signal_start(&srv->sig_term, signal_cb, SIGTERM);
    uv_signal_start(&srv->sig_int, signal_cb, SIGINT);
    uv_signal_start(&srv->sig_hup, hup_cb, SIGHUP);
    uv_unref((uv_handle_t *)&srv->sig_hup);
    srv->handles_live = 1;
    el_cluster_start(srv->cluster);

    /* Ready only now that SIGTERM and SIGINT have their handlers: a
     * supervisor (or a test) that signals the moment it reads the port must
     * get a clean shutdown, not the default action's kill. */
    int rc = announce(srv);
    if (rc != 0)
        begin_shutdown(srv);
    uv_run(loop, UV_RUN_DEFAULT); /* until stop_cb has closed everything */
    srv->handles_live = 0;
    return rc;
}

int el_server_port(const el_server *srv)
{
    return srv->port;
}

static void free_ipcount(const char *key, void *value, void *user)
{
    (void)key;
    (void)user;
    free(value);
}

void el_server_free(el_server *srv)
{
    if (!srv)
        return;
    if (srv->ctx) /* never ran, or run() was not reached */
        lws_context_destroy(srv->ctx);
    if (srv->loop_live) {
        el_timers_close(&srv->timers);
        /* lws closes its handles on our loop: let those closes complete */
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        if (srv->ctx)
            lws_context_destroy(srv->ctx);
        uv_loop_close(&srv->loop);
    }
    el_engine_free_zombies(srv);
    el_cluster_free(srv->cluster);
    el_store_free(srv->store);
    el_map_free(srv->conns);
    el_map_free(srv->peers);
    if (srv->ips)
        el_map_each(srv->ips, free_ipcount, NULL);
    el_map_free(srv->ips);
    el_idquota_free(srv->idq);
    free(srv);
}
