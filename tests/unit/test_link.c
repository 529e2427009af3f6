/* test_link.c - el_link (src/client/link.c): two links in one process whose
 * signaling events are handed to each other through a queue drained by the
 * main context (the relay echolinkd does, minus the network), over real
 * el_peer connections in the test's network namespace.
 *
 * Covers: a plain connection, glare (both sides offer at once: exactly one
 * connection survives on both sides, the same cid), the remote starting
 * over with a new cid (the old connection reported idle, the new one
 * ready), and stale or malformed signaling ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test.h"

#include "client/link.h"
#include "base/log.h"
#include "crypto/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct side side;

/* One signaling event in flight. */
typedef struct {
    side *to;
    char *event;
    json_t *arg;
} relay_msg;

struct side {
    const char *name;
    el_identity *id;
    el_link *link;
    side *other;
    el_peer_config pcfg;
    const char *addrs[2];
    int want;
    el_link_state state;
    unsigned ready_count, idle_count;
    GPtrArray *offers_sent;     /* cids of our offers */
    GString *received;          /* plaintext bodies received on chat, '|' separated */
    int hold;                   /* queue our outgoing signaling instead of relaying */
};

static GMainContext *ctx;
static GQueue relay_q = G_QUEUE_INIT;
static GSource *relay_src;
static GPtrArray *held;         /* relay_msg* of sides with hold set */

static int netns_ok(void)
{
    return getenv("EL_NETNS_ADDR") != NULL;
}

static gboolean relay_cb(gpointer data)
{
    (void)data;
    relay_msg *m;
    while ((m = g_queue_pop_head(&relay_q)) != NULL) {
        el_link_on_signal(m->to->link, m->event, m->arg);
        json_decref(m->arg);
        free(m->event);
        free(m);
    }
    g_source_unref(relay_src);
    relay_src = NULL;
    return G_SOURCE_REMOVE;
}

static void relay_push(relay_msg *m)
{
    g_queue_push_tail(&relay_q, m);
    if (!relay_src) {
        relay_src = g_idle_source_new();
        g_source_set_callback(relay_src, relay_cb, NULL, NULL);
        g_source_attach(relay_src, ctx);
    }
}

static int cb_signal(el_link *l, const char *event, json_t *arg, void *user)
{
    side *s = user;
    (void)l;
    relay_msg *m = calloc(1, sizeof *m);
    m->to = s->other;
    m->event = strdup(event);
    m->arg = json_deep_copy(arg);
    json_object_del(m->arg, "to");
    json_object_set_new(m->arg, "from", json_string(el_identity_peer_id(s->id)));
    if (!strcmp(event, "offer"))
        g_ptr_array_add(s->offers_sent, strdup(json_string_value(json_object_get(arg, "cid"))));
    if (s->hold)
        g_ptr_array_add(held, m);
    else
        relay_push(m);
    return 0;
}

static int cb_want(el_link *l, void *user)
{
    (void)l;
    return ((side *)user)->want;
}

static void cb_state(el_link *l, el_link_state st, const char *why, void *user)
{
    side *s = user;
    (void)l;
    (void)why;
    s->state = st;
    if (st == EL_LINK_READY)
        s->ready_count++;
    if (st == EL_LINK_IDLE)
        s->idle_count++;
}

static void cb_plain(el_link *l, el_channel *ch, const uint8_t *pt, size_t len, void *user)
{
    side *s = user;
    (void)l;
    (void)ch;
    g_string_append_len(s->received, (const char *)pt, (gssize)len);
    g_string_append_c(s->received, '|');
}

static const el_link_callbacks cbs = {cb_signal, cb_want, cb_state, NULL, cb_plain, NULL, NULL, NULL};

static void side_init(side *s, const char *name, side *other)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->other = other;
    char err[200];
    assert_int_equal(el_identity_generate(&s->id, err, sizeof err), 0);
    s->addrs[0] = getenv("EL_NETNS_ADDR");
    s->pcfg.local_addresses = s->addrs;
    s->offers_sent = g_ptr_array_new_with_free_func(free);
    s->received = g_string_new(NULL);
}

static void side_link(side *s)
{
    el_link_config cfg = {.peer = &s->pcfg};
    s->link = el_link_new(ctx, s->id, el_identity_peer_id(s->other->id), &cfg, &cbs, s);
    assert_non_null(s->link);
}

typedef struct {
    side a, b;
} pair;

static int setup(void **state)
{
    if (!netns_ok())
        return 0;
    pair *p = calloc(1, sizeof *p);
    ctx = g_main_context_new();
    held = g_ptr_array_new();
    side_init(&p->a, "A", &p->b);
    side_init(&p->b, "B", &p->a);
    side_link(&p->a);
    side_link(&p->b);
    *state = p;
    return 0;
}

static void drop_msg(gpointer data)
{
    relay_msg *m = data;
    json_decref(m->arg);
    free(m->event);
    free(m);
}

static int teardown(void **state)
{
    pair *p = *state;
    if (!p)
        return 0;
    el_link_free(p->a.link);
    el_link_free(p->b.link);
    if (relay_src) {
        g_source_destroy(relay_src);
        g_source_unref(relay_src);
        relay_src = NULL;
    }
    g_queue_clear_full(&relay_q, drop_msg);
    g_ptr_array_free(held, TRUE);
    for (int i = 0; i < 50 && g_main_context_iteration(ctx, FALSE); i++)
        ;
    side *sides[] = {&p->a, &p->b};
    for (int i = 0; i < 2; i++) {
        el_identity_free(sides[i]->id);
        g_ptr_array_free(sides[i]->offers_sent, TRUE);
        g_string_free(sides[i]->received, TRUE);
    }
    g_main_context_unref(ctx);
    free(p);
    return 0;
}

typedef int (*cond_fn)(pair *p);

static int run_until(pair *p, cond_fn cond, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    while (!cond(p)) {
        if (g_get_monotonic_time() > end)
            return 0;
        g_main_context_iteration(ctx, FALSE);
        g_usleep(1000);
    }
    return 1;
}

static void spin(pair *p, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    (void)p;
    while (g_get_monotonic_time() < end) {
        g_main_context_iteration(ctx, FALSE);
        g_usleep(1000);
    }
}

static int both_ready(pair *p)
{
    return p->a.state == EL_LINK_READY && p->b.state == EL_LINK_READY;
}

static void exchange(pair *p, const char *text)
{
    char body[64];
    snprintf(body, sizeof body, "%s", text);
    assert_int_equal(el_link_send(p->a.link, NULL, (const uint8_t *)body, strlen(body)), 0);
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while (!strstr(p->b.received->str, text) && g_get_monotonic_time() < end)
        g_main_context_iteration(ctx, TRUE);
    assert_non_null(strstr(p->b.received->str, text));
}

static void test_connect(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    p->a.want = 1;
    el_link_connect(p->a.link);
    assert_true(run_until(p, both_ready, 15000));
    assert_int_equal(p->a.offers_sent->len, 1);
    assert_int_equal(p->b.offers_sent->len, 0);
    assert_non_null(el_link_remote_bundle(p->a.link));
    exchange(p, "hello");
}

/* Both sides offer before either offer arrives. */
static void test_glare(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    p->a.want = p->b.want = 1;
    p->a.hold = p->b.hold = 1;
    el_link_connect(p->a.link);
    el_link_connect(p->b.link);
    assert_int_equal(held->len, 2); /* the two offers, crossing */
    p->a.hold = p->b.hold = 0;
    for (guint i = 0; i < held->len; i++)
        relay_push(g_ptr_array_index(held, i));
    g_ptr_array_set_size(held, 0);
    assert_true(run_until(p, both_ready, 15000));
    spin(p, 500);
    assert_true(both_ready(p));
    assert_int_equal(p->a.ready_count, 1);
    assert_int_equal(p->b.ready_count, 1);
    /* the polite side (smaller peer ID) gave up its own offer */
    side *polite = strcmp(el_identity_peer_id(p->a.id), el_identity_peer_id(p->b.id)) < 0 ? &p->a : &p->b;
    assert_true(polite->idle_count >= 1);
    exchange(p, "after glare");
}

/* B starts over (a new cid) while the connection is up. */
static void test_remote_restart(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    p->a.want = 1;
    el_link_connect(p->a.link);
    assert_true(run_until(p, both_ready, 15000));
    unsigned a_idle = p->a.idle_count;
    /* B forgets its connection and offers anew, as after a restart */
    el_link_reset(p->b.link, "test restart");
    p->b.want = 1;
    el_link_connect(p->b.link);
    assert_true(run_until(p, both_ready, 15000));
    assert_true(p->a.idle_count > a_idle); /* the replaced connection was reported */
    assert_int_equal(p->a.ready_count, 2);
    exchange(p, "new connection");
}

/* Stale and malformed signaling leave a working connection alone. */
static void test_stale_input(void **state)
{
    if (!netns_ok())
        skip();
    pair *p = *state;
    p->a.want = 1;
    el_link_connect(p->a.link);
    assert_true(run_until(p, both_ready, 15000));
    const char *bad[][2] = {
        {"answer", "{\"cid\":\"0000000000000000\",\"sdp\":\"v=0\"}"},
        {"ice_candidate", "{\"cid\":\"0000000000000000\",\"candidate\":\"garbage\"}"},
        {"offer", "{\"sdp\":\"v=0\"}"},
        {"offer", "{\"cid\":\"XYZ\",\"sdp\":\"v=0\"}"},
        {"answer", "{\"cid\":7}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *arg = json_loads(bad[i][1], 0, NULL);
        el_link_on_signal(p->a.link, bad[i][0], arg);
        json_decref(arg);
    }
    spin(p, 300);
    assert_true(both_ready(p));
    assert_int_equal(p->a.ready_count, 1);
    exchange(p, "still here");
}

int main(void)
{
    el_log_set_level(EL_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_glare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
