/* handlers.c - EchoLink's signaling events (docs/PROTOCOL.md §3-6).
 *
 * Dispatch goes through one table of {name, needs_login, handler}. Each
 * event's JSON is checked strictly (proto/json.h) before anything else;
 * offer/answer/ice_candidate then take the copy-through path of relay.c,
 * and the rarer events are parsed with jansson. */
#include "server/presence.h"
#include "server/relay.h"
#include "server/turn.h"

#include "base/enc.h"
#include "base/log.h"
#include "crypto/identity.h"
#include "proto/json.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 256
#define MAX_TOKENS 8192

typedef int (*handler_fn)(el_conn *c, json_t *arg, int64_t id);

/* ---- replies ---- */

static int send_ack(el_conn *c, int64_t id, json_t *obj)
{
    if (id < 0) {
        json_decref(obj);
        return 0;
    }
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s)
        return -1;
    int rc = el_socket_ack(c, "/", id, s, strlen(s));
    free(s);
    return rc;
}

static int ack_ok(el_conn *c, int64_t id)
{
    return send_ack(c, id, json_pack("{s:b}", "ok", 1));
}

int el_handlers_reply_error(el_conn *c, int64_t id, const char *event, el_reject r,
                            const char *message)
{
    c->srv->metrics.rejected[r]++;
    if (id >= 0)
        return send_ack(c, id, json_pack("{s:b, s:s, s:s}", "ok", 0, "error", el_reject_code(r),
                                         "message", message));
    json_t *o = json_pack("{s:s, s:s, s:s?}", "error", el_reject_code(r), "message", message,
                          "event", event);
    int rc = el_presence_emit(c, "error", o);
    json_decref(o);
    return rc;
}

#define FAIL(r, msg) el_handlers_reply_error(c, id, NULL, (r), (msg))

/* ---- argument helpers ---- */

static const char *str_field(json_t *arg, const char *key, size_t maxlen)
{
    json_t *v = json_object_get(arg, key);
    if (!json_is_string(v) || json_string_length(v) > maxlen)
        return NULL;
    return json_string_value(v);
}

static const char *peer_field(json_t *arg, const char *key)
{
    const char *s = str_field(arg, key, EL_PEER_ID_CHARS);
    return s && el_id_valid_peer_id(s) ? s : NULL;
}

/* Group and envelope ids: 1-64 characters of the base64url alphabet. */
static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > EL_STORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

static const char *me(el_conn *c)
{
    return c->client->peer_id;
}

/* ---- session lifecycle ---- */


int el_handlers_connect(el_conn *c)
{
    if (!c->client) {
        memset(&c->client_state, 0, sizeof c->client_state);
        c->client = &c->client_state;
    }
    el_client *cl = c->client;
    if (cl->logged_in)
        return 0;
    if (RAND_bytes(cl->nonce, sizeof cl->nonce) != 1)
        abort();
    char nonce[EL_ID_NONCE_B64_SIZE];
    el_b64url_encode(cl->nonce, sizeof cl->nonce, nonce, sizeof nonce);
    json_t *o = json_pack("{s:i, s:s, s:s}", "v", 1, "nonce", nonce, "sid", c->sio_id);
    int rc = el_presence_emit(c, "challenge", o);
    json_decref(o);
    el_conn_arm_guard(c, EL_GUARD_LOGIN);
    return rc;
}

static void logout(el_conn *c)
{
    el_client *cl = c->client;
    if (!cl || !cl->logged_in)
        return;
    el_server *srv = c->srv;
    cl->logged_in = 0;
    if (el_map_get(srv->peers, cl->peer_id) == c) {
        el_map_del(srv->peers, cl->peer_id);
        el_cluster_peer_offline(srv->cluster, cl->peer_id);
        srv->metrics.peers_online--;
        el_store_user_touch(srv->store, cl->peer_id, el_now_ms(), NULL, 0);
        el_presence_leave(srv, cl->peer_id);
    }
}

void el_handlers_closed(el_conn *c)
{
    if (!c || !c->client)
        return;
    logout(c);
    c->client = NULL;
}

/* Tells the client why, sends DISCONNECT (socket.io-client then does not
 * reconnect by itself) and closes the session if the client lingers. The
 * send queue is kept, so the client reads every ack before the goodbye. */
void el_handlers_kick(el_conn *c, const char *reason)
{
    if (c->client && c->client->kicked)
        return;
    json_t *o = json_pack("{s:s}", "reason", reason);
    el_presence_emit(c, "session_closed", o);
    json_decref(o);
    if (c->client)
        c->client->kicked = 1;
    logout(c);
    el_conn_send(c, EL_EIO_MESSAGE, "1", 1);
    el_conn_arm_guard(c, EL_GUARD_GRACE);
}

void el_handlers_guard(el_conn *c)
{
    el_client *cl = c->client;
    if (!cl)
        return;
    if (cl->kicked) {
        el_conn_close(c, "kicked", '1');
        return;
    }
    if (!cl->logged_in)
        el_handlers_kick(c, "login_timeout");
}


/* ---- login ---- */

static json_t *ice_servers(el_server *srv, const char *peer_id, int *ttl)
{
    const el_server_config *cfg = srv->cfg;
    json_t *list = json_array();
    *ttl = cfg->turn_ttl;
    char buf[1024];
    if (cfg->stun_urls) {
        json_t *urls = json_array();
        snprintf(buf, sizeof buf, "%s", cfg->stun_urls);
        for (char *save, *u = strtok_r(buf, ",", &save); u; u = strtok_r(NULL, ",", &save))
            json_array_append_new(urls, json_string(u));
        json_array_append_new(list, json_pack("{s:o}", "urls", urls));
    }
    if (cfg->turn_urls && cfg->turn_secret) {
        char user[128], cred[64];
        int64_t expiry = el_now_ms() / 1000 + cfg->turn_ttl;
        if (el_turn_credential(cfg->turn_secret, peer_id, expiry, user, sizeof user, cred,
                               sizeof cred) == 0) {
            json_t *urls = json_array();
            snprintf(buf, sizeof buf, "%s", cfg->turn_urls);
            for (char *save, *u = strtok_r(buf, ",", &save); u; u = strtok_r(NULL, ",", &save))
                json_array_append_new(urls, json_string(u));
            json_array_append_new(list, json_pack("{s:o, s:s, s:s}", "urls", urls, "username",
                                                  user, "credential", cred));
        }
    }
    return list;
}

typedef struct {
    el_conn *c;
} deliver_ctx;

static int deliver_request(const el_store_request *req, void *user)
{
    deliver_ctx *d = user;
    json_t *from = el_presence_peer(d->c->srv, req->from);
    if (!from)
        return 0;
    json_t *o = json_pack("{s:o, s:s, s:I}", "from", from, "message", req->message, "at",
                          (json_int_t)req->at);
    el_presence_emit(d->c, "contact_request", o);
    json_decref(o);
    return 0;
}

static int deliver_envelope(const el_store_envelope *env, void *user)
{
    deliver_ctx *d = user;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "id", env->id, "from", env->from, "envelope",
                          env->blob, "at", (json_int_t)env->created_at);
    el_presence_emit(d->c, "envelope", o);
    json_decref(o);
    d->c->srv->metrics.envelopes_delivered++;
    return 0;
}

typedef struct {
    deliver_ctx d;
    const char *id;
} push_ctx;

static int push_one(const el_store_envelope *env, void *user)
{
    push_ctx *p = user;
    return strcmp(env->id, p->id) ? 0 : deliver_envelope(env, &p->d);
}

void el_handlers_push_envelope(el_conn *c, const char *id)
{
    push_ctx p = {{c}, id};
    char err[128];
    if (el_store_envelope_list(c->srv->store, c->client->peer_id, el_now_ms(), 0, push_one, &p, err,
                               sizeof err) < 0)
        EL_WARN("envelope %s for %s stays queued: %s", id, c->client->peer_id, err);
}

static int h_login(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    el_client *cl = c->client;
    if (cl->logged_in)
        return FAIL(EL_REJ_BAD_REQUEST, "already logged in");
    const char *ik = str_field(arg, "ik", 64), *sk = str_field(arg, "sk", 64),
               *sk_sig = str_field(arg, "sk_sig", 128), *sig = str_field(arg, "sig", 128);
    json_t *jname = json_object_get(arg, "name");
    if (!ik || !sk || !sk_sig || !sig)
        return FAIL(EL_REJ_BAD_REQUEST, "login needs ik, sk, sk_sig and sig strings");
    if (jname && (!json_is_string(jname) || json_string_length(jname) > 64))
        return FAIL(EL_REJ_BAD_REQUEST, "name must be a string of at most 64 bytes");
    el_id_bundle b;
    char err[160];
    int rc = el_id_bundle_from_b64(&b, ik, sk, sk_sig, err, sizeof err);
    if (rc == 0)
        rc = el_id_verify_login_b64(&b, cl->nonce, c->sio_id, sig);
    if (rc != 0) {
        srv->metrics.logins_failed++;
        if (rc == EL_ERR_CRYPTO)
            return FAIL(EL_REJ_BAD_SIGNATURE, "signature does not verify for this key and challenge");
        return FAIL(EL_REJ_BAD_REQUEST, rc == EL_ERR_INVALID ? "malformed key or signature" : err);
    }
    char peer_id[EL_PEER_ID_CHARS + 1];
    if (el_id_peer_id(b.ik, peer_id) != 0)
        return FAIL(EL_REJ_INTERNAL, "cannot derive peer id");
    if (el_store_user_login(srv->store, peer_id, ik, sk, sk_sig,
                            jname ? json_string_value(jname) : NULL, el_now_ms(), err,
                            sizeof err) < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");

    el_conn *old = el_map_get(srv->peers, peer_id);
    if (old && old != c)
        el_handlers_kick(old, "replaced"); /* removes it from srv->peers */
    memcpy(cl->peer_id, peer_id, sizeof peer_id);
    cl->logged_in = 1;
    if (el_map_put(srv->peers, cl->peer_id, c) < 0) {
        cl->logged_in = 0;
        return FAIL(EL_REJ_INTERNAL, "out of memory");
    }
    el_cluster_peer_online(srv->cluster, cl->peer_id);
    srv->metrics.logins_total++;
    srv->metrics.peers_online++;
    OPENSSL_cleanse(cl->nonce, sizeof cl->nonce);
    el_conn_arm_guard(c, EL_GUARD_NONE);

    el_store_user u;
    char *avatar = malloc(EL_STORE_AVATAR_MAX + 1);
    int got = avatar ? el_store_user_get(srv->store, peer_id, &u, avatar, EL_STORE_AVATAR_MAX + 1,
                                         NULL, 0)
                     : -1;
    int ttl;
    json_t *ice = ice_servers(srv, peer_id, &ttl);
    json_t *ack = json_pack("{s:b, s:s, s:{s:s?, s:s?}, s:o, s:i}", "ok", 1, "peer_id", peer_id,
                            "profile", "name", got == 0 && u.has_name ? u.name : NULL, "avatar",
                            got == 0 && u.has_avatar ? avatar : NULL, "ice_servers", ice, "ttl",
                            ttl);
    free(avatar);
    if (send_ack(c, id, ack) < 0)
        return -1;
    el_presence_announce(c, peer_id);
    deliver_ctx d = {c};
    el_store_request_list_incoming(srv->store, peer_id, deliver_request, &d, NULL, 0);
    el_store_envelope_list(srv->store, peer_id, el_now_ms(), 0, deliver_envelope, &d, NULL, 0);
    return c->closed ? -1 : 0;
}

/* ---- contacts ---- */

static void notify_peer(el_server *srv, const char *to, const char *event, json_t *obj)
{
    el_conn *t = el_map_get(srv->peers, to);
    if (t) {
        el_presence_emit(t, event, obj);
        return;
    }
    char *s = srv->cluster ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (s) /* cluster: `to` may be on another node */
        el_cluster_emit(srv->cluster, to, event, s);
    free(s);
}

static void contact_added(el_server *srv, const char *a, const char *b)
{
    json_t *pa = el_presence_peer(srv, a), *pb = el_presence_peer(srv, b);
    if (pa)
        notify_peer(srv, b, "contact_added", pa);
    if (pb)
        notify_peer(srv, a, "contact_added", pb);
    json_decref(pa);
    json_decref(pb);
    el_presence_pair_changed(srv, a, b);
}

static int h_contact_request(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *to = peer_field(arg, "to");
    json_t *jmsg = json_object_get(arg, "message");
    if (!to)
        return FAIL(EL_REJ_BAD_REQUEST, "contact_request needs a peer id in 'to'");
    if (jmsg && (!json_is_string(jmsg) || json_string_length(jmsg) > 512))
        return FAIL(EL_REJ_BAD_REQUEST, "message must be a string of at most 512 bytes");
    const char *msg = jmsg ? json_string_value(jmsg) : "";
    if (!strcmp(to, me(c)))
        return FAIL(EL_REJ_BAD_REQUEST, "you cannot add yourself");
    if (el_store_user_exists(srv->store, to, NULL, 0) != 1)
        return FAIL(EL_REJ_UNKNOWN_PEER, "no user with that peer id");
    if (el_store_block_is(srv->store, me(c), to, NULL, 0) == 1)
        return FAIL(EL_REJ_NOT_ALLOWED, "you blocked this peer; unblock first");
    if (el_store_block_is(srv->store, to, me(c), NULL, 0) == 1)
        return ack_ok(c, id); /* silently discarded: a block is not revealed */
    if (el_store_contact_is(srv->store, me(c), to, NULL, 0) == 1)
        return ack_ok(c, id);
    int64_t now = el_now_ms();
    if (el_store_request_exists(srv->store, to, me(c), NULL, 0) == 1) {
        /* they asked first: this is an acceptance */
        if (el_store_request_accept(srv->store, to, me(c), now, NULL, 0) < 0)
            return FAIL(EL_REJ_INTERNAL, "the server's database failed");
        if (ack_ok(c, id) < 0)
            return -1;
        contact_added(srv, to, me(c));
        return 0;
    }
    if (el_store_request_add(srv->store, me(c), to, msg, now, NULL, 0) < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    if (ack_ok(c, id) < 0)
        return -1;
    el_conn *t = el_map_get(srv->peers, to);
    if (t) {
        el_store_request r;
        memset(&r, 0, sizeof r);
        snprintf(r.from, sizeof r.from, "%s", me(c));
        snprintf(r.message, sizeof r.message, "%s", msg);
        r.at = now;
        deliver_ctx d = {t};
        deliver_request(&r, &d);
    } else if (srv->cluster) {
        json_t *from = el_presence_peer(srv, me(c));
        json_t *o = from ? json_pack("{s:o, s:s, s:I}", "from", from, "message", msg, "at",
                                     (json_int_t)now)
                         : NULL;
        if (o)
            notify_peer(srv, to, "contact_request", o); /* through to's node */
        json_decref(o);
    }
    return 0;
}

static int h_contact_respond(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *peer = peer_field(arg, "peer_id");
    json_t *accept = json_object_get(arg, "accept");
    if (!peer || !json_is_boolean(accept))
        return FAIL(EL_REJ_BAD_REQUEST, "contact_respond needs peer_id and accept (boolean)");
    if (json_is_true(accept)) {
        int rc = el_store_request_accept(srv->store, peer, me(c), el_now_ms(), NULL, 0);
        if (rc == EL_ERR_NOT_FOUND)
            return FAIL(EL_REJ_NOT_FOUND, "no pending request from that peer");
        if (rc < 0)
            return FAIL(EL_REJ_INTERNAL, "the server's database failed");
        if (ack_ok(c, id) < 0)
            return -1;
        contact_added(srv, peer, me(c));
        return 0;
    }
    int rc = el_store_request_remove(srv->store, peer, me(c), NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_NOT_FOUND, "no pending request from that peer");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    if (ack_ok(c, id) < 0)
        return -1;
    json_t *o = json_pack("{s:s}", "peer_id", me(c));
    notify_peer(srv, peer, "contact_refused", o);
    json_decref(o);
    return 0;
}

static int h_contact_remove(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *peer = peer_field(arg, "peer_id");
    if (!peer)
        return FAIL(EL_REJ_BAD_REQUEST, "contact_remove needs peer_id");
    int rc = el_store_contact_remove(srv->store, me(c), peer, NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_NOT_FOUND, "not a contact");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    if (ack_ok(c, id) < 0)
        return -1;
    json_t *o = json_pack("{s:s}", "peer_id", me(c));
    notify_peer(srv, peer, "contact_removed", o);
    json_decref(o);
    el_presence_pair_changed(srv, me(c), peer);
    return 0;
}

static int h_block(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *peer = peer_field(arg, "peer_id");
    if (!peer || !strcmp(peer, me(c)))
        return FAIL(EL_REJ_BAD_REQUEST, "block needs another peer's peer_id");
    int was_visible = el_presence_visible(srv, me(c), peer);
    int rc = el_store_block_add(srv->store, me(c), peer, el_now_ms(), NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_UNKNOWN_PEER, "no user with that peer id");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    if (ack_ok(c, id) < 0)
        return -1;
    if (was_visible)
        el_presence_pair_changed(srv, me(c), peer);
    return 0;
}

static int h_unblock(el_conn *c, json_t *arg, int64_t id)
{
    const char *peer = peer_field(arg, "peer_id");
    if (!peer)
        return FAIL(EL_REJ_BAD_REQUEST, "unblock needs peer_id");
    int rc = el_store_block_remove(c->srv->store, me(c), peer, NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_NOT_FOUND, "that peer is not blocked");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    return ack_ok(c, id);
}

typedef struct {
    el_server *srv;
    json_t *arr;
} list_ctx;

static int add_contact_obj(const char *peer_id, void *user)
{
    list_ctx *l = user;
    json_t *p = el_presence_peer(l->srv, peer_id);
    if (p)
        json_array_append_new(l->arr, p);
    return 0;
}

static int add_request_obj(const el_store_request *r, void *user)
{
    list_ctx *l = user;
    json_array_append_new(l->arr, json_pack("{s:s, s:s, s:s, s:I}", "from", r->from, "to", r->to,
                                            "message", r->message, "at", (json_int_t)r->at));
    return 0;
}

static int add_string(const char *peer_id, void *user)
{
    list_ctx *l = user;
    json_array_append_new(l->arr, json_string(peer_id));
    return 0;
}

static int h_get_contacts(el_conn *c, json_t *arg, int64_t id)
{
    (void)arg;
    el_server *srv = c->srv;
    list_ctx contacts = {srv, json_array()}, in = {srv, json_array()}, out = {srv, json_array()},
             blocked = {srv, json_array()};
    el_store_contact_list(srv->store, me(c), add_contact_obj, &contacts, NULL, 0);
    el_store_request_list_incoming(srv->store, me(c), add_request_obj, &in, NULL, 0);
    el_store_request_list_outgoing(srv->store, me(c), add_request_obj, &out, NULL, 0);
    el_store_block_list(srv->store, me(c), add_string, &blocked, NULL, 0);
    return send_ack(c, id, json_pack("{s:b, s:o, s:o, s:o, s:o}", "ok", 1, "contacts", contacts.arr,
                                     "incoming", in.arr, "outgoing", out.arr, "blocked",
                                     blocked.arr));
}

/* ---- profiles ---- */

static int h_profile_update(el_conn *c, json_t *arg, int64_t id)
{
    json_t *jn = json_object_get(arg, "name"), *ja = json_object_get(arg, "avatar");
    unsigned fields = 0;
    if (jn) {
        if (!json_is_string(jn) || json_string_length(jn) > EL_STORE_NAME_MAX)
            return FAIL(EL_REJ_BAD_REQUEST, "name must be a string of at most 64 bytes");
        fields |= EL_STORE_PROFILE_NAME;
    }
    if (ja) {
        if (!json_is_string(ja) || json_string_length(ja) > EL_STORE_AVATAR_MAX ||
            strncmp(json_string_value(ja), "data:image/", 11))
            return FAIL(EL_REJ_BAD_REQUEST, "avatar must be an image data: URL of at most 32768 bytes");
        fields |= EL_STORE_PROFILE_AVATAR;
    }
    if (!fields)
        return FAIL(EL_REJ_BAD_REQUEST, "profile_update needs name or avatar");
    if (el_store_user_set_profile(c->srv->store, me(c), fields, jn ? json_string_value(jn) : NULL,
                                  ja ? json_string_value(ja) : NULL, NULL, 0) < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    return ack_ok(c, id);
}

static int may_see_profile(el_server *srv, const char *a, const char *b)
{
    return !strcmp(a, b) || el_presence_visible(srv, a, b) ||
           el_store_request_exists(srv->store, a, b, NULL, 0) == 1 ||
           el_store_request_exists(srv->store, b, a, NULL, 0) == 1;
}

static int h_profile_get(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *peer = peer_field(arg, "peer_id");
    if (!peer)
        return FAIL(EL_REJ_BAD_REQUEST, "profile_get needs peer_id");
    if (el_store_user_exists(srv->store, peer, NULL, 0) != 1)
        return FAIL(EL_REJ_UNKNOWN_PEER, "no user with that peer id");
    if (!may_see_profile(srv, me(c), peer))
        return FAIL(EL_REJ_NOT_ALLOWED, "not a contact");
    el_store_user u;
    char *avatar = malloc(EL_STORE_AVATAR_MAX + 1);
    if (!avatar || el_store_user_get(srv->store, peer, &u, avatar, EL_STORE_AVATAR_MAX + 1, NULL, 0) < 0) {
        free(avatar);
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    }
    json_t *o = json_pack("{s:b, s:{s:s, s:s?, s:s?}}", "ok", 1, "profile", "peer_id", peer, "name",
                          u.has_name ? u.name : NULL, "avatar", u.has_avatar ? avatar : NULL);
    free(avatar);
    return send_ack(c, id, o);
}

static int h_profile_delete(el_conn *c, json_t *arg, int64_t id)
{
    (void)arg;
    if (el_store_user_delete_profile(c->srv->store, me(c), NULL, 0) < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    return ack_ok(c, id);
}

static int h_get_ice_servers(el_conn *c, json_t *arg, int64_t id)
{
    (void)arg;
    int ttl;
    json_t *list = ice_servers(c->srv, me(c), &ttl);
    return send_ack(c, id, json_pack("{s:b, s:o, s:i}", "ok", 1, "ice_servers", list, "ttl", ttl));
}

/* ---- groups (a directory; peers' admin-signed messages are authoritative) ---- */

typedef struct {
    json_t *arr;
} members_ctx;

static int add_member(const char *peer_id, int64_t joined_at, void *user)
{
    (void)joined_at;
    members_ctx *m = user;
    json_array_append_new(m->arr, json_string(peer_id));
    return 0;
}

static json_t *group_obj(el_server *srv, const el_store_group *g)
{
    members_ctx m = {json_array()};
    el_store_group_list_members(srv->store, g->group_id, add_member, &m, NULL, 0);
    return json_pack("{s:s, s:s, s:s, s:o, s:I}", "group_id", g->group_id, "name", g->name, "admin",
                     g->admin, "members", m.arr, "created_at", (json_int_t)g->created_at);
}

/* Validates an array of peer ids into ids[]; returns the count or -1. */
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

static void announce_members(el_server *srv, const char *group_id, const char *peer)
{
    members_ctx m = {json_array()};
    el_store_group_list_members(srv->store, group_id, add_member, &m, NULL, 0);
    size_t i;
    json_t *v;
    json_array_foreach(m.arr, i, v)
    {
        const char *other = json_string_value(v);
        if (strcmp(other, peer))
            el_presence_pair_changed(srv, peer, other);
    }
    json_decref(m.arr);
}

static int h_group_create(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *name = str_field(arg, "name", EL_STORE_GROUP_NAME_MAX);
    const char *ids[MAX_LIST];
    int n = peer_list(json_object_get(arg, "members"), ids, MAX_LIST);
    if (!name || !name[0] || n < 0)
        return FAIL(EL_REJ_BAD_REQUEST, "group_create needs a name (1-128 bytes) and members (peer ids)");
    /* Only contacts can be added: co-members see each other's presence, so
     * a stranger must not be able to make himself visible by a group. */
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], me(c)) && el_store_contact_is(srv->store, me(c), ids[i], NULL, 0) != 1)
            return FAIL(EL_REJ_NOT_ALLOWED, "members must be your contacts");
    el_store_group g;
    memset(&g, 0, sizeof g);
    el_random_id(g.group_id, 22);
    int rc = el_store_group_create(srv->store, g.group_id, name, me(c), ids, (size_t)n, el_now_ms(),
                                   NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_UNKNOWN_PEER, "a member is not a known user");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    el_store_group_get(srv->store, g.group_id, &g, NULL, 0);
    if (send_ack(c, id, json_pack("{s:b, s:o}", "ok", 1, "group", group_obj(srv, &g))) < 0)
        return -1;
    announce_members(srv, g.group_id, me(c));
    for (int i = 0; i < n; i++)
        announce_members(srv, g.group_id, ids[i]);
    return 0;
}

static int add_group(const el_store_group *g, void *user)
{
    list_ctx *l = user;
    json_array_append_new(l->arr, group_obj(l->srv, g));
    return 0;
}

static int h_group_list(el_conn *c, json_t *arg, int64_t id)
{
    (void)arg;
    list_ctx l = {c->srv, json_array()};
    el_store_group_list_for_peer(c->srv->store, me(c), add_group, &l, NULL, 0);
    return send_ack(c, id, json_pack("{s:b, s:o}", "ok", 1, "groups", l.arr));
}

static int h_group_update(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *gid = str_field(arg, "group_id", EL_STORE_ID_MAX);
    if (gid && !valid_id(gid))
        gid = NULL;
    json_t *jname = json_object_get(arg, "name");
    const char *admin = json_object_get(arg, "admin") ? peer_field(arg, "admin") : NULL;
    const char *add[MAX_LIST], *rem[MAX_LIST];
    int nadd = peer_list(json_object_get(arg, "add"), add, MAX_LIST);
    int nrem = peer_list(json_object_get(arg, "remove"), rem, MAX_LIST);
    if (!gid || nadd < 0 || nrem < 0 || (json_object_get(arg, "admin") && !admin) ||
        (jname && (!json_is_string(jname) || !json_string_length(jname) ||
                   json_string_length(jname) > EL_STORE_GROUP_NAME_MAX)))
        return FAIL(EL_REJ_BAD_REQUEST, "group_update needs group_id and valid name/add/remove/admin");
    el_store_group g;
    if (el_store_group_get(srv->store, gid, &g, NULL, 0) < 0)
        return FAIL(EL_REJ_NOT_FOUND, "no such group");
    if (strcmp(g.admin, me(c)))
        return FAIL(EL_REJ_NOT_ALLOWED, "only the group's admin may change it");
    int64_t now = el_now_ms();
    for (int i = 0; i < nadd; i++) {
        if (el_store_user_exists(srv->store, add[i], NULL, 0) != 1)
            return FAIL(EL_REJ_UNKNOWN_PEER, "a member is not a known user");
        if (el_store_contact_is(srv->store, me(c), add[i], NULL, 0) != 1)
            return FAIL(EL_REJ_NOT_ALLOWED, "members must be your contacts");
    }
    if (jname)
        el_store_group_set_name(srv->store, gid, json_string_value(jname), NULL, 0);
    for (int i = 0; i < nadd; i++)
        el_store_group_member_add(srv->store, gid, add[i], now, NULL, 0);
    if (admin && el_store_group_set_admin(srv->store, gid, admin, NULL, 0) < 0)
        return FAIL(EL_REJ_NOT_FOUND, "the new admin must be a member");
    for (int i = 0; i < nrem; i++)
        if (strcmp(rem[i], me(c))) /* the admin leaves with group_leave */
            el_store_group_member_remove(srv->store, gid, rem[i], NULL, 0);
    int deleted = el_store_group_get(srv->store, gid, &g, NULL, 0) < 0;
    if (send_ack(c, id, deleted ? json_pack("{s:b}", "ok", 1)
                                : json_pack("{s:b, s:o}", "ok", 1, "group", group_obj(srv, &g))) < 0)
        return -1;
    for (int i = 0; i < nadd; i++)
        announce_members(srv, gid, add[i]);
    for (int i = 0; i < nrem; i++) {
        el_conn *t = el_map_get(srv->peers, rem[i]);
        if (!t)
            continue;
        members_ctx m = {json_array()};
        el_store_group_list_members(srv->store, gid, add_member, &m, NULL, 0);
        size_t k;
        json_t *v;
        json_array_foreach(m.arr, k, v)
            el_presence_pair_changed(srv, rem[i], json_string_value(v));
        json_decref(m.arr);
    }
    return 0;
}

static int h_group_leave(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *gid = str_field(arg, "group_id", EL_STORE_ID_MAX);
    if (!gid || !valid_id(gid))
        return FAIL(EL_REJ_BAD_REQUEST, "group_leave needs group_id");
    members_ctx m = {json_array()};
    el_store_group_list_members(srv->store, gid, add_member, &m, NULL, 0);
    int rc = el_store_group_member_remove(srv->store, gid, me(c), NULL, 0);
    if (rc == EL_ERR_NOT_FOUND) {
        json_decref(m.arr);
        return FAIL(EL_REJ_NOT_FOUND, "not a member of that group");
    }
    if (rc < 0) {
        json_decref(m.arr);
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    }
    if (ack_ok(c, id) < 0) {
        json_decref(m.arr);
        return -1;
    }
    size_t k;
    json_t *v;
    json_array_foreach(m.arr, k, v)
        if (strcmp(json_string_value(v), me(c)))
            el_presence_pair_changed(srv, me(c), json_string_value(v));
    json_decref(m.arr);
    return 0;
}

/* ---- offline envelopes ---- */

static int h_envelope_send(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    const char *to = peer_field(arg, "to");
    const char *env = str_field(arg, "envelope", 49152);
    json_t *jttl = json_object_get(arg, "ttl");
    if (!to || !env || !env[0] || (jttl && (!json_is_integer(jttl) || json_integer_value(jttl) <= 0)))
        return FAIL(EL_REJ_BAD_REQUEST, "envelope_send needs 'to' and 'envelope' (base64url, at most 49152 bytes)");
    size_t elen = strlen(env);
    uint8_t scratch[49152];
    if (el_b64url_decode(env, elen, scratch, sizeof scratch) < 0)
        return FAIL(EL_REJ_BAD_REQUEST, "envelope must be canonical base64url");
    if (!strcmp(to, me(c)))
        return FAIL(EL_REJ_BAD_REQUEST, "cannot send an envelope to yourself");
    if (el_store_user_exists(srv->store, to, NULL, 0) != 1)
        return FAIL(EL_REJ_UNKNOWN_PEER, "no user with that peer id");
    char eid[23];
    el_random_id(eid, 22);
    if (el_store_block_is(srv->store, to, me(c), NULL, 0) == 1)
        return send_ack(c, id, json_pack("{s:b, s:s}", "ok", 1, "id", eid)); /* discarded */
    if (!el_presence_visible(srv, me(c), to))
        return FAIL(EL_REJ_NOT_ALLOWED, "not a contact or group co-member");
    int64_t ttl = jttl ? json_integer_value(jttl) : srv->cfg->envelope_ttl;
    if (ttl > srv->cfg->envelope_ttl)
        ttl = srv->cfg->envelope_ttl;
    int64_t now = el_now_ms();
    int rc = el_store_envelope_put(srv->store, eid, to, me(c), env, now, now + ttl * 1000,
                                   (unsigned)srv->cfg->queue_max, NULL, 0);
    if (rc == EL_ERR_QUOTA)
        return FAIL(EL_REJ_QUOTA, "the recipient's offline queue is full");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    srv->metrics.envelopes_stored++;
    if (send_ack(c, id, json_pack("{s:b, s:s}", "ok", 1, "id", eid)) < 0)
        return -1;
    el_conn *t = el_map_get(srv->peers, to);
    if (t) {
        el_store_envelope e;
        memset(&e, 0, sizeof e);
        snprintf(e.id, sizeof e.id, "%s", eid);
        snprintf(e.from, sizeof e.from, "%s", me(c));
        e.blob = env;
        e.blob_len = elen;
        e.created_at = now;
        deliver_ctx d = {t};
        deliver_envelope(&e, &d);
    } else {
        el_cluster_envelope(srv->cluster, to, eid); /* its node pushes it from the store */
    }
    return 0;
}

static int h_envelope_ack(el_conn *c, json_t *arg, int64_t id)
{
    json_t *arr = json_object_get(arg, "ids");
    const char *ids[1000];
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 1000)
        return FAIL(EL_REJ_BAD_REQUEST, "envelope_ack needs ids (1-1000 strings)");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || !valid_id(json_string_value(v)))
            return FAIL(EL_REJ_BAD_REQUEST, "ids must be envelope id strings");
        ids[i] = json_string_value(v);
    }
    int n = el_store_envelope_delete(c->srv->store, me(c), ids, json_array_size(arr), NULL, 0);
    if (n < 0)
        return FAIL(EL_REJ_INTERNAL, "the server's database failed");
    return send_ack(c, id, json_pack("{s:b, s:i}", "ok", 1, "deleted", n));
}

/* ---- dispatch ---- */

/* `relations`: the event may change who may relay to whom, so the relay
 * decisions cached per connection (relay.c) are invalidated after it. */
static const struct {
    const char *name;
    int needs_login;
    int relations;
    handler_fn fn;
} handlers[] = {
    {"login", 0, 0, h_login},
    {"get_contacts", 1, 0, h_get_contacts},
    {"contact_request", 1, 1, h_contact_request},
    {"contact_respond", 1, 1, h_contact_respond},
    {"contact_remove", 1, 1, h_contact_remove},
    {"block", 1, 1, h_block},
    {"unblock", 1, 1, h_unblock},
    {"get_ice_servers", 1, 0, h_get_ice_servers},
    {"profile_update", 1, 0, h_profile_update},
    {"profile_get", 1, 0, h_profile_get},
    {"profile_delete", 1, 0, h_profile_delete},
    {"group_create", 1, 1, h_group_create},
    {"group_list", 1, 0, h_group_list},
    {"group_update", 1, 1, h_group_update},
    {"group_leave", 1, 1, h_group_leave},
    {"envelope_send", 1, 0, h_envelope_send},
    {"envelope_ack", 1, 0, h_envelope_ack},
};

int el_handlers_event(el_conn *c, const char *data, size_t len, int64_t id)
{
    static jsmntok_t tok[MAX_TOKENS]; /* one thread: one scratch array */
    el_json j;
    char err[96];
    int rc = el_json_scan(&j, data, len, tok, MAX_TOKENS, 32, err, sizeof err);
    if (rc == -2)
        return FAIL(EL_REJ_TOO_LARGE, "too many JSON values in one event");
    if (rc < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "invalid JSON: %s", err);
        return FAIL(EL_REJ_INVALID_JSON, msg);
    }
    if (j.tok[0].type != JSMN_ARRAY || j.tok[0].size < 1 || j.tok[1].type != JSMN_STRING)
        return FAIL(EL_REJ_BAD_REQUEST, "an event is [name, argument]");
    el_client *cl = c->client;
    if (cl && cl->kicked)
        return 0; /* on its way out: nothing more is answered */
    int relay = el_relay_kind_of(&j, 1);
    if (relay >= 0) {
        if (!cl || !cl->logged_in)
            return FAIL(EL_REJ_NOT_LOGGED_IN, "log in first");
        return el_relay(c, cl->peer_id, &j, (el_relay_kind)relay, id);
    }
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
        if (!el_json_str_is(&j, 1, handlers[i].name))
            continue;
        if (!cl || (handlers[i].needs_login && !cl->logged_in))
            return el_handlers_reply_error(c, id, handlers[i].name, EL_REJ_NOT_LOGGED_IN,
                                           "log in first");
        json_t *arg;
        if (j.tok[0].size >= 2) {
            int a = el_json_at(&j, 0, 1);
            size_t s, e;
            el_json_span(&j, a, &s, &e);
            arg = json_loadb(data + s, e - s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        } else {
            arg = json_object();
        }
        if (!json_is_object(arg)) {
            json_decref(arg);
            return el_handlers_reply_error(c, id, handlers[i].name, EL_REJ_BAD_REQUEST,
                                           "the argument must be an object");
        }
        rc = handlers[i].fn(c, arg, id);
        json_decref(arg);
        if (handlers[i].relations) {
            c->srv->relations_epoch++;
            el_cluster_relations_changed(c->srv->cluster); /* the other nodes' caches too */
        }
        return rc;
    }
    char name[48];
    int nlen = j.tok[1].end - j.tok[1].start;
    if (nlen > 40) {
        nlen = 40;
        while (nlen > 0 && ((unsigned char)data[j.tok[1].start + nlen] & 0xc0) == 0x80)
            nlen--; /* never cut inside a UTF-8 sequence */
    }
    snprintf(name, sizeof name, "%.*s", nlen, data + j.tok[1].start);
    return el_handlers_reply_error(c, id, name, EL_REJ_UNKNOWN_EVENT, "no such event");
}
