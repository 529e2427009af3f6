/* fuzz_event.c - libFuzzer target: a signaling event's payload (the data of
 * a Socket.IO EVENT, '["name", {...}]') through the checks echolinkd makes
 * before touching state (src/server/evcheck.h, which handlers.c and relay.c
 * call: the fuzzer runs the server's own code, in the server's order).
 * The logged-in peer is "a" x 32. Seeds: tests/fuzz/corpus/event/.
 *
 * Invariants:
 *  - a rejection has a reason code below EL_REJ__COUNT and a message;
 *  - an accepted event is a relay event or one of the handler table's,
 *    and its name is the first element's text;
 *  - an unknown name is reported as at most 40 bytes, a prefix of the
 *    name's text, not cut inside a UTF-8 sequence;
 *  - a handler argument is a JSON object; fields accepted are those the
 *    handler would read, and what the checks hand the handler is the
 *    argument's (spot-checked again here);
 *  - the relayed packet is 42 + a JSON array [event, object] that
 *    el_json_validate accepts, whose object has exactly one "from", first,
 *    equal to the sender, the same "to", and otherwise the members of the
 *    sender's object (compared with jansson when it loads both).
 * tests/unit/test_fuzz_corpus.c includes this file with EL_FUZZ_NO_MAIN. */
#ifndef EL_FUZZ_EVENT_C
#define EL_FUZZ_EVENT_C

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto/identity.h"
#include "proto/json.h"
#include "server/evcheck.h"

#define EL_FUZZ_EVENT_ME "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* 1 when the n bytes end inside a UTF-8 sequence (assuming valid UTF-8). */
static int el_fuzz_event_cut_utf8(const unsigned char *s, size_t n)
{
    size_t i = n, cont = 0;
    while (i > 0 && (s[i - 1] & 0xc0) == 0x80 && cont < 4) {
        i--;
        cont++;
    }
    if (i == 0)
        return cont > 0;
    unsigned char lead = s[i - 1];
    size_t need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : 0;
    return cont != need;
}

static const char *el_fuzz_event_check_relay(const el_json *j, const char *data, el_evcheck *ev)
{
    char to[EL_EVCHECK_PEER_LEN + 1];
    if (el_evcheck_relay_to(j, EL_FUZZ_EVENT_ME, to, ev) != 0)
        return ev->rejected && ev->message ? NULL : "event: a refused relay 'to' without a reason";
    size_t cap = el_evcheck_relay_cap(j, ev), olen = 0;
    char *buf = malloc(cap + 1);
    const char *bad = NULL;
    json_t *in = NULL, *outdoc = NULL;
    if (!buf)
        return NULL;
    if (el_evcheck_relay_write(j, EL_FUZZ_EVENT_ME, buf, cap, &olen, ev) != 0) {
        if (!ev->rejected || !ev->message || ev->reject != EL_REJ_BAD_REQUEST || olen != 0)
            bad = "event: a refused relay without a reason, or with output";
        goto done;
    }
    if (olen > cap || olen < 2 || memcmp(buf, "42", 2)) {
        bad = "event: relay packet longer than its capacity or not 42";
        goto done;
    }
    if (!el_id_valid_peer_id(to) || !strcmp(to, EL_FUZZ_EVENT_ME)) {
        bad = "event: relayed to an invalid or own peer id";
        goto done;
    }
    buf[olen] = '\0';
    if (el_json_validate(buf + 2, olen - 2, 64, NULL, 0) != 0) {
        bad = "event: the relayed packet is not valid JSON";
        goto done;
    }
    static jsmntok_t tok[EL_EVCHECK_MAX_TOKENS + 8];
    el_json o;
    if (el_json_scan(&o, buf + 2, olen - 2, tok, EL_EVCHECK_MAX_TOKENS + 8, 64, NULL, 0) != 0 ||
        o.tok[0].type != JSMN_ARRAY || o.tok[0].size != 2 || !el_json_str_is(&o, 1, ev->name)) {
        bad = "event: the relayed packet is not [event, object]";
        goto done;
    }
    int obj = el_json_at(&o, 0, 1);
    if (obj < 0 || o.tok[obj].type != JSMN_OBJECT || o.tok[obj].size < 2 ||
        !el_json_str_is(&o, obj + 1, "from") || !el_json_str_is(&o, obj + 2, EL_FUZZ_EVENT_ME)) {
        bad = "event: the relayed object does not start with the sender's from";
        goto done;
    }
    int froms = 0, k = obj + 1;
    for (int p = 0; p < o.tok[obj].size; p++) {
        if (memchr(o.js + o.tok[k].start, '\\', (size_t)(o.tok[k].end - o.tok[k].start)) ||
            el_json_str_is(&o, k, "from"))
            froms++;
        k = el_json_next(&o, k + 1);
    }
    int t = el_json_get(&o, obj, "to");
    if (froms != 1 || t < 0 || !el_json_str_is(&o, t, to)) {
        bad = "event: the relayed object has another from or to";
        goto done;
    }
    /* the members, compared by a second parser */
    int a = el_json_at(j, 0, 1);
    in = json_loadb(data + j->tok[a].start, (size_t)(j->tok[a].end - j->tok[a].start), 0, NULL);
    size_t s, e;
    el_json_span(&o, obj, &s, &e);
    outdoc = json_loadb(buf + 2 + s, e - s, 0, NULL);
    if (in && outdoc) {
        json_object_del(in, "from");
        json_object_del(outdoc, "from");
        if (!json_equal(in, outdoc))
            bad = "event: the relayed members differ from the sender's";
    }
done:
    json_decref(in);
    json_decref(outdoc);
    free(buf);
    return bad;
}

static const char *el_fuzz_event_check_fields(json_t *arg, const el_evargs *a, const el_evcheck *ev)
{
    const char *name = el_evcheck_names[ev->handler];
    const char *peer = json_string_value(json_object_get(arg, "peer_id"));
    if (a->peer && (!el_id_valid_peer_id(a->peer) ||
                    (a->peer != peer && a->peer != json_string_value(json_object_get(arg, "to")))))
        return "event: the peer handed to the handler is not the argument's";
    for (int i = 0; i < a->n; i++)
        if (!a->ids[i] || !a->ids[i][0])
            return "event: an empty id handed to the handler";
    if ((!strcmp(name, "block") || !strcmp(name, "unblock") || !strcmp(name, "contact_remove") ||
         !strcmp(name, "contact_respond") || !strcmp(name, "profile_get")) &&
        (!peer || !el_id_valid_peer_id(peer)))
        return "event: accepted without a valid peer_id";
    if (!strcmp(name, "block") && !strcmp(peer, EL_FUZZ_EVENT_ME))
        return "event: block of oneself accepted";
    if (!strcmp(name, "envelope_send")) {
        const char *to = json_string_value(json_object_get(arg, "to"));
        const char *env = json_string_value(json_object_get(arg, "envelope"));
        if (!to || !el_id_valid_peer_id(to) || !strcmp(to, EL_FUZZ_EVENT_ME) || !env || !env[0] ||
            strlen(env) > 49152)
            return "event: envelope_send accepted with a bad to or envelope";
    }
    if (!strcmp(name, "envelope_ack")) {
        json_t *ids = json_object_get(arg, "ids");
        if (!json_is_array(ids) || json_array_size(ids) < 1 || json_array_size(ids) > 1000)
            return "event: envelope_ack accepted with bad ids";
    }
    return NULL;
}

static const char *el_fuzz_check_event(const uint8_t *data, size_t size)
{
    static jsmntok_t tok[EL_EVCHECK_MAX_TOKENS];
    el_json j;
    el_evcheck ev;
    const char *js = (const char *)data;
    if (el_evcheck_event(&j, js, size, tok, EL_EVCHECK_MAX_TOKENS, &ev) != 0) {
        if (!ev.rejected || !ev.message || ev.reject >= EL_REJ__COUNT)
            return "event: a rejection without a reason";
        if (ev.reject == EL_REJ_UNKNOWN_EVENT) {
            size_t n = strlen(ev.name);
            size_t tl = (size_t)(j.tok[1].end - j.tok[1].start);
            const unsigned char *raw = (const unsigned char *)js + j.tok[1].start;
            if (n > 40 || n > tl || memcmp(ev.name, raw, n))
                return "event: the unknown name reported is not a prefix of at most 40 bytes";
            /* a NUL in the name ends the reported copy early: no cut rule then */
            if (n < tl && !memchr(raw, '\0', n + 1) && el_fuzz_event_cut_utf8(raw, n) &&
                !el_fuzz_event_cut_utf8(raw, tl))
                return "event: the unknown name is cut inside a UTF-8 sequence";
        }
        return NULL;
    }
    if ((ev.relay >= 0) == (ev.handler >= 0) || !el_json_str_is(&j, 1, ev.name))
        return "event: accepted without exactly one known name";
    if (ev.relay >= 0)
        return el_fuzz_event_check_relay(&j, js, &ev);
    json_t *arg = NULL;
    if (el_evcheck_arg(&j, js, &arg, &ev) != 0)
        return arg || !ev.message ? "event: a refused argument without a reason" : NULL;
    const char *bad = NULL;
    static el_evargs a; /* ~10 KB of lists: off the fuzzer's stack */
    if (!json_is_object(arg))
        bad = "event: accepted argument is not an object";
    else if (el_evcheck_fields((el_ev_handler)ev.handler, EL_FUZZ_EVENT_ME, arg, &a, &ev) != 0)
        bad = ev.message ? NULL : "event: refused fields without a reason";
    else
        bad = el_fuzz_event_check_fields(arg, &a, &ev);
    json_decref(arg);
    return bad;
}

#ifndef EL_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_event(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_event: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
#endif

#endif
