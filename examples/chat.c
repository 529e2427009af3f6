/* chat.c - two users meet through an echolinkd and talk over a data channel.
 *
 * One process plays both users, A and B, each with a fresh identity and its
 * own signaling connection, as two programs on two machines would:
 *
 *   1. A and B log in to the server (el_signal).
 *   2. A asks B to be a contact, B accepts: the server relays signaling only
 *      between contacts.
 *   3. A creates a peer connection and a data channel, and sends its offer
 *      and its ICE candidates to B through the server (events "offer" and
 *      "ice_candidate" {"to": B, ...}; B receives them as {"from": A, ...}).
 *   4. B answers the same way ("answer", "ice_candidate").
 *   5. The channel opens; A sends a message, B receives it and replies.
 *
 *   cc chat.c $(pkg-config --cflags --libs echolink) -o chat
 *   ./chat ws://127.0.0.1:8080 [local address]
 *
 * Exit 0 once A has B's reply; 1 with a message on any failure or after
 * 20 seconds. The optional local address restricts ICE to one interface
 * (a test network namespace, say). */
#include <echolink/el_peer.h>
#include <echolink/el_signal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_S 20

typedef struct chat chat;

typedef struct user {
    const char *name;
    chat *app;
    el_identity *id;
    el_signal *sig;
    el_peer *pc;
    el_channel *ch;
    struct user *other;
    int logged_in;
} user;

struct chat {
    GMainLoop *loop;
    el_peer_config peer_cfg;
    user a, b;
    const char *stage; /* what we are waiting for, for the timeout message */
    int asked;         /* A has sent its contact request */
    int ok;
};

/* ---- ending ----------------------------------------------------------- */

static void finish(chat *app, int ok, const char *why)
{
    if (!g_main_loop_is_running(app->loop))
        return; /* the first outcome counts */
    app->ok = ok;
    if (!ok)
        fprintf(stderr, "chat: FAILED while %s: %s\n", app->stage, why);
    g_main_loop_quit(app->loop);
}

static gboolean on_timeout(gpointer data)
{
    char why[64];
    snprintf(why, sizeof why, "not done within %d s", TIMEOUT_S);
    finish(data, 0, why);
    return G_SOURCE_REMOVE;
}

/* ---- signaling: sending --------------------------------------------------- */

/* Every event we send must be acknowledged with {"ok":true}; anything else
 * (offline, not_allowed, a timeout, ...) ends the example. */
static void on_ack(el_signal *s, el_signal_ack_status st, json_t *ack, void *data)
{
    user *u = data;
    char why[256];
    (void)s;
    if (st == EL_SIGNAL_ACK_CANCELLED)
        return; /* we are stopping */
    if (st == EL_SIGNAL_ACK_OK && json_is_true(json_object_get(ack, "ok")))
        return;
    const char *code = st == EL_SIGNAL_ACK_OK ? json_string_value(json_object_get(ack, "error"))
                                              : "no ack (timeout or disconnected)";
    snprintf(why, sizeof why, "%s: an event was refused: %s", u->name, code ? code : "?");
    finish(u->app, 0, why);
}

/* Sends `event` with `arg` (consumed) to the server. */
static void send_event(user *u, const char *event, json_t *arg)
{
    char why[128];
    int rc = arg ? el_signal_emit(u->sig, event, arg, 0, on_ack, u) : -1;
    json_decref(arg);
    if (rc != 0) {
        snprintf(why, sizeof why, "%s: cannot send %s (%d)", u->name, event, rc);
        finish(u->app, 0, why);
    }
}

/* ---- the peer connection ------------------------------------------------ */

static void on_local_candidate(el_peer *pc, const char *cand, const char *mid, void *data)
{
    user *u = data;
    (void)pc;
    /* NULL is the end of candidates: sent as JSON null */
    send_event(u, "ice_candidate",
               json_pack("{s:s, s:s?, s:s?}", "to", el_identity_peer_id(u->other->id),
                         "candidate", cand, "mid", mid));
}

static void on_peer_state(el_peer *pc, el_peer_state st, const char *why, void *data)
{
    user *u = data;
    (void)pc;
    printf("%s: peer connection %s\n", u->name, el_peer_state_name(st));
    if (st == EL_PEER_FAILED)
        finish(u->app, 0, why ? why : "the peer connection failed");
}

static void on_open(el_channel *ch, void *data)
{
    user *u = data;
    const char *text = "hello B, this is A";
    if (u != &u->app->a)
        return; /* A speaks first */
    u->app->stage = "waiting for B to receive the message";
    if (el_channel_send_text(ch, text, strlen(text)) != 0)
        finish(u->app, 0, "A cannot send on the open channel");
}

static void on_message(el_channel *ch, int binary, const uint8_t *msg, size_t len, void *data)
{
    user *u = data;
    const char *reply = "hello A, B here";
    (void)binary;
    printf("%s received: %.*s\n", u->name, (int)len, (const char *)msg);
    if (u == &u->app->a) {
        finish(u->app, 1, NULL); /* the reply came back: done */
        return;
    }
    u->app->stage = "waiting for B's reply";
    if (el_channel_send_text(ch, reply, strlen(reply)) != 0)
        finish(u->app, 0, "B cannot reply");
}

static const el_channel_callbacks channel_cbs = {on_open, on_message, NULL, NULL};

static void on_channel(el_peer *pc, el_channel *ch, void *data)
{
    user *u = data;
    (void)pc;
    u->ch = ch; /* the channel A opened, as B sees it */
    el_channel_set_callbacks(ch, &channel_cbs, u);
}

static const el_peer_callbacks peer_cbs = {on_local_candidate, on_peer_state, on_channel};

static int peer_create(user *u)
{
    char err[256] = "", why[300];
    u->pc = el_peer_new(g_main_loop_get_context(u->app->loop), &u->app->peer_cfg, &peer_cbs, u,
                        err, sizeof err);
    if (!u->pc) {
        snprintf(why, sizeof why, "%s: el_peer_new: %s", u->name, err);
        finish(u->app, 0, why);
        return -1;
    }
    return 0;
}

/* A: the contact is there, make the offer. */
static void start_call(user *u)
{
    char err[256] = "", why[300];
    u->app->stage = "making the offer";
    if (peer_create(u) != 0)
        return;
    u->ch = el_peer_create_channel(u->pc, "chat", NULL, err, sizeof err);
    char *sdp = u->ch ? el_peer_create_offer(u->pc, err, sizeof err) : NULL;
    if (!sdp) {
        snprintf(why, sizeof why, "A: cannot make an offer: %s", err[0] ? err : "?");
        finish(u->app, 0, why);
        return;
    }
    el_channel_set_callbacks(u->ch, &channel_cbs, u);
    u->app->stage = "connecting the data channel";
    send_event(u, "offer", json_pack("{s:s, s:s}", "to", el_identity_peer_id(u->other->id),
                                     "sdp", sdp));
    free(sdp);
}

/* ---- signaling: receiving ------------------------------------------------ */

/* Relayed events carry "from": accept them only from the other user. */
static int is_other(user *u, const char *peer_id)
{
    return peer_id && strcmp(peer_id, el_identity_peer_id(u->other->id)) == 0;
}

static int from_other(user *u, json_t *arg)
{
    return is_other(u, json_string_value(json_object_get(arg, "from")));
}

static void on_offer(el_signal *s, const char *event, json_t *arg, void *data)
{
    user *u = data;
    char err[256] = "", why[300];
    const char *sdp = json_string_value(json_object_get(arg, "sdp"));
    (void)s;
    (void)event;
    if (!from_other(u, arg) || !sdp || u->pc || peer_create(u) != 0)
        return;
    char *answer = NULL;
    if (el_peer_set_remote_description(u->pc, "offer", sdp, err, sizeof err) == 0)
        answer = el_peer_create_answer(u->pc, err, sizeof err);
    if (!answer) {
        snprintf(why, sizeof why, "B: cannot answer: %s", err[0] ? err : "?");
        finish(u->app, 0, why);
        return;
    }
    send_event(u, "answer", json_pack("{s:s, s:s}", "to", el_identity_peer_id(u->other->id),
                                      "sdp", answer));
    free(answer);
}

static void on_answer(el_signal *s, const char *event, json_t *arg, void *data)
{
    user *u = data;
    char err[256] = "", why[300];
    const char *sdp = json_string_value(json_object_get(arg, "sdp"));
    (void)s;
    (void)event;
    if (!from_other(u, arg) || !sdp || !u->pc)
        return;
    if (el_peer_set_remote_description(u->pc, "answer", sdp, err, sizeof err) != 0) {
        snprintf(why, sizeof why, "A: bad answer: %s", err);
        finish(u->app, 0, why);
    }
}

static void on_candidate(el_signal *s, const char *event, json_t *arg, void *data)
{
    user *u = data;
    char err[256] = "";
    (void)s;
    (void)event;
    if (!from_other(u, arg) || !u->pc)
        return;
    /* a candidate that does not parse is skipped, as browsers do */
    if (el_peer_add_remote_candidate(u->pc, json_string_value(json_object_get(arg, "candidate")),
                                     err, sizeof err) != 0)
        fprintf(stderr, "%s: candidate skipped: %s\n", u->name, err);
}

/* B: A asks to be a contact; accept. */
static void on_contact_request(el_signal *s, const char *event, json_t *arg, void *data)
{
    user *u = data;
    (void)s;
    (void)event;
    json_t *from = json_object_get(arg, "from"); /* a peer object */
    if (!is_other(u, json_string_value(json_object_get(from, "peer_id"))))
        return;
    send_event(u, "contact_respond",
               json_pack("{s:s, s:b}", "peer_id", el_identity_peer_id(u->other->id), "accept", 1));
}

/* Both get it; A, the caller, then starts the call. */
static void on_contact_added(el_signal *s, const char *event, json_t *arg, void *data)
{
    user *u = data;
    const char *peer = json_string_value(json_object_get(arg, "peer_id"));
    (void)s;
    (void)event;
    printf("%s: %s is now a contact\n", u->name, u->other->name);
    if (u == &u->app->a && is_other(u, peer) && !u->pc)
        start_call(u);
}

static void on_login(el_signal *s, json_t *ack, void *data)
{
    user *u = data;
    (void)s;
    (void)ack;
    printf("%s: logged in as %s\n", u->name, el_identity_peer_id(u->id));
    u->logged_in = 1;
    /* both are in: A asks B (once: a reconnection logs in again) */
    if (!u->app->a.logged_in || !u->app->b.logged_in || u->app->asked)
        return;
    u->app->asked = 1;
    u->app->stage = "becoming contacts";
    user *a = &u->app->a;
    send_event(a, "contact_request", json_pack("{s:s}", "to", el_identity_peer_id(a->other->id)));
}

static void on_sig_state(el_signal *s, const el_signal_state_info *info, void *data)
{
    user *u = data;
    (void)s;
    if (info->reason)
        printf("%s: signaling %s (%s)\n", u->name, el_signal_state_name(info->state),
               info->reason);
    /* a disconnection retries by itself; the timeout bounds it */
}

static const el_signal_callbacks sig_cbs = {on_sig_state, on_login};

static int user_start(user *u, const char *const *urls)
{
    static const struct {
        const char *event;
        el_signal_event_cb cb;
    } handlers[] = {{"offer", on_offer}, {"answer", on_answer},
                    {"ice_candidate", on_candidate}, {"contact_request", on_contact_request},
                    {"contact_added", on_contact_added}};
    el_signal_config cfg = {0};
    char err[256] = "";
    cfg.urls = urls;
    cfg.name = u->name;
    if (el_identity_generate(&u->id, err, sizeof err) != 0) {
        fprintf(stderr, "chat: %s: no identity: %s\n", u->name, err);
        return -1;
    }
    u->sig = el_signal_new(g_main_loop_get_context(u->app->loop), u->id, &cfg, &sig_cbs, u, err,
                           sizeof err);
    if (!u->sig) {
        fprintf(stderr, "chat: %s: %s\n", u->name, err);
        return -1;
    }
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        el_signal_on(u->sig, handlers[i].event, handlers[i].cb, u);
    return el_signal_start(u->sig);
}

static void user_free(user *u)
{
    el_peer_free(u->pc);
    el_signal_free(u->sig);
    el_identity_free(u->id);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s ws://HOST:PORT [local address]\n", argv[0]);
        return 1;
    }
    const char *urls[] = {argv[1], NULL};
    const char *addrs[] = {argc > 2 ? argv[2] : NULL, NULL};
    GMainContext *ctx = g_main_context_new();
    chat app;
    memset(&app, 0, sizeof app);
    app.loop = g_main_loop_new(ctx, FALSE);
    app.peer_cfg.local_addresses = argc > 2 ? addrs : NULL;
    app.stage = "logging in";
    app.a = (user){.name = "A", .app = &app, .other = &app.b};
    app.b = (user){.name = "B", .app = &app, .other = &app.a};

    /* el_signal needs its context as the thread-default one (libsoup) */
    g_main_context_push_thread_default(ctx);
    GSource *timer = g_timeout_source_new_seconds(TIMEOUT_S);
    g_source_set_callback(timer, on_timeout, &app, NULL);
    g_source_attach(timer, ctx);
    if (user_start(&app.a, urls) == 0 && user_start(&app.b, urls) == 0)
        g_main_loop_run(app.loop);
    g_source_destroy(timer);
    g_source_unref(timer);

    user_free(&app.a);
    user_free(&app.b);
    /* let cancelled connects and closing sockets finish (el_signal_free) */
    for (int i = 0; i < 100 && g_main_context_iteration(ctx, FALSE); i++)
        ;
    g_main_context_pop_thread_default(ctx);
    g_main_loop_unref(app.loop);
    g_main_context_unref(ctx);
    if (app.ok)
        printf("chat: ok\n");
    return app.ok ? 0 : 1;
}
