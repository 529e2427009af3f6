/* loopback.c - the smallest program using libecholink: two peer
 * connections in one process, signaled directly (a real program sends the
 * SDP and the candidates through its signaling server), a data channel,
 * and one message each way.
 *
 *   cc loopback.c $(pkg-config --cflags --libs echolink) -o loopback
 *   ./loopback [local address]      # exit 0 when both messages arrived
 */
#include <echolink/el_peer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    el_peer *pc;
    el_peer *other;
    el_channel *ch;
    int got;
} side;

static GMainContext *ctx;

static void on_candidate(el_peer *pc, const char *cand, const char *mid, void *user)
{
    side *s = user;
    (void)pc;
    (void)mid;
    /* trickled straight to the other side; NULL means end of candidates */
    if (s->other)
        el_peer_add_remote_candidate(s->other, cand, NULL, 0);
}

static void on_state(el_peer *pc, el_peer_state st, const char *why, void *user)
{
    side *s = user;
    (void)pc;
    printf("%s: %s%s%s\n", s->name, el_peer_state_name(st), why ? " - " : "", why ? why : "");
}

static void on_open(el_channel *ch, void *user)
{
    side *s = user;
    char text[64];
    snprintf(text, sizeof text, "hello from %s", s->name);
    el_channel_send_text(ch, text, strlen(text));
}

static void on_message(el_channel *ch, int binary, const uint8_t *data, size_t len, void *user)
{
    side *s = user;
    (void)ch;
    (void)binary;
    printf("%s received: %.*s\n", s->name, (int)len, (const char *)data);
    s->got = 1;
}

static const el_channel_callbacks chan_cbs = {on_open, on_message, NULL, NULL};

static void on_channel(el_peer *pc, el_channel *ch, void *user)
{
    side *s = user;
    (void)pc;
    s->ch = ch;
    el_channel_set_callbacks(ch, &chan_cbs, s);
}

static const el_peer_callbacks peer_cbs = {on_candidate, on_state, on_channel};

int main(int argc, char **argv)
{
    const char *addrs[] = {argc > 1 ? argv[1] : NULL, NULL};
    el_peer_config cfg = {0};
    cfg.local_addresses = argc > 1 ? addrs : NULL;
    char err[256];
    ctx = g_main_context_new();
    side a = {"A", NULL, NULL, NULL, 0}, b = {"B", NULL, NULL, NULL, 0};
    a.pc = el_peer_new(ctx, &cfg, &peer_cbs, &a, err, sizeof err);
    b.pc = a.pc ? el_peer_new(ctx, &cfg, &peer_cbs, &b, err, sizeof err) : NULL;
    if (!a.pc || !b.pc) {
        fprintf(stderr, "loopback: %s\n", err);
        return 1;
    }
    a.other = b.pc;
    b.other = a.pc;
    a.ch = el_peer_create_channel(a.pc, "chat", NULL, err, sizeof err);
    el_channel_set_callbacks(a.ch, &chan_cbs, &a);
    char *offer = el_peer_create_offer(a.pc, err, sizeof err);
    char *answer = NULL;
    if (offer && el_peer_set_remote_description(b.pc, "offer", offer, err, sizeof err) == 0)
        answer = el_peer_create_answer(b.pc, err, sizeof err);
    if (!answer || el_peer_set_remote_description(a.pc, "answer", answer, err, sizeof err) != 0) {
        fprintf(stderr, "loopback: negotiation failed: %s\n", err);
        return 1;
    }
    free(offer);
    free(answer);
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (!(a.got && b.got) && g_get_monotonic_time() < deadline)
        g_main_context_iteration(ctx, TRUE);
    int ok = a.got && b.got;
    el_peer_free(a.pc);
    el_peer_free(b.pc);
    g_main_context_unref(ctx);
    printf("%s\n", ok ? "ok" : "timed out");
    return ok ? 0 : 1;
}
