/* evcheck.c - pure signaling event checks (evcheck.h), restated from
 * handlers.c and relay.c rule by rule. */
#include "server/evcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/enc.h"
#include "base/err.h"
#include "crypto/identity.h"

/* handlers.c's table, same order. */
const char *const el_evcheck_names[] = {
    "login", "get_contacts", "contact_request", "contact_respond", "contact_remove", "block",
    "unblock", "get_ice_servers", "profile_update", "profile_get", "profile_delete",
    "group_create", "group_list", "group_update", "group_leave", "envelope_send", "envelope_ack",
};
const size_t el_evcheck_count = sizeof el_evcheck_names / sizeof el_evcheck_names[0];

static const char *const relay_names[EL_RELAY__COUNT] = {"offer", "answer", "ice_candidate"};

#define ID_MAX 64           /* EL_STORE_ID_MAX */
#define NAME_MAX_ 64        /* EL_STORE_NAME_MAX */
#define GROUP_NAME_MAX 128  /* EL_STORE_GROUP_NAME_MAX */
#define AVATAR_MAX 32768    /* EL_STORE_AVATAR_MAX */
#define MAX_LIST 256
#define ENVELOPE_MAX 49152

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
    int rc = el_json_scan(j, data, len, tok, maxtok, EL_EVCHECK_MAX_DEPTH, NULL, 0);
    if (rc == -2)
        return reject(out, EL_REJ_TOO_LARGE, "too many JSON values in one event");
    if (rc < 0)
        return reject(out, EL_REJ_INVALID_JSON, "invalid JSON");
    if (j->tok[0].type != JSMN_ARRAY || j->tok[0].size < 1 || j->tok[1].type != JSMN_STRING)
        return reject(out, EL_REJ_BAD_REQUEST, "an event is [name, argument]");
    for (int k = 0; k < EL_RELAY__COUNT; k++)
        if (el_json_str_is(j, 1, relay_names[k])) {
            out->relay = k;
            snprintf(out->name, sizeof out->name, "%s", relay_names[k]);
            return 0;
        }
    for (size_t i = 0; i < el_evcheck_count; i++)
        if (el_json_str_is(j, 1, el_evcheck_names[i])) {
            out->handler = (int)i;
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

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

static int peer_list(json_t *arr, size_t max)
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
    }
    return (int)json_array_size(arr);
}

static int f_login(json_t *arg, el_evcheck *out)
{
    const char *ik = str_field(arg, "ik", 64), *sk = str_field(arg, "sk", 64),
               *sk_sig = str_field(arg, "sk_sig", 128), *sig = str_field(arg, "sig", 128);
    json_t *jname = json_object_get(arg, "name");
    if (!ik || !sk || !sk_sig || !sig)
        return reject(out, EL_REJ_BAD_REQUEST, "login needs ik, sk, sk_sig and sig strings");
    if (jname && (!json_is_string(jname) || json_string_length(jname) > 64))
        return reject(out, EL_REJ_BAD_REQUEST, "name must be a string of at most 64 bytes");
    el_id_bundle b;
    char err[160];
    int rc = el_id_bundle_from_b64(&b, ik, sk, sk_sig, err, sizeof err);
    if (rc == EL_ERR_CRYPTO)
        return reject(out, EL_REJ_BAD_SIGNATURE, "signature does not verify for this key and challenge");
    if (rc != 0)
        return reject(out, EL_REJ_BAD_REQUEST, "malformed key or signature");
    return 0; /* the login signature needs the connection's nonce */
}

static int f_contact_request(const char *me, json_t *arg, el_evcheck *out)
{
    const char *to = peer_field(arg, "to");
    json_t *jmsg = json_object_get(arg, "message");
    if (!to)
        return reject(out, EL_REJ_BAD_REQUEST, "contact_request needs a peer id in 'to'");
    if (jmsg && (!json_is_string(jmsg) || json_string_length(jmsg) > 512))
        return reject(out, EL_REJ_BAD_REQUEST, "message must be a string of at most 512 bytes");
    if (!strcmp(to, me))
        return reject(out, EL_REJ_BAD_REQUEST, "you cannot add yourself");
    return 0;
}

static int f_profile_update(json_t *arg, el_evcheck *out)
{
    json_t *jn = json_object_get(arg, "name"), *ja = json_object_get(arg, "avatar");
    if (jn && (!json_is_string(jn) || json_string_length(jn) > NAME_MAX_))
        return reject(out, EL_REJ_BAD_REQUEST, "name must be a string of at most 64 bytes");
    if (ja && (!json_is_string(ja) || json_string_length(ja) > AVATAR_MAX ||
               strncmp(json_string_value(ja), "data:image/", 11)))
        return reject(out, EL_REJ_BAD_REQUEST, "avatar must be an image data: URL of at most 32768 bytes");
    if (!jn && !ja)
        return reject(out, EL_REJ_BAD_REQUEST, "profile_update needs name or avatar");
    return 0;
}

static int f_group_update(json_t *arg, el_evcheck *out)
{
    const char *gid = str_field(arg, "group_id", ID_MAX);
    if (gid && !valid_id(gid))
        gid = NULL;
    json_t *jname = json_object_get(arg, "name");
    const char *admin = json_object_get(arg, "admin") ? peer_field(arg, "admin") : NULL;
    int nadd = peer_list(json_object_get(arg, "add"), MAX_LIST);
    int nrem = peer_list(json_object_get(arg, "remove"), MAX_LIST);
    if (!gid || nadd < 0 || nrem < 0 || (json_object_get(arg, "admin") && !admin) ||
        (jname && (!json_is_string(jname) || !json_string_length(jname) ||
                   json_string_length(jname) > GROUP_NAME_MAX)))
        return reject(out, EL_REJ_BAD_REQUEST, "group_update needs group_id and valid name/add/remove/admin");
    return 0;
}

static int f_envelope_send(const char *me, json_t *arg, el_evcheck *out)
{
    const char *to = peer_field(arg, "to");
    const char *env = str_field(arg, "envelope", ENVELOPE_MAX);
    json_t *jttl = json_object_get(arg, "ttl");
    if (!to || !env || !env[0] || (jttl && (!json_is_integer(jttl) || json_integer_value(jttl) <= 0)))
        return reject(out, EL_REJ_BAD_REQUEST,
                      "envelope_send needs 'to' and 'envelope' (base64url, at most 49152 bytes)");
    uint8_t *scratch = malloc(ENVELOPE_MAX);
    if (!scratch)
        return reject(out, EL_REJ_INTERNAL, "out of memory");
    int n = el_b64url_decode(env, strlen(env), scratch, ENVELOPE_MAX);
    free(scratch);
    if (n < 0)
        return reject(out, EL_REJ_BAD_REQUEST, "envelope must be canonical base64url");
    if (!strcmp(to, me))
        return reject(out, EL_REJ_BAD_REQUEST, "cannot send an envelope to yourself");
    return 0;
}

static int f_envelope_ack(json_t *arg, el_evcheck *out)
{
    json_t *arr = json_object_get(arg, "ids");
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 1000)
        return reject(out, EL_REJ_BAD_REQUEST, "envelope_ack needs ids (1-1000 strings)");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || !valid_id(json_string_value(v)))
            return reject(out, EL_REJ_BAD_REQUEST, "ids must be envelope id strings");
    }
    return 0;
}

int el_evcheck_fields(const char *me, json_t *arg, el_evcheck *out)
{
    const char *name = out->handler >= 0 ? el_evcheck_names[out->handler] : "";
    const char *peer;
    if (!strcmp(name, "login"))
        return f_login(arg, out);
    if (!strcmp(name, "contact_request"))
        return f_contact_request(me, arg, out);
    if (!strcmp(name, "contact_respond")) {
        peer = peer_field(arg, "peer_id");
        if (!peer || !json_is_boolean(json_object_get(arg, "accept")))
            return reject(out, EL_REJ_BAD_REQUEST, "contact_respond needs peer_id and accept (boolean)");
        return 0;
    }
    if (!strcmp(name, "contact_remove") || !strcmp(name, "unblock") || !strcmp(name, "profile_get")) {
        if (!peer_field(arg, "peer_id"))
            return reject(out, EL_REJ_BAD_REQUEST, "needs peer_id");
        return 0;
    }
    if (!strcmp(name, "block")) {
        peer = peer_field(arg, "peer_id");
        if (!peer || !strcmp(peer, me))
            return reject(out, EL_REJ_BAD_REQUEST, "block needs another peer's peer_id");
        return 0;
    }
    if (!strcmp(name, "profile_update"))
        return f_profile_update(arg, out);
    if (!strcmp(name, "group_create")) {
        const char *gname = str_field(arg, "name", GROUP_NAME_MAX);
        if (!gname || !gname[0] || peer_list(json_object_get(arg, "members"), MAX_LIST) < 0)
            return reject(out, EL_REJ_BAD_REQUEST,
                          "group_create needs a name (1-128 bytes) and members (peer ids)");
        return 0;
    }
    if (!strcmp(name, "group_update"))
        return f_group_update(arg, out);
    if (!strcmp(name, "group_leave")) {
        const char *gid = str_field(arg, "group_id", ID_MAX);
        if (!gid || !valid_id(gid))
            return reject(out, EL_REJ_BAD_REQUEST, "group_leave needs group_id");
        return 0;
    }
    if (!strcmp(name, "envelope_send"))
        return f_envelope_send(me, arg, out);
    if (!strcmp(name, "envelope_ack"))
        return f_envelope_ack(arg, out);
    return 0; /* get_contacts, get_ice_servers, profile_delete, group_list: no fields */
}

/* ---- relay (relay.c el_relay, without the routing) ---- */

size_t el_evcheck_relay_cap(const el_json *j)
{
    int obj = el_json_at(j, 0, 1);
    size_t span = obj < 0 ? 0 : (size_t)(j->tok[obj].end - j->tok[obj].start);
    return 4 + 13 + 2 + 10 + EL_EVCHECK_PEER_LEN + 1 + span + 4;
}

int el_evcheck_relay(const el_json *j, const char *from, char to[EL_EVCHECK_PEER_LEN + 1],
                     char *buf, size_t cap, size_t *outlen, el_evcheck *out)
{
    *outlen = 0;
    to[0] = '\0';
    const char *event = relay_names[out->relay];
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
    size_t elen = strlen(event);
    if (cap < el_evcheck_relay_cap(j))
        return reject(out, EL_REJ_INTERNAL, "out of memory");
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
        if (memchr(j->js + j->tok[k].start, '\\', (size_t)(j->tok[k].end - j->tok[k].start)))
            return reject(out, EL_REJ_BAD_REQUEST, "escaped characters in member names are not accepted");
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
