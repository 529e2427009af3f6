/* test_signal.c - src/client/signal against a real echolinkd
 * (EL_TEST_ECHOLINKD): login, contacts, presence and relay between two
 * clients; ack timeouts and acks failed by a dead connection; reconnection
 * with growing, reset-after-login backoff when the server is SIGKILLed and
 * restarted on the same port; nothing listening, URL rotation, a connect
 * that never completes, and el_signal_free during it (ASan/LSan check the
 * clean-up).
 *
 * Each test starts its own echolinkd (--port 0 --port-file, a SQLite file in
 * a fresh temporary folder) and the teardown SIGKILLs it even when the test
 * failed; the child also dies with the test process (PR_SET_PDEATHSIG). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>

#include "base/err.h"
#include "client/signal.h"
#include "crypto/identity.h"

#ifndef EL_TEST_ECHOLINKD
#error "EL_TEST_ECHOLINKD must name the echolinkd binary"
#endif

#define MAX_DELAYS 64
#define MAX_CLIENTS 4

/* ---- one recorded client ---------------------------------------------- */

typedef struct {
    el_signal *sig;
    el_identity *id;
    int logins;
    json_t *login_ack;            /* the last one */
    json_t *events;               /* [{"name","arg"}] of every server event */
    el_signal_state state;
    unsigned delays[MAX_DELAYS];  /* retry_ms of each DISCONNECTED report */
    char urls[MAX_DELAYS][96];    /* the URL that had failed */
    int n_delays;
    char reason[256];             /* of the last DISCONNECTED / STOPPED */
} client;

typedef struct {
    int done;
    el_signal_ack_status st;
    json_t *ack;
    gint64 at; /* monotonic µs when it fired */
} ack_rec;

typedef struct {
    char dir[256];
    pid_t pid;
    int port;
    char server_args[8][32];
    int n_server_args;
    GMainContext *ctx;
    client c[MAX_CLIENTS];
    int blackhole; /* listening socket that never accepts, or -1 */
} fixture;

static void on_state(el_signal *s, const el_signal_state_info *info, void *user)
{
    (void)s;
    client *c = user;
    c->state = info->state;
    if (info->state == EL_SIGNAL_DISCONNECTED && c->n_delays < MAX_DELAYS) {
        c->delays[c->n_delays] = info->retry_ms;
        snprintf(c->urls[c->n_delays], sizeof c->urls[0], "%s", info->url);
        c->n_delays++;
    }
    if (info->reason)
        snprintf(c->reason, sizeof c->reason, "%s", info->reason);
}

static void on_login(el_signal *s, json_t *ack, void *user)
{
    (void)s;
    client *c = user;
    c->logins++;
    json_decref(c->login_ack);
    c->login_ack = json_incref(ack);
}

static void on_any_event(el_signal *s, const char *event, json_t *arg, void *user)
{
    (void)s;
    client *c = user;
    json_array_append_new(c->events, json_pack("{s:s, s:O}", "name", event, "arg", arg));
}

static void count_event(el_signal *s, const char *event, json_t *arg, void *user)
{
    (void)s;
    (void)event;
    (void)arg;
    (*(int *)user)++;
}

static void on_ack(el_signal *s, el_signal_ack_status st, json_t *ack, void *user)
{
    (void)s;
    ack_rec *r = user;
    r->done++;
    r->st = st;
    r->ack = ack ? json_incref(ack) : NULL;
    r->at = g_get_monotonic_time();
}

static void ack_clear(ack_rec *r)
{
    json_decref(r->ack);
    memset(r, 0, sizeof *r);
}

/* The first recorded event `name` whose arg has key == val (key NULL: any),
 * or NULL. */
static json_t *find_event(const client *c, const char *name, const char *key, const char *val)
{
    size_t i;
    json_t *e;
    json_array_foreach(c->events, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) != 0)
            continue;
        json_t *arg = json_object_get(e, "arg");
        if (!key)
            return arg;
        const char *v = json_string_value(json_object_get(arg, key));
        if (v && strcmp(v, val) == 0)
            return arg;
    }
    return NULL;
}

/* ---- the main loop ---------------------------------------------------- */

/* Runs the context until `cond` holds; fails the test after `ms`. */
#define WAIT_FOR(f, cond, ms, what)                                                       \
    do {                                                                                  \
        gint64 wf_end_ = g_get_monotonic_time() + (gint64)(ms) * 1000;                   \
        while (!(cond)) {                                                                 \
            if (g_get_monotonic_time() > wf_end_)                                         \
                fail_msg("timeout after %d ms waiting for %s", (int)(ms), (what));       \
            if (!g_main_context_iteration((f)->ctx, FALSE))                               \
                g_usleep(1000);                                                           \
        }                                                                                 \
    } while (0)

static void run_for(fixture *f, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    while (g_get_monotonic_time() < end) {
        if (!g_main_context_iteration(f->ctx, FALSE))
            g_usleep(1000);
    }
}

/* ---- echolinkd -------------------------------------------------------- */

static void server_start(fixture *f, int port)
{
    char portfile[300], db[300], logf[300], portarg[16];
    snprintf(portfile, sizeof portfile, "%s/port", f->dir);
    snprintf(db, sizeof db, "sqlite:%s/db", f->dir);
    snprintf(logf, sizeof logf, "%s/server.log", f->dir);
    snprintf(portarg, sizeof portarg, "%d", port);
    unlink(portfile);
    const char *argv[32] = {EL_TEST_ECHOLINKD, "--bind", "127.0.0.1", "--port", portarg,
                            "--port-file", portfile, "--db", db, "--log-level", "warn"};
    int argc = 11;
    for (int i = 0; i < f->n_server_args; i++)
        argv[argc++] = f->server_args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 1500; i++) { /* 15 s */
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            f->pid = 0;
            fail_msg("echolinkd exited during start-up (status %d); see %s", st, logf);
        }
        FILE *pf = fopen(portfile, "r");
        int p = 0;
        if (pf) {
            if (fscanf(pf, "%d", &p) != 1)
                p = 0;
            fclose(pf);
        }
        if (p > 0) {
            f->port = p;
            return;
        }
        g_usleep(10000);
    }
    fail_msg("echolinkd wrote no port file within 15 s");
}

static void server_signal(fixture *f, int sig)
{
    assert_true(f->pid > 0);
    assert_int_equal(kill(f->pid, sig), 0);
}

static void server_kill(fixture *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

/* ---- fixture ---------------------------------------------------------- */

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/el-signal-XXXXXX", g_get_tmp_dir());
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->blackhole = -1;
    f->ctx = g_main_context_new();
    /* libsoup puts its sources on the thread-default context (signal.h) */
    g_main_context_push_thread_default(f->ctx);
    *state = f;
    return 0;
}

static void client_clear(fixture *f, client *c)
{
    el_signal_free(c->sig);
    c->sig = NULL;
    run_for(f, 20); /* lets cancelled connects and closing sockets finish */
    el_identity_free(c->id);
    json_decref(c->login_ack);
    json_decref(c->events);
    memset(c, 0, sizeof *c);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (f->c[i].sig || f->c[i].id)
            client_clear(f, &f->c[i]);
    server_kill(f);
    if (f->blackhole >= 0)
        close(f->blackhole);
    run_for(f, 20);
    g_main_context_pop_thread_default(f->ctx);
    g_main_context_unref(f->ctx);
    rm_tree(f->dir);
    free(f);
    return 0;
}

/* A new client on f->c[i] with a fresh identity (or a copy of `same`'s). */
static client *client_new(fixture *f, int i, const el_signal_config *cfg, const client *same)
{
    client *c = &f->c[i];
    char err[256] = "";
    if (same) {
        uint8_t seed[EL_ID_KEY_LEN], skp[EL_ID_KEY_LEN];
        assert_int_equal(el_identity_ik_seed(same->id, seed), EL_OK);
        assert_int_equal(el_identity_sk_private(same->id, skp), EL_OK);
        assert_int_equal(el_identity_new(&c->id, seed, skp, err, sizeof err), EL_OK);
    } else {
        assert_int_equal(el_identity_generate(&c->id, err, sizeof err), EL_OK);
    }
    c->events = json_array();
    el_signal_callbacks cb = {.on_state = on_state, .on_login = on_login};
    c->sig = el_signal_new(f->ctx, c->id, cfg, &cb, c, err, sizeof err);
    if (!c->sig)
        fail_msg("el_signal_new: %s", err);
    assert_true(el_signal_on(c->sig, NULL, on_any_event, c) > 0);
    return c;
}

static const char *peer_id(const client *c)
{
    return el_identity_peer_id(c->id);
}

/* ---- tests ------------------------------------------------------------ */

/* Two identities log in, become contacts (§4), see each other's presence,
 * relay an offer (§5); events emitted before the login wait in the queue,
 * which is bounded. */
static void test_two_clients(void **state)
{
    fixture *f = *state;
    server_start(f, 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", f->port);
    const char *urls[] = {url, NULL};
    el_signal_config cfg = {.urls = urls, .name = "alice", .max_queue = 2};
    client *a = client_new(f, 0, &cfg, NULL);
    cfg.name = "bob";
    client *b = client_new(f, 1, &cfg, NULL);

    /* queued while IDLE, sent after the login; the queue holds 2 */
    ack_rec early = {0}, early2 = {0};
    assert_int_equal(el_signal_emit(a->sig, "get_ice_servers", NULL, 0, on_ack, &early), EL_OK);
    assert_int_equal(el_signal_emit(a->sig, "get_contacts", NULL, 0, on_ack, &early2), EL_OK);
    assert_int_equal(el_signal_emit(a->sig, "get_contacts", NULL, 0, on_ack, NULL), EL_ERR_QUOTA);
    assert_int_equal(el_signal_emit(a->sig, "login", NULL, 0, NULL, NULL), EL_ERR_INVALID);
    el_signal_stats st;
    el_signal_get_stats(a->sig, &st);
    assert_int_equal(st.queued, 2);

    assert_int_equal(el_signal_start(a->sig), EL_OK);
    assert_int_equal(el_signal_start(b->sig), EL_OK);
    assert_int_equal(el_signal_start(a->sig), EL_ERR_STATE);
    WAIT_FOR(f, a->logins == 1 && b->logins == 1, 5000, "both logins");
    assert_int_equal(el_signal_get_state(a->sig), EL_SIGNAL_LOGGED_IN);
    assert_string_equal(json_string_value(json_object_get(a->login_ack, "peer_id")), peer_id(a));
    assert_string_equal(json_string_value(json_object_get(b->login_ack, "peer_id")), peer_id(b));
    assert_true(json_is_array(json_object_get(a->login_ack, "ice_servers")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a->login_ack, "profile"), "name")),
        "alice");

    WAIT_FOR(f, early.done && early2.done, 3000, "acks of the queued events");
    assert_int_equal(early.done, 1);
    assert_int_equal(early.st, EL_SIGNAL_ACK_OK);
    assert_true(json_is_true(json_object_get(early.ack, "ok")));
    assert_true(json_is_array(json_object_get(early.ack, "ice_servers")));
    assert_true(json_is_array(json_object_get(early2.ack, "contacts")));
    assert_true(early.at <= early2.at); /* sent in order */
    WAIT_FOR(f, find_event(a, "online_users", NULL, NULL), 3000, "online_users");

    /* contacts: a asks, b accepts (§4) */
    ack_rec r1 = {0}, r2 = {0};
    json_t *req = json_pack("{s:s, s:s}", "to", peer_id(b), "message", "hello bob");
    assert_int_equal(el_signal_emit(a->sig, "contact_request", req, 3000, on_ack, &r1), EL_OK);
    json_decref(req);
    WAIT_FOR(f, r1.done, 3000, "contact_request ack");
    assert_int_equal(r1.st, EL_SIGNAL_ACK_OK);
    assert_true(json_is_true(json_object_get(r1.ack, "ok")));
    WAIT_FOR(f, find_event(b, "contact_request", NULL, NULL), 3000, "contact_request at b");
    json_t *got = find_event(b, "contact_request", NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(got, "from"), "peer_id")),
                        peer_id(a));
    assert_string_equal(json_string_value(json_object_get(got, "message")), "hello bob");

    json_t *resp = json_pack("{s:s, s:b}", "peer_id", peer_id(a), "accept", 1);
    assert_int_equal(el_signal_emit(b->sig, "contact_respond", resp, 3000, on_ack, &r2), EL_OK);
    json_decref(resp);
    WAIT_FOR(f, r2.done, 3000, "contact_respond ack");
    assert_true(json_is_true(json_object_get(r2.ack, "ok")));
    WAIT_FOR(f, find_event(a, "contact_added", "peer_id", peer_id(b)) &&
                    find_event(b, "contact_added", "peer_id", peer_id(a)),
             3000, "contact_added on both sides");
    assert_true(json_is_true(json_object_get(find_event(a, "contact_added", "peer_id", peer_id(b)),
                                             "online")));

    /* subscriptions by name; a removed handler is not called */
    int offers = 0, removed_calls = 0;
    assert_true(el_signal_on(b->sig, "offer", count_event, &offers) > 0);
    unsigned gone = el_signal_on(b->sig, "offer", count_event, &removed_calls);
    assert_true(gone > 0);
    el_signal_off(b->sig, gone);
    assert_int_equal(el_signal_on(b->sig, "offer", NULL, NULL), 0);

    /* relay: `from` is written by the server, the rest passes through (§5) */
    ack_rec r3 = {0};
    json_t *offer = json_pack("{s:s, s:s, s:s}", "to", peer_id(b), "sdp", "v=0 test-offer",
                              "from", "forged");
    assert_int_equal(el_signal_emit(a->sig, "offer", offer, 3000, on_ack, &r3), EL_OK);
    json_decref(offer);
    WAIT_FOR(f, r3.done, 3000, "offer ack");
    assert_int_equal(r3.st, EL_SIGNAL_ACK_OK);
    assert_true(json_is_true(json_object_get(r3.ack, "ok")));
    WAIT_FOR(f, find_event(b, "offer", NULL, NULL), 3000, "offer at b");
    got = find_event(b, "offer", NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(got, "from")), peer_id(a));
    assert_string_equal(json_string_value(json_object_get(got, "sdp")), "v=0 test-offer");
    assert_int_equal(offers, 1);
    assert_int_equal(removed_calls, 0);

    /* presence: b goes away and comes back (a new el_signal, same identity) */
    el_signal_stop(b->sig);
    assert_int_equal(el_signal_get_state(b->sig), EL_SIGNAL_STOPPED);
    assert_string_equal(b->reason, "stopped");
    assert_int_equal(el_signal_emit(b->sig, "get_contacts", NULL, 0, NULL, NULL), EL_ERR_STATE);
    WAIT_FOR(f, find_event(a, "user_disconnected", "peer_id", peer_id(b)), 3000,
             "user_disconnected at a");
    client *b2 = client_new(f, 2, &cfg, b);
    assert_int_equal(el_signal_start(b2->sig), EL_OK);
    WAIT_FOR(f, b2->logins == 1, 5000, "b2 login");
    WAIT_FOR(f, find_event(a, "user_connected", "peer_id", peer_id(b)), 3000,
             "user_connected at a");
    WAIT_FOR(f, find_event(b2, "online_users", NULL, NULL), 3000, "online_users at b2");
    json_t *users = json_object_get(find_event(b2, "online_users", NULL, NULL), "users");
    assert_int_equal(json_array_size(users), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(users, 0), "peer_id")),
                        peer_id(a));

    ack_clear(&early);
    ack_clear(&early2);
    ack_clear(&r1);
    ack_clear(&r2);
    ack_clear(&r3);
}

/* session_closed "replaced" (§3.4): reported, and no reconnection. */
static void test_replaced(void **state)
{
    fixture *f = *state;
    server_start(f, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", f->port);
    const char *urls[] = {url, NULL};
    el_signal_config cfg = {.urls = urls, .backoff_min_ms = 50};
    client *a = client_new(f, 0, &cfg, NULL);
    assert_int_equal(el_signal_start(a->sig), EL_OK);
    WAIT_FOR(f, a->logins == 1, 5000, "login");
    client *a2 = client_new(f, 1, &cfg, a);
    assert_int_equal(el_signal_start(a2->sig), EL_OK);
    WAIT_FOR(f, a2->logins == 1, 5000, "second login, same identity");
    WAIT_FOR(f, a->state == EL_SIGNAL_STOPPED, 3000, "first session stopped");
    assert_string_equal(a->reason, "session_closed: replaced");
    json_t *sc = find_event(a, "session_closed", NULL, NULL);
    assert_non_null(sc);
    assert_string_equal(json_string_value(json_object_get(sc, "reason")), "replaced");
    el_signal_stats st;
    el_signal_get_stats(a->sig, &st);
    unsigned attempts = st.attempts;
    run_for(f, 400); /* several backoff periods: nothing may happen */
    el_signal_get_stats(a->sig, &st);
    assert_int_equal(st.attempts, attempts);
    assert_int_equal(a->logins, 1);
    assert_int_equal(a2->state, EL_SIGNAL_LOGGED_IN);
}

/* Size limits: an event over max_outgoing is refused at once; a server
 * message over max_incoming closes the connection (libsoup answers 1009)
 * and the client retries instead of buffering it. */
static void test_limits(void **state)
{
    fixture *f = *state;
    server_start(f, 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", f->port);
    const char *urls[] = {url, NULL};
    el_signal_config cfg = {.urls = urls, .max_outgoing = 256};
    client *a = client_new(f, 0, &cfg, NULL);
    assert_int_equal(el_signal_start(a->sig), EL_OK);
    WAIT_FOR(f, a->logins == 1, 5000, "login");
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_t *arg = json_pack("{s:s}", "name", big);
    assert_int_equal(el_signal_emit(a->sig, "profile_update", arg, 0, NULL, NULL),
                     EL_ERR_TOO_LARGE);
    json_decref(arg);
    assert_int_equal(el_signal_emit(a->sig, "", NULL, 0, NULL, NULL), EL_ERR_INVALID);
    assert_int_equal(el_signal_emit(a->sig, "bad\xff", NULL, 0, NULL, NULL), EL_ERR_INVALID);
    ack_rec r = {0};
    assert_int_equal(el_signal_emit(a->sig, "no_such_event", NULL, 0, on_ack, &r), EL_OK);
    WAIT_FOR(f, r.done, 3000, "unknown_event ack");
    assert_int_equal(r.st, EL_SIGNAL_ACK_OK);
    assert_string_equal(json_string_value(json_object_get(r.ack, "error")), "unknown_event");
    ack_clear(&r);

    /* the Engine.IO open packet alone is bigger than 40 bytes */
    el_signal_config tiny = {.urls = urls, .max_incoming = 40, .backoff_min_ms = 5000};
    client *b = client_new(f, 1, &tiny, NULL);
    assert_int_equal(el_signal_start(b->sig), EL_OK);
    WAIT_FOR(f, b->state == EL_SIGNAL_DISCONNECTED, 3000, "oversized message refused");
    assert_non_null(strstr(b->reason, "WebSocket closed"));
    assert_int_equal(b->logins, 0);
}

/* An ack that never comes times out; a connection the server stops
 * serving (SIGSTOP) is found dead by the ping check and fails the pending
 * ack; pings are answered while the server runs. */
static void test_ack_timeout_and_dead_connection(void **state)
{
    fixture *f = *state;
    snprintf(f->server_args[0], sizeof f->server_args[0], "--ping-interval");
    snprintf(f->server_args[1], sizeof f->server_args[1], "200");
    snprintf(f->server_args[2], sizeof f->server_args[2], "--ping-timeout");
    snprintf(f->server_args[3], sizeof f->server_args[3], "200");
    f->n_server_args = 4;
    server_start(f, 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/socket.io/", f->port);
    const char *urls[] = {url, NULL};
    el_signal_config cfg = {.urls = urls, .backoff_min_ms = 5000};
    client *a = client_new(f, 0, &cfg, NULL);
    assert_int_equal(el_signal_start(a->sig), EL_OK);
    WAIT_FOR(f, a->logins == 1, 5000, "login");

    /* 5 ping periods: the server would drop us if we did not pong */
    run_for(f, 1000);
    assert_int_equal(a->state, EL_SIGNAL_LOGGED_IN);
    assert_int_equal(a->n_delays, 0);

    server_signal(f, SIGSTOP);
    ack_rec t = {0}, d = {0};
    gint64 t0 = g_get_monotonic_time();
    assert_int_equal(el_signal_emit(a->sig, "get_contacts", NULL, 150, on_ack, &t), EL_OK);
    assert_int_equal(el_signal_emit(a->sig, "get_ice_servers", NULL, 20000, on_ack, &d), EL_OK);
    el_signal_stats st;
    el_signal_get_stats(a->sig, &st);
    assert_int_equal(st.inflight, 2);
    WAIT_FOR(f, t.done, 2000, "ack timeout");
    assert_int_equal(t.st, EL_SIGNAL_ACK_TIMEOUT);
    assert_null(t.ack);
    assert_true(t.at - t0 >= 140 * 1000);
    assert_int_equal(d.done, 0);
    /* pingInterval + pingTimeout = 400 ms without a packet */
    WAIT_FOR(f, d.done, 3000, "ack failed by the dead connection");
    assert_int_equal(d.st, EL_SIGNAL_ACK_DISCONNECTED);
    /* no lower bound from t0: the 400 ms count from the last packet, which
     * came before t0 (by up to a ping period, more on a loaded machine) */
    assert_true(d.at > t0);
    assert_int_equal(a->state, EL_SIGNAL_DISCONNECTED);
    assert_string_equal(a->reason, "ping timeout");
    assert_int_equal(t.done, 1); /* each callback exactly once */
    el_signal_get_stats(a->sig, &st);
    assert_int_equal(st.inflight, 0);
    server_signal(f, SIGCONT);
}

/* SIGKILL, restart on the same port: pending acks fail, the client retries
 * with growing delays and logs in again by itself; the backoff starts over
 * after that login. */
static void test_server_restart(void **state)
{
    fixture *f = *state;
    server_start(f, 0);
    int port = f->port;
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", port);
    const char *urls[] = {url, NULL};
    el_signal_config cfg = {.urls = urls, .backoff_min_ms = 100, .backoff_max_ms = 2000};
    client *a = client_new(f, 0, &cfg, NULL);
    assert_int_equal(el_signal_start(a->sig), EL_OK);
    WAIT_FOR(f, a->logins == 1, 5000, "login");

    /* an ack in flight when the server dies */
    server_signal(f, SIGSTOP);
    ack_rec d = {0};
    assert_int_equal(el_signal_emit(a->sig, "get_contacts", NULL, 20000, on_ack, &d), EL_OK);
    run_for(f, 50);
    server_kill(f);
    WAIT_FOR(f, d.done, 3000, "pending ack failed");
    assert_int_equal(d.st, EL_SIGNAL_ACK_DISCONNECTED);
    /* emitted while down: queued, sent after the next login */
    ack_rec q = {0};
    assert_int_equal(el_signal_emit(a->sig, "get_ice_servers", NULL, 20000, on_ack, &q), EL_OK);

    WAIT_FOR(f, a->n_delays >= 4, 5000, "four failed attempts");
    assert_int_equal(a->logins, 1);
    server_start(f, port);
    WAIT_FOR(f, a->logins == 2, 5000, "login after the restart");
    int n = a->n_delays;
    /* 100, 200, 400, 800 ms ±30 %: each strictly above the one before */
    assert_true(a->delays[0] >= 70 && a->delays[0] <= 130);
    for (int i = 1; i < n && a->delays[i - 1] * 2 <= 2000; i++) {
        if (a->delays[i] <= a->delays[i - 1])
            fail_msg("delay %d (%u ms) did not grow from %u ms", i, a->delays[i],
                     a->delays[i - 1]);
    }
    WAIT_FOR(f, q.done, 3000, "queued event acked");
    assert_int_equal(q.st, EL_SIGNAL_ACK_OK);
    assert_true(json_is_true(json_object_get(q.ack, "ok")));

    /* after a login the backoff starts again from backoff_min_ms */
    server_kill(f);
    WAIT_FOR(f, a->n_delays > n, 3000, "disconnect after the second kill");
    assert_true(a->delays[n] >= 70 && a->delays[n] <= 130);
    ack_clear(&d);
    ack_clear(&q);
}

/* Nothing listening on two URLs: attempts alternate between them with
 * growing delays up to the cap; a bad URL is refused; a connect that never
 * completes times out, and el_signal_free during one is clean. */
static void test_nothing_listening(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    el_identity *id = NULL;
    assert_int_equal(el_identity_generate(&id, err, sizeof err), EL_OK);
    const char *bad1[] = {"ftp://127.0.0.1/", NULL};
    const char *bad2[] = {"not a url", NULL};
    const char *none[] = {NULL};
    el_signal_config bad = {.urls = bad1};
    assert_null(el_signal_new(f->ctx, id, &bad, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "ftp://"));
    bad.urls = bad2;
    assert_null(el_signal_new(f->ctx, id, &bad, NULL, NULL, err, sizeof err));
    bad.urls = none;
    assert_null(el_signal_new(f->ctx, id, &bad, NULL, NULL, err, sizeof err));
    el_identity_free(id);

    /* started from a thread whose default context is another one: refused
     * (libsoup would hang silently) */
    const char *any[] = {"ws://127.0.0.1:9", NULL};
    el_signal_config anycfg = {.urls = any};
    client *z = client_new(f, 3, &anycfg, NULL);
    g_main_context_pop_thread_default(f->ctx);
    int zrc = el_signal_start(z->sig);
    g_main_context_push_thread_default(f->ctx);
    assert_int_equal(zrc, EL_ERR_STATE);
    assert_int_equal(el_signal_get_state(z->sig), EL_SIGNAL_IDLE);
    client_clear(f, z);

    /* two ports with nothing on them */
    int ports[2];
    for (int i = 0; i < 2; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof sa;
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
        ports[i] = ntohs(sa.sin_port);
        close(fd);
    }
    char u1[64], u2[64];
    snprintf(u1, sizeof u1, "ws://127.0.0.1:%d", ports[0]);
    snprintf(u2, sizeof u2, "http://127.0.0.1:%d/", ports[1]);
    const char *urls[] = {u1, u2, NULL};
    el_signal_config cfg = {.urls = urls, .backoff_min_ms = 40, .backoff_max_ms = 300};
    client *a = client_new(f, 0, &cfg, NULL);
    ack_rec q = {0};
    assert_int_equal(el_signal_emit(a->sig, "get_contacts", NULL, 60000, on_ack, &q), EL_OK);
    assert_int_equal(el_signal_start(a->sig), EL_OK);
    WAIT_FOR(f, a->n_delays >= 6, 5000, "six failed attempts");
    /* 40, 80, 160 ±30 % grow strictly; then the cap */
    for (int i = 1; i < 3; i++)
        assert_true(a->delays[i] > a->delays[i - 1]);
    for (int i = 0; i < a->n_delays; i++) {
        assert_true(a->delays[i] <= 300);
        assert_string_equal(a->urls[i], urls[i % 2]);
    }
    assert_non_null(strstr(a->reason, "connect failed"));
    assert_int_equal(a->logins, 0);
    assert_int_equal(q.done, 0); /* still queued: it waits for a login */

    /* a listener that never accepts: the WebSocket handshake hangs */
    f->blackhole = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(f->blackhole, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->blackhole, 8), 0);
    assert_int_equal(getsockname(f->blackhole, (struct sockaddr *)&sa, &sl), 0);
    char u3[64];
    snprintf(u3, sizeof u3, "ws://127.0.0.1:%d", ntohs(sa.sin_port));
    const char *hole[] = {u3, NULL};
    el_signal_config hcfg = {.urls = hole, .connect_timeout_ms = 300, .backoff_min_ms = 5000};
    client *b = client_new(f, 1, &hcfg, NULL);
    assert_int_equal(el_signal_start(b->sig), EL_OK);
    WAIT_FOR(f, b->state == EL_SIGNAL_DISCONNECTED, 3000, "connect timeout");
    assert_string_equal(b->reason, "connect timeout");

    client *c = client_new(f, 2, &hcfg, NULL);
    ack_rec cq = {0};
    assert_int_equal(el_signal_emit(c->sig, "get_contacts", NULL, 60000, on_ack, &cq), EL_OK);
    assert_int_equal(el_signal_start(c->sig), EL_OK);
    run_for(f, 100);
    assert_int_equal(c->state, EL_SIGNAL_CONNECTING);
    el_signal_free(c->sig); /* connect pending, one event queued */
    c->sig = NULL;
    assert_int_equal(cq.done, 1);
    assert_int_equal(cq.st, EL_SIGNAL_ACK_CANCELLED);
    run_for(f, 100);
    el_signal_free(a->sig); /* in DISCONNECTED with a retry timer and a queued event */
    a->sig = NULL;
    assert_int_equal(q.done, 1);
    assert_int_equal(q.st, EL_SIGNAL_ACK_CANCELLED);
    run_for(f, 50);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_timeout_and_dead_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_listening, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
