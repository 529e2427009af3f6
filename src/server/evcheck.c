/* evcheck.c - pure signaling event checks (evcheck.h). Nothing here sees a
 * connection, the store or a clock, so the fuzzer runs it as the server
 * does. */
#include "server/evcheck.h"

#include <stdio.h>
#include <string.h>

#include "base/enc.h"
#include "base/err.h"
#include "store/store.h"

const char *const el_evcheck_names[EL_EV__COUNT] = {
    [EL_EV_LOGIN] = "login",
    [EL_EV_GET_CONTACTS] = "get_contacts",
    [EL_EV_CONTACT_REQUEST] = "contact_request",
    [EL_EV_CONTACT_RESPOND] = "contact_respond",
    [EL_EV_CONTACT_REMOVE] = "contact_remove",
    [EL_EV_BLOCK] = "block",
    [EL_EV_UNBLOCK] = "unblock",
    [EL_EV_GET_ICE_SERVERS] = "get_ice_servers",
    [EL_EV_PROFILE_UPDATE] = "profile_update",
    [EL_EV_PROFILE_GET] = "profile_get",
    [EL_EV_PROFILE_DELETE] = "profile_delete",
    [EL_EV_GROUP_CREATE] = "group_create",
    [EL_EV_GROUP_LIST] = "group_list",
    [EL_EV_GROUP_UPDATE] = "group_update",
    [EL_EV_GROUP_LEAVE] = "group_leave",
    [EL_EV_ENVELOPE_SEND] = "envelope_send",
    [EL_EV_ENVELOPE_ACK] = "envelope_ack",
};

static const char *const relay_names[EL_RELAY__COUNT] = {"offer", "answer", "ice_candidate"};

static int reject(el_evcheck *out, el_reject r, const char *message)
{
    out->rejected = 1;
    out->reject = r;
    out->message = message;
    return -1;
}

/* ---- step 1 ---- */

int el_evcheck_event(el_json *j, const char *data, size_t len, jsmntok_t *tok, int maxtok,
                     el_evcheck *out)
{
    memset(out, 0, sizeof *out);
    out->relay = -1;
    out->handler = -1;
    char err[96];
    int rc = el_json_scan(j, data, len, tok, maxtok, EL_EVCHECK_MAX_DEPTH, err, sizeof err);
    if (rc == -2)
        return reject(out, EL_REJ_TOO_LARGE, "too many JSON values in one event");
    if (rc < 0) {
        snprintf(out->text, sizeof out->text, "invalid JSON: %s", err);
        return reject(out, EL_REJ_INVALID_JSON, out->text);
    }
    if (j->tok[0].type != JSMN_ARRAY || j->tok[0].size < 1 || j->tok[1].type != JSMN_STRING)
        return reject(out, EL_REJ_BAD_REQUEST, "an event is [name, argument]");
    for (int k = 0; k < EL_RELAY__COUNT; k++)
        if (el_json_str_is(j, 1, relay_names[k])) {
            out->relay = k;
            memcpy(out->name, relay_names[k], strlen(relay_names[k]) + 1); /* short literals */
            return 0;
        }
    for (int i = 0; i < EL_EV__COUNT; i++)
        if (el_json_str_is(j, 1, el_evcheck_names[i])) {
            out->handler = i;
            snprintf(out->name, sizeof out->name, "%s", el_evcheck_names[i]);
            return 0;
        }
    int nlen = j->tok[1].end - j->tok[1].start;
    if (nlen > 40) {
        nlen = 40;
        while (nlen > 0 && ((unsigned char)data[j->tok[1].start + nlen] & 0xc0) == 0x80)
            nlen--; /* never cut inside a UTF-8 sequence */
    }
    snprintf(out->name, sizeof out->name, "%.*s", nlen, data + j->tok[1].start);
    return reject(out, EL_REJ_UNKNOWN_EVENT, "no such event");
}

/* ---- step 2 ---- */

int el_evcheck_arg(const el_json *j, const char *data, json_t **arg, el_evcheck *out)
{
    json_t *a;
    if (j->tok[0].size >= 2) {
        int at = el_json_at(j, 0, 1);
        size_t s, e;
        el_json_span(j, at, &s, &e);
        a = json_loadb(data + s, e - s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    } else {
        a = json_object();
    }
    if (!json_is_object(a)) {
        json_decref(a);
        *arg = NULL;
        return reject(out, EL_REJ_BAD_REQUEST, "the argument must be an object");
    }
    *arg = a;
    return 0;
}

/* ---- step 3 ---- */

static const char *str_field(json_t *arg, const char *key, size_t maxlen)
{
    json_t *v = json_object_get(arg, key);
    if (!json_is_string(v) || json_string_length(v) > maxlen)
        return NULL;
    return json_string_value(v);
}

static const char *peer_field(json_t *arg, const char *key)
{
    const char *s = str_field(arg, key, EL_EVCHECK_PEER_LEN);
    return s && el_id_valid_peer_id(s) ? s : NULL;
}

/* Group and envelope ids: 1-64 characters of the base64url alphabet. */
static int valid_id(const char *s)
{
    return el_b64url_token(s, EL_STORE_ID_MAX);
}

/* An absent list is empty; otherwise at most max peer ids, into ids[].
 * Returns the count or -1. */
static int peer_list(json_t *arr, const char **ids, size_t max)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > max)
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || !el_id_valid_peer_id(json_string_value(v)))
            return -1;
        ids[i] = json_string_value(v);
    }
    return (int)json_array_size(arr);
}

static int f_login(json_t *arg, el_evargs *a, el_evcheck *out)
{
    a->ik = str_field(arg, "ik", 64);
    a->sk = str_field(arg, "sk", 64);
    a->sk_sig = str_field(arg, "sk_sig", 128);
    a->sig = str_field(arg, "sig", 128);
    a->name = json_object_get(arg, "name");
    if (!a->ik || !a->sk || !a->sk_sig || !a->sig)
        return reject(out, EL_REJ_BAD_REQUEST, "login needs ik, sk, sk_sig and sig strings");
    if (a->name && (!json_is_string(a->name) || json_string_length(a->name) > 64))
        return reject(out, EL_REJ_BAD_REQUEST, "name must be a string of at most 64 bytes");
    int rc = el_id_bundle_from_b64(&a->bundle, a->ik, a->sk, a->sk_sig, out->text, sizeof out->text);
    if (rc == 0)
        return 0; /* the login signature needs the connection's nonce */
    out->login_failed = 1;
    if (rc == EL_ERR_CRYPTO)
        return reject(out, EL_REJ_BAD_SIGNATURE, "signature does not verify for this key and challenge");
    return reject(out, EL_REJ_BAD_REQUEST,
                  rc == EL_ERR_INVALID ? "malformed key or signature" : out->text);
}

static int f_contact_request(const char *me, json_t *arg, el_evargs *a, el_evcheck *out)
{
    a->peer = peer_field(arg, "to");
    json_t *jmsg = json_object_get(arg, "message");
    if (!a->peer)
        return reject(out, EL_REJ_BAD_REQUEST, "contact_request needs a peer id in 'to'");
    if (jmsg && (!json_is_string(jmsg) || json_string_length(jmsg) > 512))
        return reject(out, EL_REJ_BAD_REQUEST, "message must be a string of at most 512 bytes");
    a->text = jmsg ? json_string_value(jmsg) : "";
    if (!strcmp(a->peer, me))
        return reject(out, EL_REJ_BAD_REQUEST, "you cannot add yourself");
    return 0;
}

static int f_contact_respond(json_t *arg, el_evargs *a, el_evcheck *out)
{
    a->peer = peer_field(arg, "peer_id");
    json_t *accept = json_object_get(arg, "accept");
    if (!a->peer || !json_is_boolean(accept))
        return reject(out, EL_REJ_BAD_REQUEST, "contact_respond needs peer_id and accept (boolean)");
    a->accept = json_is_true(accept);
    return 0;
}

/* contact_remove, unblock, profile_get: a peer_id and nothing else. */
static int f_peer_id(json_t *arg, el_evargs *a, el_evcheck *out, const char *message)
{
    a->peer = peer_field(arg, "peer_id");
    return a->peer ? 0 : reject(out, EL_REJ_BAD_REQUEST, message);
}

static int f_block(const char *me, json_t *arg, el_evargs *a, el_evcheck *out)
{
    a->peer = peer_field(arg, "peer_id");
    if (!a->peer || !strcmp(a->peer, me))
        return reject(out, EL_REJ_BAD_REQUEST, "block needs another peer's peer_id");
    return 0;
}

static int f_profile_update(json_t *arg, el_evargs *a, el_evcheck *out)
{
    json_t *jn = json_object_get(arg, "name"), *ja = json_object_get(arg, "avatar");
    if (jn && (!json_is_string(jn) || json_string_length(jn) > EL_STORE_NAME_MAX))
        return reject(out, EL_REJ_BAD_REQUEST, "name must be a string of at most 64 bytes");
    if (ja && (!json_is_string(ja) || json_string_length(ja) > EL_STORE_AVATAR_MAX ||
               strncmp(json_string_value(ja), "data:image/", 11)))
        return reject(out, EL_REJ_BAD_REQUEST, "avatar must be an image data: URL of at most 32768 bytes");
    if (!jn && !ja)
        return reject(out, EL_REJ_BAD_REQUEST, "profile_update needs name or avatar");
    a->name = jn;
    a->avatar = ja;
    return 0;
}

static int f_group_create(json_t *arg, el_evargs *a, el_evcheck *out)
{
    a->text = str_field(arg, "name", EL_STORE_GROUP_NAME_MAX);
    a->n = peer_list(json_object_get(arg, "members"), a->ids, EL_EVCHECK_LIST_MAX);
    if (!a->text || !a->text[0] || a->n < 0)
        return reject(out, EL_REJ_BAD_REQUEST,
                      "group_create needs a name (1-128 bytes) and members (peer ids)");
    return 0;
}

static int f_group_update(json_t *arg, el_evargs *a, el_evcheck *out)
{
    a->group_id = str_field(arg, "group_id", EL_STORE_ID_MAX);
    if (a->group_id && !valid_id(a->group_id))
        a->group_id = NULL;
    json_t *jname = json_object_get(arg, "name");
    int has_admin = json_object_get(arg, "admin") != NULL;
    a->admin = has_admin ? peer_field(arg, "admin") : NULL;
    a->n = peer_list(json_object_get(arg, "add"), a->ids, EL_EVCHECK_LIST_MAX);
    a->nrem = peer_list(json_object_get(arg, "remove"), a->rem, EL_EVCHECK_LIST_MAX);
    if (!a->group_id || a->n < 0 || a->nrem < 0 || (has_admin && !a->admin) ||
        (jname && (!json_is_string(jname) || !json_string_length(jname) ||
                   json_string_length(jname) > EL_STORE_GROUP_NAME_MAX)))
        return reject(out, EL_REJ_BAD_REQUEST, "group_update needs group_id and valid name/add/remove/admin");
    a->name = jname;
    return 0;
}

static int f_group_leave(json_t *arg, el_evargs *a, el_evcheck *out)
{
    a->group_id = str_field(arg, "group_id", EL_STORE_ID_MAX);
    if (!a->group_id || !valid_id(a->group_id))
        return reject(out, EL_REJ_BAD_REQUEST, "group_leave needs group_id");
    return 0;
}

static int f_envelope_send(const char *me, json_t *arg, el_evargs *a, el_evcheck *out)
{
    a->peer = peer_field(arg, "to");
    a->text = str_field(arg, "envelope", EL_EVCHECK_ENVELOPE_MAX);
    a->ttl = json_object_get(arg, "ttl");
    if (!a->peer || !a->text || !a->text[0] ||
        (a->ttl && (!json_is_integer(a->ttl) || json_integer_value(a->ttl) <= 0)))
        return reject(out, EL_REJ_BAD_REQUEST,
                      "envelope_send needs 'to' and 'envelope' (base64url, at most 49152 bytes)");
    uint8_t scratch[EL_EVCHECK_ENVELOPE_MAX]; /* decoded only to be checked */
    if (el_b64url_decode(a->text, strlen(a->text), scratch, sizeof scratch) < 0)
        return reject(out, EL_REJ_BAD_REQUEST, "envelope must be canonical base64url");
    if (!strcmp(a->peer, me))
        return reject(out, EL_REJ_BAD_REQUEST, "cannot send an envelope to yourself");
    return 0;
}

static int f_envelope_ack(json_t *arg, el_evargs *a, el_evcheck *out)
{
    json_t *arr = json_object_get(arg, "ids");
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > EL_EVCHECK_ACK_MAX)
        return reject(out, EL_REJ_BAD_REQUEST, "envelope_ack needs ids (1-1000 strings)");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || !valid_id(json_string_value(v)))
            return reject(out, EL_REJ_BAD_REQUEST, "ids must be envelope id strings");
        a->ids[i] = json_string_value(v);
    }
    a->n = (int)json_array_size(arr);
    return 0;
}

int el_evcheck_fields(el_ev_handler h, const char *me, json_t *arg, el_evargs *a,
                      el_evcheck *out)
{
    memset(a, 0, offsetof(el_evargs, ids)); /* the lists are written before they are read */
    switch (h) {
    case EL_EV_LOGIN:
        return f_login(arg, a, out);
    case EL_EV_CONTACT_REQUEST:
        return f_contact_request(me, arg, a, out);
    case EL_EV_CONTACT_RESPOND:
        return f_contact_respond(arg, a, out);
    case EL_EV_CONTACT_REMOVE:
        return f_peer_id(arg, a, out, "contact_remove needs peer_id");
    case EL_EV_BLOCK:
        return f_block(me, arg, a, out);
    case EL_EV_UNBLOCK:
        return f_peer_id(arg, a, out, "unblock needs peer_id");
    case EL_EV_PROFILE_UPDATE:
        return f_profile_update(arg, a, out);
    case EL_EV_PROFILE_GET:
        return f_peer_id(arg, a, out, "profile_get needs peer_id");
    case EL_EV_GROUP_CREATE:
        return f_group_create(arg, a, out);
    case EL_EV_GROUP_UPDATE:
        return f_group_update(arg, a, out);
    case EL_EV_GROUP_LEAVE:
        return f_group_leave(arg, a, out);
    case EL_EV_ENVELOPE_SEND:
        return f_envelope_send(me, arg, a, out);
    case EL_EV_ENVELOPE_ACK:
        return f_envelope_ack(arg, a, out);
    case EL_EV_GET_CONTACTS:
    case EL_EV_GET_ICE_SERVERS:
    case EL_EV_PROFILE_DELETE:
    case EL_EV_GROUP_LIST:
    case EL_EV__COUNT:
        break;
    }
    return 0; /* no fields */
}

/* ---- relay (relay.c el_relay, without the routing) ---- */

int el_evcheck_relay_to(const el_json *j, const char *from, char to[EL_EVCHECK_PEER_LEN + 1],
                        el_evcheck *out)
{
    to[0] = '\0';
    int obj = el_json_at(j, 0, 1);
    if (obj < 0 || j->tok[obj].type != JSMN_OBJECT)
        return reject(out, EL_REJ_BAD_REQUEST, "the argument must be an object with 'to'");
    int to_tok = el_json_get(j, obj, "to");
    int tlen = to_tok >= 0 ? j->tok[to_tok].end - j->tok[to_tok].start : 0;
    if (to_tok < 0 || j->tok[to_tok].type != JSMN_STRING || tlen != EL_EVCHECK_PEER_LEN)
        return reject(out, EL_REJ_BAD_REQUEST, "'to' must be a peer id");
    memcpy(to, j->js + j->tok[to_tok].start, EL_EVCHECK_PEER_LEN);
    to[EL_EVCHECK_PEER_LEN] = '\0';
    if (!el_id_valid_peer_id(to) || !strcmp(to, from))
        return reject(out, EL_REJ_BAD_REQUEST, "'to' must be another peer's id");
    return 0;
}

size_t el_evcheck_relay_cap(const el_json *j, const el_evcheck *ev)
{
    int obj = el_json_at(j, 0, 1);
    size_t span = obj < 0 ? 0 : (size_t)(j->tok[obj].end - j->tok[obj].start);
    return 4 + strlen(relay_names[ev->relay]) + 2 + 10 + EL_EVCHECK_PEER_LEN + 1 + span + 4;
}

int el_evcheck_relay_write(const el_json *j, const char *from, char *buf, size_t cap,
                           size_t *outlen, el_evcheck *out)
{
    *outlen = 0;
    const char *event = relay_names[out->relay];
    int obj = el_json_at(j, 0, 1);
    int to_tok = obj < 0 ? -1 : el_json_get(j, obj, "to");
    if (to_tok < 0 || cap < el_evcheck_relay_cap(j, out))
        return reject(out, EL_REJ_INTERNAL, "out of memory"); /* not checked by relay_to */
    size_t elen = strlen(event);
    char *o = buf;
    memcpy(o, "42[\"", 4), o += 4;
    memcpy(o, event, elen), o += elen;
    memcpy(o, "\",{\"from\":\"", 11), o += 11;
    memcpy(o, from, EL_EVCHECK_PEER_LEN), o += EL_EVCHECK_PEER_LEN;
    *o++ = '"';
    int k = obj + 1;
    for (int pair = 0; pair < j->tok[obj].size; pair++) {
        int v = k + 1;
        int next = el_json_next(j, v);
        /* "\u0066rom" would reach the peer as a second "from" */
        if (memchr(j->js + j->tok[k].start, '\\', (size_t)(j->tok[k].end - j->tok[k].start)))
            return reject(out, EL_REJ_BAD_REQUEST, "escaped characters in member names are not accepted");
        /* the peer's JSON.parse keeps the last "to", we routed by the first:
         * refuse rather than deliver a contradiction */
        if (el_json_str_is(j, k, "to") && k + 1 != to_tok)
            return reject(out, EL_REJ_BAD_REQUEST, "duplicate 'to'");
        if (!el_json_str_is(j, k, "from")) {
            size_t ks, ke, vs, ve;
            el_json_span(j, k, &ks, &ke);
            el_json_span(j, v, &vs, &ve);
            *o++ = ',';
            memcpy(o, j->js + ks, ve - ks); /* key, colon, value as sent */
            o += ve - ks;
        }
        k = next;
    }
    memcpy(o, "}]", 2), o += 2;
    *outlen = (size_t)(o - buf);
    return 0;
}
