/* el_peer_tool - drives one el_peer from line-delimited JSON on stdin and
 * reports its events as JSON lines on stdout, so that node tests can pair
 * it with another el_peer_tool, libwebrtc (@roamhq/wrtc) or Chromium.
 *
 * stdin (one object per line)                      stdout events
 *   {"op":"create_offer"}                          {"ev":"offer","sdp"}
 *   {"op":"set_remote","type","sdp"}               {"ev":"answer","sdp"} after an offer
 *   {"op":"candidate","candidate": str|null}       {"ev":"candidate","candidate": str|null,"mid"}
 *   {"op":"channel","label","ordered"?,            {"ev":"state","state","why"}
 *        "max_retransmits"?,"negotiated_id"?}      {"ev":"channel","label","id"}  (remote opened)
 *   {"op":"send","label","text"|"b64"}             {"ev":"open","label","id"}
 *   {"op":"echo","on":bool}                        {"ev":"message","label","binary","text"|"b64"}
 *   {"op":"digest","label"}                        {"ev":"digest","label","bytes","messages","sha256"}
 *   {"op":"blast","label","bytes","chunk"}         {"ev":"blasted","label","bytes","sha256"}
 *   {"op":"close_channel","label"}                 {"ev":"close","label"}
 *   {"op":"pingpong","label","count"}              {"ev":"pingpong","label","us":[...]}
 *   {"op":"restart_ice"}                           {"ev":"error","message"}
 *   {"op":"quit"}
 *
 * Abuse tests (tests/interop/abuse.test.mjs):
 *   {"op":"sink","on":bool}   count every received message (or plaintext) instead of
 *                             printing or echoing it (floods)
 *   {"op":"stats"}            {"ev":"stats","rss_kb","channels_seen",
 *                             "channels_closed","messages","bytes"}: our
 *                             RSS, the channels the peer opened, the closes
 *                             of any channel, what the sink counted
 *   {"op":"quiet","on":bool}  no "channel"/"open"/"close" lines (thousands of
 *                             channels); they are still counted
 *
 * E2EE mode (src/client/secure.h), for the encryption tests:
 *   {"op":"secure","ik_seed_hex","sk_private_hex",  {"ev":"secure_ready","peer_id","ik","sk"}
 *        "expect","initiator","timeout_ms"?}       {"ev":"secure_failed","code","error"}
 *   {"op":"ssend","label","text"|"b64"}            {"ev":"plain","label","b64"} (a decrypted
 *        text = a kind-0x01 message body,                plaintext, kind byte first)
 *        b64 = a whole plaintext                   {"ev":"sopen","label"} (file channel keyed)
 *   {"op":"sopen"}  (a new f: channel)             {"ev":"sstats",...counters}
 *   {"op":"sstats"}
 *   {"op":"sburst","label","count","bytes"}        {"ev":"sburst","label","sent","quota","other"}
 *   "secure" with "trust_db": PATH pins bundles   {"ev":"key_changed","pinned_sk","presented_sk"}
 *   there (§10.2); {"op":"saccept"} accepts a      secure_ready also has "trust" (new, known...)
 *   pending key change
 * From "secure" on, every channel of the peer belongs to the session; "send"
 * still writes raw bytes on a channel (to inject forged frames).
 *
 * With "echo" on, every received message is sent back on its channel; with
 * a digest requested for a channel, its messages are hashed instead of
 * printed. "blast" sends `bytes` of random data in `chunk`-sized binary
 * messages with backpressure (bufferedAmount), then reports their hash.
 * "pingpong" sends `count` 16-byte texts one after another, each when the
 * previous one came back (the other side has "echo" on), and reports every
 * round trip in microseconds, timed here: no pipe or driver in the loop.
 *
 * Command line: --addr IP gathers on IP only (default $EL_NETNS_ADDR);
 * --ice-server URL (repeatable, "stun:..." / "turn:...", as get_ice_servers
 * hands them out), --turn-username U, --turn-credential C and --relay-only
 * (iceTransportPolicy "relay") go into the el_peer_config, for the TURN
 * tests (tests/interop/turn.test.mjs). */
#include "echolink/el_peer.h"

#include "client/secure.h"
#include "crypto/identity.h"

#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHANNELS 64
#define MAX_ICE_SERVERS 8

typedef struct {
    el_channel *ch;
    int digest;
    EVP_MD_CTX *md;
    uint64_t bytes, messages;
    /* blast state */
    uint64_t blast_left, blast_total;
    size_t chunk;
    EVP_MD_CTX *blast_md;
    /* pingpong state */
    int pp_sent, pp_count;
    uint64_t pp_t0;
    json_t *pp_us;
} chan_state;

typedef struct {
    GMainLoop *loop;
    el_peer *pc;
    int echo;
    chan_state chans[MAX_CHANNELS];
    int nchans;
    GString *line;
    el_identity *id;
    el_secure *sec;
    el_trust *trust;
    int sink, quiet;                  /* abuse tests */
    uint64_t sink_messages, sink_bytes;
    long channels_seen, channels_closed; /* remote channels reported; closes of any */
} tool;

static void emit(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
}

static void emit_error(const char *msg)
{
    emit(json_pack("{s:s, s:s}", "ev", "error", "message", msg));
}

static chan_state *state_of(tool *t, el_channel *ch)
{
    for (int i = 0; i < t->nchans; i++)
        if (t->chans[i].ch == ch)
            return &t->chans[i];
    if (t->nchans == MAX_CHANNELS)
        return NULL;
    chan_state *s = &t->chans[t->nchans++];
    memset(s, 0, sizeof *s);
    s->ch = ch;
    return s;
}

static chan_state *by_label(tool *t, const char *label)
{
    for (int i = 0; i < t->nchans; i++)
        if (!strcmp(el_channel_label(t->chans[i].ch), label))
            return &t->chans[i];
    return NULL;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    el_hex_encode(d, n, out, 2 * n + 1);
}

static void blast_more(tool *t, chan_state *s)
{
    uint8_t *buf = malloc(s->chunk);
    if (!buf)
        return;
    while (s->blast_left > 0 && el_channel_buffered_amount(s->ch) < 4 * 1024 * 1024) {
        size_t n = s->blast_left < s->chunk ? (size_t)s->blast_left : s->chunk;
        RAND_bytes(buf, (int)n);
        int rc = el_channel_send_binary(s->ch, buf, n);
        if (rc != 0) {
            emit_error(el_strerror(rc));
            s->blast_left = 0;
            break;
        }
        EVP_DigestUpdate(s->blast_md, buf, n);
        s->blast_left -= n;
    }
    free(buf);
    if (s->blast_left == 0 && s->blast_md) {
        uint8_t d[32];
        char h[65];
        EVP_DigestFinal_ex(s->blast_md, d, NULL);
        EVP_MD_CTX_free(s->blast_md);
        s->blast_md = NULL;
        hex(d, 32, h);
        emit(json_pack("{s:s, s:s, s:I, s:s}", "ev", "blasted", "label", el_channel_label(s->ch),
                       "bytes", (json_int_t)s->blast_total, "sha256", h));
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void ping_next(chan_state *s)
{
    char text[17];
    snprintf(text, sizeof text, "ping-%011d", s->pp_sent++);
    s->pp_t0 = now_ns();
    int rc = el_channel_send_text(s->ch, text, 16);
    if (rc != 0) {
        emit_error(el_strerror(rc));
        s->pp_count = 0;
    }
}

/* One echo came back: note its round trip, send the next or report. */
static void ping_back(chan_state *s, const uint8_t *data, size_t len)
{
    char want[17];
    snprintf(want, sizeof want, "ping-%011d", s->pp_sent - 1);
    if (len != 16 || memcmp(data, want, 16) != 0) {
        emit_error("pingpong: echo out of order");
        s->pp_count = 0;
        return;
    }
    json_array_append_new(s->pp_us, json_real((double)(now_ns() - s->pp_t0) / 1000.0));
    if (s->pp_sent < s->pp_count) {
        ping_next(s);
        return;
    }
    s->pp_count = 0;
    emit(json_pack("{s:s, s:s, s:o}", "ev", "pingpong", "label", el_channel_label(s->ch), "us", s->pp_us));
    s->pp_us = NULL;
}

static void on_open(el_channel *ch, void *user)
{
    tool *t = user;
    if (t && t->quiet)
        return;
    emit(json_pack("{s:s, s:s, s:i}", "ev", "open", "label", el_channel_label(ch), "id", el_channel_id(ch)));
}

static void on_message(el_channel *ch, int binary, const uint8_t *data, size_t len, void *user)
{
    tool *t = user;
    if (t->sink) {
        t->sink_messages++;
        t->sink_bytes += len;
        return;
    }
    chan_state *s = state_of(t, ch);
    if (s && s->pp_count) {
        ping_back(s, data, len);
        return;
    }
    if (s && s->digest) {
        EVP_DigestUpdate(s->md, data, len);
        s->bytes += len;
        s->messages++;
        return;
    }
    if (t->echo) {
        int rc = binary ? el_channel_send_binary(ch, data, len)
                        : el_channel_send_text(ch, (const char *)data, len);
        if (rc != 0)
            emit_error(el_strerror(rc));
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:b}", "ev", "message", "label", el_channel_label(ch), "binary", binary);
    if (binary) {
        size_t cap = EL_B64URL_LEN(len) + 1;
        char *b = malloc(cap);
        el_b64url_encode(data, len, b, cap);
        json_object_set_new(o, "b64", json_string(b));
        free(b);
    } else {
        json_object_set_new(o, "text", json_stringn((const char *)data, len));
    }
    emit(o);
}

static void on_close(el_channel *ch, void *user)
{
    tool *t = user;
    if (t) {
        t->channels_closed++;
        if (t->quiet)
            return;
    }
    emit(json_pack("{s:s, s:s}", "ev", "close", "label", el_channel_label(ch)));
}

static void on_low(el_channel *ch, void *user)
{
    tool *t = user;
    chan_state *s = state_of(t, ch);
    if (s && s->blast_left)
        blast_more(t, s);
}

static const el_channel_callbacks chan_cbs = {on_open, on_message, on_close, on_low};

static void on_candidate(el_peer *pc, const char *cand, const char *mid, void *user)
{
    (void)pc;
    (void)user;
    emit(json_pack("{s:s, s:s?, s:s}", "ev", "candidate", "candidate", cand, "mid", mid));
}

static void on_state(el_peer *pc, el_peer_state st, const char *why, void *user)
{
    (void)pc;
    (void)user;
    emit(json_pack("{s:s, s:s, s:s?}", "ev", "state", "state", el_peer_state_name(st), "why", why));
}

static void on_channel(el_peer *pc, el_channel *ch, void *user)
{
    tool *t = user;
    (void)pc;
    state_of(t, ch);
    t->channels_seen++;
    if (t->sec)
        el_secure_add_channel(t->sec, ch);
    else
        el_channel_set_callbacks(ch, &chan_cbs, t);
    el_channel_set_buffered_low_threshold(ch, 1024 * 1024);
    if (!t->quiet)
        emit(json_pack("{s:s, s:s, s:i}", "ev", "channel", "label", el_channel_label(ch), "id", el_channel_id(ch)));
}

/* Resident set size in KiB (/proc/self/statm), or -1. */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- E2EE mode ---------------------------------------------------------- */

static void emit_b64(const char *ev, const char *label, const uint8_t *d, size_t n)
{
    size_t cap = EL_B64URL_LEN(n) + 1;
    char *b = malloc(cap);
    if (!b)
        return;
    el_b64url_encode(d, n, b, cap);
    emit(json_pack("{s:s, s:s, s:s}", "ev", ev, "label", label, "b64", b));
    free(b);
}

static void sec_ready(el_secure *s, void *user)
{
    (void)user;
    char ik[EL_ID_KEY_B64_SIZE], sk[EL_ID_KEY_B64_SIZE], sig[EL_ID_SIG_B64_SIZE];
    el_id_bundle_to_b64(el_secure_remote_bundle(s), ik, sk, sig);
    emit(json_pack("{s:s, s:s, s:s, s:s, s:s}", "ev", "secure_ready", "peer_id", el_secure_remote_peer_id(s),
                   "ik", ik, "sk", sk, "trust", el_trust_state_name(el_secure_trust_state(s))));
}

static void sec_key_changed(el_secure *s, const el_id_bundle *pinned, const el_id_bundle *presented,
                            void *user)
{
    char a[EL_ID_KEY_B64_SIZE], b[EL_ID_KEY_B64_SIZE], ik[EL_ID_KEY_B64_SIZE], sig[EL_ID_SIG_B64_SIZE];
    (void)s;
    (void)user;
    el_id_bundle_to_b64(pinned, ik, a, sig);
    el_id_bundle_to_b64(presented, ik, b, sig);
    emit(json_pack("{s:s, s:s, s:s}", "ev", "key_changed", "pinned_sk", a, "presented_sk", b));
}

static void sec_failed(el_secure *s, el_hs_fail why, const char *error, void *user)
{
    (void)s;
    (void)user;
    emit(json_pack("{s:s, s:i, s:s}", "ev", "secure_failed", "code", (int)why, "error", error));
}

static void sec_open(el_secure *s, el_channel *ch, void *user)
{
    (void)s;
    (void)user;
    emit(json_pack("{s:s, s:s}", "ev", "sopen", "label", el_channel_label(ch)));
}

static void sec_plain(el_secure *s, el_channel *ch, const uint8_t *pt, size_t len, void *user)
{
    tool *t = user;
    (void)s;
    if (t->sink) { /* counted, as on_message does */
        t->sink_messages++;
        t->sink_bytes += len;
        return;
    }
    emit_b64("plain", el_channel_label(ch), pt, len);
}

static void sec_close(el_secure *s, el_channel *ch, void *user)
{
    on_close(ch, user);
    (void)s;
}

static const el_secure_callbacks sec_cbs = {sec_ready, sec_failed, sec_open, sec_plain, sec_close, NULL,
                                            sec_key_changed};

static int seed_from_hex(json_t *o, const char *key, uint8_t out[32])
{
    const char *h = json_string_value(json_object_get(o, key));
    return h && strlen(h) == 64 && el_hex_decode(h, 64, out, 32) == 32 ? 0 : -1;
}

static void op_secure(tool *t, json_t *o)
{
    uint8_t seed[32], skp[32];
    char err[256];
    const char *expect = json_string_value(json_object_get(o, "expect"));
    if (t->sec || seed_from_hex(o, "ik_seed_hex", seed) || seed_from_hex(o, "sk_private_hex", skp)) {
        emit_error("secure: needs ik_seed_hex, sk_private_hex (64 hex each), once");
        return;
    }
    int rc = el_identity_new(&t->id, seed, skp, err, sizeof err);
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(skp, sizeof skp);
    if (rc != 0) {
        emit_error(err);
        return;
    }
    t->sec = el_secure_new(NULL, t->pc, t->id, expect, json_is_true(json_object_get(o, "initiator")),
                           &sec_cbs, t, err, sizeof err);
    if (!t->sec) {
        emit_error(err);
        return;
    }
    const char *db = json_string_value(json_object_get(o, "trust_db"));
    if (db) {
        if (el_trust_open(&t->trust, db, err, sizeof err) != 0) {
            emit_error(err);
            return;
        }
        el_secure_set_trust(t->sec, t->trust);
    }
    json_int_t ms = json_integer_value(json_object_get(o, "timeout_ms"));
    if (ms > 0)
        el_secure_set_timeout(t->sec, (unsigned)ms);
    for (int i = 0; i < t->nchans; i++)
        el_secure_add_channel(t->sec, t->chans[i].ch);
}

static void op_ssend(tool *t, json_t *o)
{
    const char *label = json_string_value(json_object_get(o, "label"));
    chan_state *s = label ? by_label(t, label) : NULL;
    json_t *text = json_object_get(o, "text");
    const char *b = json_string_value(json_object_get(o, "b64"));
    size_t n = json_is_string(text) ? json_string_length(text) + 1 : b ? strlen(b) + 1 : 0;
    uint8_t *pt = malloc(n + 1);
    ssize_t len = -1;
    if (!s || !t->sec || !pt || !n) {
        free(pt);
        emit_error("ssend: no such channel, no session or nothing to send");
        return;
    }
    if (json_is_string(text)) {
        pt[0] = 0x01;
        memcpy(pt + 1, json_string_value(text), n - 1);
        len = (ssize_t)n;
    } else {
        len = el_b64url_decode(b, n - 1, pt, n);
    }
    int rc = len < 0 ? EL_ERR_INVALID : el_secure_send(t->sec, s->ch, pt, (size_t)len);
    free(pt);
    if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "ssend failed: %s", el_strerror(rc));
        emit_error(msg);
    }
}

/* {"op":"sburst","label","count","bytes"}: count chat-shaped messages of
 * `bytes` plaintext bytes, all within this one loop turn, so that the send
 * queue fills; reports how many were taken and why the rest were not. */
static void op_sburst(tool *t, json_t *o)
{
    const char *label = json_string_value(json_object_get(o, "label"));
    chan_state *s = label ? by_label(t, label) : NULL;
    json_int_t count = json_integer_value(json_object_get(o, "count"));
    json_int_t bytes = json_integer_value(json_object_get(o, "bytes"));
    uint8_t *pt = bytes > 1 ? malloc((size_t)bytes) : NULL;
    if (!s || !t->sec || !pt || count <= 0) {
        free(pt);
        emit_error("sburst: no such channel, no session, or bad count/bytes");
        return;
    }
    memset(pt, 'x', (size_t)bytes);
    pt[0] = 0x01;
    json_int_t sent = 0, quota = 0, other = 0;
    for (json_int_t i = 0; i < count; i++) {
        int rc = el_secure_send(t->sec, s->ch, pt, (size_t)bytes);
        sent += rc == 0;
        quota += rc == EL_ERR_QUOTA;
        other += rc != 0 && rc != EL_ERR_QUOTA;
    }
    free(pt);
    emit(json_pack("{s:s, s:s, s:I, s:I, s:I}", "ev", "sburst", "label", label, "sent", sent,
                   "quota", quota, "other", other));
}

static int handle_secure(tool *t, const char *op, json_t *o)
{
    char err[256];
    if (!strcmp(op, "secure")) {
        op_secure(t, o);
    } else if (!strcmp(op, "sburst")) {
        op_sburst(t, o);
    } else if (!strcmp(op, "ssend")) {
        op_ssend(t, o);
    } else if (!strcmp(op, "saccept")) {
        if (!t->sec || el_secure_accept_key_change(t->sec, err, sizeof err) != 0)
            emit_error(t->sec ? err : "no session");
    } else if (!strcmp(op, "sopen")) {
        el_channel *ch = t->sec ? el_secure_open_channel(t->sec, err, sizeof err) : NULL;
        if (!ch)
            emit_error(t->sec ? err : "no session");
        else
            state_of(t, ch);
    } else if (!strcmp(op, "sstats")) {
        el_secure_stats st;
        if (!t->sec) {
            emit_error("no session");
            return 1;
        }
        el_secure_get_stats(t->sec, &st);
        emit(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ev", "sstats",
                       "truncated", (json_int_t)st.frames.truncated, "replay", (json_int_t)st.frames.replay,
                       "reorder", (json_int_t)st.frames.reorder, "auth", (json_int_t)st.frames.auth,
                       "bad_label", (json_int_t)st.bad_label, "early", (json_int_t)st.early,
                       "text", (json_int_t)st.text));
    } else {
        return 0;
    }
    return 1;
}

static void handle(tool *t, const char *line)
{
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    const char *op = json_string_value(json_object_get(o, "op"));
    char err[256] = "";
    if (!op) {
        emit_error("each line must be a JSON object with \"op\"");
        json_decref(o);
        return;
    }
    if (!strcmp(op, "create_offer")) {
        char *sdp = el_peer_create_offer(t->pc, err, sizeof err);
        if (sdp)
            emit(json_pack("{s:s, s:s}", "ev", "offer", "sdp", sdp));
        else
            emit_error(err);
        free(sdp);
    } else if (!strcmp(op, "set_remote")) {
        const char *type = json_string_value(json_object_get(o, "type"));
        const char *sdp = json_string_value(json_object_get(o, "sdp"));
        if (el_peer_set_remote_description(t->pc, type, sdp, err, sizeof err) != 0) {
            emit_error(err);
        } else if (type && !strcmp(type, "offer")) {
            char *ans = el_peer_create_answer(t->pc, err, sizeof err);
            if (ans)
                emit(json_pack("{s:s, s:s}", "ev", "answer", "sdp", ans));
            else
                emit_error(err);
            free(ans);
        }
    } else if (!strcmp(op, "candidate")) {
        const char *c = json_string_value(json_object_get(o, "candidate"));
        if (el_peer_add_remote_candidate(t->pc, c, err, sizeof err) != 0)
            emit_error(err);
    } else if (!strcmp(op, "channel")) {
        el_channel_init init = EL_CHANNEL_INIT_DEFAULT;
        json_t *v;
        if ((v = json_object_get(o, "ordered")))
            init.ordered = json_is_true(v);
        if ((v = json_object_get(o, "max_retransmits")))
            init.max_retransmits = (int)json_integer_value(v);
        if ((v = json_object_get(o, "max_lifetime_ms")))
            init.max_lifetime_ms = (int)json_integer_value(v);
        if ((v = json_object_get(o, "negotiated_id")))
            init.negotiated_id = (int)json_integer_value(v);
        el_channel *ch = el_peer_create_channel(t->pc, json_string_value(json_object_get(o, "label")),
                                                &init, err, sizeof err);
        if (!ch) {
            emit_error(err);
        } else if (t->sec) {
            state_of(t, ch);
            el_secure_add_channel(t->sec, ch);
        } else {
            state_of(t, ch);
            el_channel_set_callbacks(ch, &chan_cbs, t);
            el_channel_set_buffered_low_threshold(ch, 1024 * 1024);
        }
    } else if (!strcmp(op, "send") || !strcmp(op, "digest") || !strcmp(op, "blast") ||
               !strcmp(op, "pingpong") || !strcmp(op, "close_channel")) {
        const char *label = json_string_value(json_object_get(o, "label"));
        chan_state *s = label ? by_label(t, label) : NULL;
        if (!s) {
            emit_error("no such channel");
        } else if (!strcmp(op, "send")) {
            json_t *text = json_object_get(o, "text"), *b64 = json_object_get(o, "b64");
            int rc;
            if (json_is_string(text)) {
                rc = el_channel_send_text(s->ch, json_string_value(text), json_string_length(text));
            } else {
                const char *b = json_string_value(b64);
                size_t n = b ? strlen(b) : 0;
                uint8_t *buf = malloc(n + 1);
                ssize_t m = buf ? el_b64url_decode(b ? b : "", n, buf, n + 1) : -1;
                rc = m < 0 ? EL_ERR_INVALID : el_channel_send_binary(s->ch, buf, (size_t)m);
                free(buf);
            }
            if (rc != 0) {
                char msg[128];
                snprintf(msg, sizeof msg, "send failed: %s", el_strerror(rc));
                emit_error(msg);
            }
        } else if (!strcmp(op, "digest")) {
            if (!s->digest) {
                s->digest = 1;
                s->md = EVP_MD_CTX_new();
                EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
            } else {
                uint8_t d[32];
                char h[65];
                EVP_MD_CTX *copy = EVP_MD_CTX_new();
                EVP_MD_CTX_copy_ex(copy, s->md);
                EVP_DigestFinal_ex(copy, d, NULL);
                EVP_MD_CTX_free(copy);
                hex(d, 32, h);
                emit(json_pack("{s:s, s:s, s:I, s:I, s:s}", "ev", "digest", "label", label, "bytes",
                               (json_int_t)s->bytes, "messages", (json_int_t)s->messages, "sha256", h));
            }
        } else if (!strcmp(op, "blast")) {
            s->blast_total = s->blast_left = (uint64_t)json_integer_value(json_object_get(o, "bytes"));
            s->chunk = (size_t)json_integer_value(json_object_get(o, "chunk"));
            if (!s->chunk)
                s->chunk = 16384;
            s->blast_md = EVP_MD_CTX_new();
            EVP_DigestInit_ex(s->blast_md, EVP_sha256(), NULL);
            blast_more(t, s);
        } else if (!strcmp(op, "pingpong")) {
            json_int_t n = json_integer_value(json_object_get(o, "count"));
            if (n <= 0 || n > 1000000 || s->pp_count) {
                emit_error("pingpong: count must be 1..1000000, one run at a time");
            } else {
                s->pp_count = (int)n;
                s->pp_sent = 0;
                s->pp_us = json_array();
                ping_next(s);
            }
        } else {
            el_channel_close(s->ch);
        }
    } else if (!strcmp(op, "sink")) {
        t->sink = json_is_true(json_object_get(o, "on"));
    } else if (!strcmp(op, "quiet")) {
        t->quiet = json_is_true(json_object_get(o, "on"));
    } else if (!strcmp(op, "stats")) {
        emit(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "ev", "stats", "rss_kb", (json_int_t)rss_kb(),
                       "channels_seen", (json_int_t)t->channels_seen, "channels_closed",
                       (json_int_t)t->channels_closed, "messages", (json_int_t)t->sink_messages, "bytes",
                       (json_int_t)t->sink_bytes));
    } else if (!strcmp(op, "echo")) {
        t->echo = json_is_true(json_object_get(o, "on"));
    } else if (!strcmp(op, "restart_ice")) {
        if (el_peer_restart_ice(t->pc, err, sizeof err) != 0)
            emit_error(err);
    } else if (!strncmp(op, "s", 1) && handle_secure(t, op, o)) {
        /* handled */
    } else if (!strcmp(op, "quit")) {
        g_main_loop_quit(t->loop);
    } else {
        emit_error("unknown op");
    }
    json_decref(o);
}

static gboolean on_stdin(GIOChannel *io, GIOCondition cond, gpointer data)
{
    tool *t = data;
    char buf[65536];
    ssize_t n = read(g_io_channel_unix_get_fd(io), buf, sizeof buf);
    if (n <= 0 || (cond & (G_IO_HUP | G_IO_ERR))) {
        if (n <= 0) {
            g_main_loop_quit(t->loop);
            return G_SOURCE_REMOVE;
        }
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            handle(t, t->line->str);
            g_string_truncate(t->line, 0);
        } else {
            g_string_append_c(t->line, buf[i]);
        }
    }
    return G_SOURCE_CONTINUE;
}

/* Fills cfg from argv (see the header comment); the strings stay argv's and
 * the address and server lists the caller's arrays. Returns 0, or -1 with a
 * message on stderr. */
static int parse_args(int argc, char **argv, el_peer_config *cfg, const char *addrs[2],
                      const char *servers[MAX_ICE_SERVERS + 1])
{
    int nservers = 0;
    addrs[0] = getenv("EL_NETNS_ADDR");
    addrs[1] = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--relay-only")) {
            cfg->relay_only = 1;
        } else if (!strcmp(a, "--addr") && has_value) {
            addrs[0] = argv[++i];
        } else if (!strcmp(a, "--ice-server") && has_value && nservers < MAX_ICE_SERVERS) {
            servers[nservers++] = argv[++i];
        } else if (!strcmp(a, "--turn-username") && has_value) {
            cfg->turn_username = argv[++i];
        } else if (!strcmp(a, "--turn-credential") && has_value) {
            cfg->turn_credential = argv[++i];
        } else {
            fprintf(stderr, "el_peer_tool: bad argument '%s' (or too many --ice-server)\n", a);
            return -1;
        }
    }
    servers[nservers] = NULL;
    cfg->local_addresses = addrs[0] ? addrs : NULL;
    cfg->ice_servers = nservers ? servers : NULL;
    return 0;
}

int main(int argc, char **argv)
{
    tool t;
    memset(&t, 0, sizeof t);
    el_log_level level;
    const char *lv = getenv("EL_LOG_LEVEL");
    if (lv && el_log_parse_level(lv, &level) == 0)
        el_log_set_level(level);
    const char *addrs[2];
    const char *servers[MAX_ICE_SERVERS + 1];
    el_peer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (parse_args(argc, argv, &cfg, addrs, servers) != 0)
        return 2;
    el_peer_callbacks cbs = {on_candidate, on_state, on_channel};
    char err[256];
    t.loop = g_main_loop_new(NULL, FALSE);
    t.line = g_string_new(NULL);
    t.pc = el_peer_new(NULL, &cfg, &cbs, &t, err, sizeof err);
    if (!t.pc) {
        fprintf(stderr, "el_peer_tool: %s\n", err);
        return 1;
    }
    GIOChannel *io = g_io_channel_unix_new(0);
    g_io_add_watch(io, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, &t);
    emit(json_pack("{s:s}", "ev", "ready"));
    g_main_loop_run(t.loop);
    g_io_channel_unref(io);
    el_secure_free(t.sec);
    el_peer_free(t.pc);
    el_identity_free(t.id);
    el_trust_close(t.trust);
    for (int i = 0; i < t.nchans; i++) {
        EVP_MD_CTX_free(t.chans[i].md);
        EVP_MD_CTX_free(t.chans[i].blast_md);
        json_decref(t.chans[i].pp_us);
    }
    g_string_free(t.line, TRUE);
    g_main_loop_unref(t.loop);
    return 0;
}
