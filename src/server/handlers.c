/* handlers.c - EchoLink's signaling events (docs/PROTOCOL.md §3-6).
 *
 * Dispatch goes through one table of {needs_login, relations, handler},
 * indexed by evcheck.h's event numbers. What can be checked without state
 * is checked by evcheck.c (the fuzzed implementation): the event's JSON
 * (strictly, proto/json.h) before anything else, and each handler's fields
 * at its top. offer/answer/ice_candidate then take the copy-through path of
 * relay.c; the rarer events are parsed with jansson. */
#include "server/evcheck.h"
#include "server/idquota.h"
#include "server/presence.h"
#include "server/relay.h"
#include "server/turn.h"

#include "base/enc.h"
#include "base/log.h"
#include "crypto/identity.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* true when peer has logged in here before; else the refusal is answered
 * and *rc is the handler's result (a store that cannot say: internal) */
static bool user_known(el_conn *c, const char *peer, int64_t id, int *rc)
{
    int known = el_store_user_exists(c->srv->store, peer, NULL, 0);
    if (known == 1)
        return true;
    *rc = known < 0 ? FAIL(EL_REJ_INTERNAL, EL_DB_FAILED)
                    : FAIL(EL_REJ_UNKNOWN_PEER, "no user with that peer id");
    return false;
}

/* ---- argument checks ---- */

static const char *me(el_conn *c)
{
    return c->client->peer_id;
}

/* Handler h's field checks (evcheck.h) on arg, into *a. Returns 0 when they
 * pass; 1 when the argument was refused, the refusal answered and *rc set
 * to the answer's result (what the handler returns). */
static int refused(el_conn *c, el_ev_handler h, json_t *arg, el_evargs *a, int64_t id, int *rc)
{
    el_evcheck ev;
    memset(&ev, 0, sizeof ev);
    if (el_evcheck_fields(h, me(c), arg, a, &ev) == 0)
        return 0;
    if (ev.login_failed)
        c->srv->metrics.logins_failed++;
    *rc = FAIL(ev.reject, ev.message);
    return 1;
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

static void forget_sent_envelopes(el_client *cl)
{
    el_map_free_with_values(cl->env_sent);
    cl->env_sent = NULL;
}

static void logout(el_conn *c)
{
    el_client *cl = c->client;
    if (cl)
        forget_sent_envelopes(cl);
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

/* Offline envelopes go out a queue's worth at a time: all of a full quota
 * (1000 of up to 48 KiB) at once would pass the connection's send queue cap
 * and close it, at every login, until they expired. The rest follow as the
 * client acknowledges (push_envelopes from h_envelope_ack). */
#define ENVELOPE_PUSH_BUDGET (1u << 20) /* bytes waiting in the send queue */

static bool was_sent(const el_client *cl, const char *id)
{
    return cl->env_sent && el_map_get(cl->env_sent, id);
}

static int deliver_envelope(const el_store_envelope *env, void *user)
{
    deliver_ctx *d = user;
    el_client *cl = d->c->client;
    if (was_sent(cl, env->id))
        return 0;
    if (cl->env_sent && el_map_count(cl->env_sent) > 0 &&
        d->c->q_bytes + strlen(env->blob) > ENVELOPE_PUSH_BUDGET)
        return 1; /* the rest after the next acknowledgement */
    char *id = strdup(env->id);
    if (!cl->env_sent)
        cl->env_sent = el_map_new();
    if (!id || !cl->env_sent || el_map_put(cl->env_sent, id, id) < 0) {
        free(id);
        return EL_ERR_NOMEM;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "id", env->id, "from", env->from, "envelope",
                          env->blob, "at", (json_int_t)env->created_at);
    el_presence_emit(d->c, "envelope", o);
    json_decref(o);
    d->c->srv->metrics.envelopes_delivered++;
    return 0;
}

/* Pushes the envelopes waiting for c's peer that this session has not had,
 * while the send queue has room. */
static void push_envelopes(el_conn *c)
{
    deliver_ctx d = {c};
    char err[128];
    if (el_store_envelope_list(c->srv->store, c->client->peer_id, el_now_ms(), 0,
                               deliver_envelope, &d, err, sizeof err) < 0)
        EL_WARN("envelopes for %s stay queued: %s", c->client->peer_id, err);
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

/* A key the server has not seen makes a new user: that costs its address
 * one of --max-new-ids-per-ip tokens an hour (server/idquota.h). */
static bool new_id_allowed(el_conn *c, const char *peer_id, int *rc, int64_t id)
{
    el_server *srv = c->srv;
    int per_hour = srv->cfg->max_new_ids_per_ip;
    if (per_hour <= 0 || el_store_user_exists(srv->store, peer_id, NULL, 0) != 0)
        return true; /* known (or the store failed: the login reports that) */
    int retry_s = 0;
    if (el_idquota_take(srv->idq, c->ipc ? c->ipc->ip : "", per_hour, el_now_ms(), &retry_s))
        return true;
    char msg[160];
    snprintf(msg, sizeof msg,
             "too many new identities from this address (%d an hour); try again in %d s",
             per_hour, retry_s);
    *rc = FAIL(EL_REJ_RATE_LIMITED, msg);
    return false;
}

static int h_login(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    el_client *cl = c->client;
    if (cl->logged_in)
        return FAIL(EL_REJ_BAD_REQUEST, "already logged in");
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_LOGIN, arg, &a, id, &rc))
        return rc;
    /* el_id_verify_login_b64 fails with EL_ERR_INVALID or EL_ERR_CRYPTO only */
    rc = el_id_verify_login_b64(&a.bundle, cl->nonce, c->sio_id, a.sig);
    if (rc != 0) {
        srv->metrics.logins_failed++;
        if (rc == EL_ERR_CRYPTO)
            return FAIL(EL_REJ_BAD_SIGNATURE, "signature does not verify for this key and challenge");
        return FAIL(EL_REJ_BAD_REQUEST, "malformed key or signature");
    }
    char peer_id[EL_PEER_ID_CHARS + 1];
    if (el_id_peer_id(a.bundle.ik, peer_id) != 0)
        return FAIL(EL_REJ_INTERNAL, "cannot derive peer id");
    if (!new_id_allowed(c, peer_id, &rc, id))
        return rc;
    char err[160];
    if (el_store_user_login(srv->store, peer_id, a.ik, a.sk, a.sk_sig,
                            a.name ? json_string_value(a.name) : NULL, el_now_ms(), err,
                            sizeof err) < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);

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
    push_envelopes(c);
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_CONTACT_REQUEST, arg, &a, id, &rc))
        return rc;
    const char *to = a.peer, *msg = a.text;
    if (!user_known(c, to, id, &rc))
        return rc;
    /* block checks fail closed: a store that cannot say refuses the request */
    rc = el_store_block_is(srv->store, me(c), to, NULL, 0);
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    if (rc == 1)
        return FAIL(EL_REJ_NOT_ALLOWED, "you blocked this peer; unblock first");
    rc = el_store_block_is(srv->store, to, me(c), NULL, 0);
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    if (rc == 1)
        return ack_ok(c, id); /* silently discarded: a block is not revealed */
    if (el_store_contact_is(srv->store, me(c), to, NULL, 0) == 1)
        return ack_ok(c, id);
    int64_t now = el_now_ms();
    if (el_store_request_exists(srv->store, to, me(c), NULL, 0) == 1) {
        /* they asked first: this is an acceptance */
        if (el_store_request_accept(srv->store, to, me(c), now, NULL, 0) < 0)
            return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
        if (ack_ok(c, id) < 0)
            return -1;
        contact_added(srv, to, me(c));
        return 0;
    }
    if (el_store_request_add(srv->store, me(c), to, msg, now, NULL, 0) < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_CONTACT_RESPOND, arg, &a, id, &rc))
        return rc;
    const char *peer = a.peer;
    if (a.accept) {
        rc = el_store_request_accept(srv->store, peer, me(c), el_now_ms(), NULL, 0);
        if (rc == EL_ERR_NOT_FOUND)
            return FAIL(EL_REJ_NOT_FOUND, "no pending request from that peer");
        if (rc < 0)
            return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
        if (ack_ok(c, id) < 0)
            return -1;
        contact_added(srv, peer, me(c));
        return 0;
    }
    rc = el_store_request_remove(srv->store, peer, me(c), NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_NOT_FOUND, "no pending request from that peer");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_CONTACT_REMOVE, arg, &a, id, &rc))
        return rc;
    const char *peer = a.peer;
    rc = el_store_contact_remove(srv->store, me(c), peer, NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_NOT_FOUND, "not a contact");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_BLOCK, arg, &a, id, &rc))
        return rc;
    const char *peer = a.peer;
    int was_visible = el_presence_visible(srv, me(c), peer);
    rc = el_store_block_add(srv->store, me(c), peer, el_now_ms(), NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_UNKNOWN_PEER, "no user with that peer id");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    if (ack_ok(c, id) < 0)
        return -1;
    if (was_visible)
        el_presence_pair_changed(srv, me(c), peer);
    return 0;
}

static int h_unblock(el_conn *c, json_t *arg, int64_t id)
{
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_UNBLOCK, arg, &a, id, &rc))
        return rc;
    rc = el_store_block_remove(c->srv->store, me(c), a.peer, NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_NOT_FOUND, "that peer is not blocked");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    if (ack_ok(c, id) < 0)
        return -1;
    if (el_presence_visible(c->srv, me(c), a.peer)) /* co-members: seen again */
        el_presence_pair_changed(c->srv, me(c), a.peer);
    return 0;
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_PROFILE_UPDATE, arg, &a, id, &rc))
        return rc;
    json_t *jn = a.name, *ja = a.avatar;
    unsigned fields = (jn ? EL_STORE_PROFILE_NAME : 0) | (ja ? EL_STORE_PROFILE_AVATAR : 0);
    if (el_store_user_set_profile(c->srv->store, me(c), fields, jn ? json_string_value(jn) : NULL,
                                  ja ? json_string_value(ja) : NULL, NULL, 0) < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    return ack_ok(c, id);
}

/* a may see b's profile: itself, a peer visible to it, or one who asks to
 * be its contact (so that it can decide). Asking does not show the asker
 * the other's profile: anyone could read anyone's that way, and a blocked
 * asker, whose request is dropped, would see the difference. */
static int may_see_profile(el_server *srv, const char *a, const char *b)
{
    return !strcmp(a, b) || el_presence_sees(srv, a, b) ||
           el_store_request_exists(srv->store, b, a, NULL, 0) == 1;
}

static int h_profile_get(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_PROFILE_GET, arg, &a, id, &rc))
        return rc;
    const char *peer = a.peer;
    if (!user_known(c, peer, id, &rc))
        return rc;
    if (!may_see_profile(srv, me(c), peer))
        return FAIL(EL_REJ_NOT_ALLOWED, "not a contact");
    el_store_user u;
    char *avatar = malloc(EL_STORE_AVATAR_MAX + 1);
    if (!avatar || el_store_user_get(srv->store, peer, &u, avatar, EL_STORE_AVATAR_MAX + 1, NULL, 0) < 0) {
        free(avatar);
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
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
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_GROUP_CREATE, arg, &a, id, &rc))
        return rc;
    const char *name = a.text, *const *ids = a.ids;
    int n = a.n;
    /* Only contacts can be added: co-members see each other's presence, so
     * a stranger must not be able to make himself visible by a group. */
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], me(c)) && el_store_contact_is(srv->store, me(c), ids[i], NULL, 0) != 1)
            return FAIL(EL_REJ_NOT_ALLOWED, "members must be your contacts");
    el_store_group g;
    memset(&g, 0, sizeof g);
    el_random_id(g.group_id, 22);
    rc = el_store_group_create(srv->store, g.group_id, name, me(c), a.ids, (size_t)n, el_now_ms(),
                               NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_UNKNOWN_PEER, "a member is not a known user");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
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

static bool listed(const char *peer, const char *const *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(ids[i], peer))
            return true;
    return false;
}

/* Whether peer is a member once the update's adds and removals are done;
 * *rc < 0 when the store could not say. */
static bool will_be_member(el_server *srv, const char *gid, const char *peer,
                           const char *const *add, int nadd, const char *const *rem, int nrem,
                           int *rc)
{
    *rc = 0;
    if (listed(peer, rem, nrem))
        return false;
    if (listed(peer, add, nadd))
        return true;
    *rc = el_store_group_is_member(srv->store, gid, peer, NULL, 0);
    return *rc == 1;
}

static int h_group_update(el_conn *c, json_t *arg, int64_t id)
{
    el_server *srv = c->srv;
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_GROUP_UPDATE, arg, &a, id, &rc))
        return rc;
    const char *gid = a.group_id, *admin = a.admin, *const *add = a.ids, *const *rem = a.rem;
    json_t *jname = a.name;
    int nadd = a.n, nrem = a.nrem;
    el_store_group g;
    rc = el_store_group_get(srv->store, gid, &g, NULL, 0);
    if (rc == EL_ERR_NOT_FOUND)
        return FAIL(EL_REJ_NOT_FOUND, "no such group");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    if (strcmp(g.admin, me(c)))
        return FAIL(EL_REJ_NOT_ALLOWED, "only the group's admin may change it");
    int64_t now = el_now_ms();
    for (int i = 0; i < nadd; i++) {
        rc = el_store_user_exists(srv->store, add[i], NULL, 0);
        if (rc == 0)
            return FAIL(EL_REJ_UNKNOWN_PEER, "a member is not a known user");
        if (rc < 0)
            return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
        if (el_store_contact_is(srv->store, me(c), add[i], NULL, 0) != 1)
            return FAIL(EL_REJ_NOT_ALLOWED, "members must be your contacts");
    }
    /* everything is checked before anything changes: a refused update
     * leaves the group as it was */
    if (admin && !will_be_member(srv, gid, admin, add, nadd, rem, nrem, &rc))
        return rc < 0 ? FAIL(EL_REJ_INTERNAL, EL_DB_FAILED)
                      : FAIL(EL_REJ_NOT_FOUND, "the new admin must be a member");
    if (jname && el_store_group_set_name(srv->store, gid, json_string_value(jname), NULL, 0) < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    for (int i = 0; i < nadd; i++)
        if (el_store_group_member_add(srv->store, gid, add[i], now, NULL, 0) < 0)
            return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    if (admin && el_store_group_set_admin(srv->store, gid, admin, NULL, 0) < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    for (int i = 0; i < nrem; i++) {
        if (!strcmp(rem[i], me(c)))
            continue; /* the admin leaves with group_leave */
        rc = el_store_group_member_remove(srv->store, gid, rem[i], NULL, 0);
        if (rc < 0 && rc != EL_ERR_NOT_FOUND)
            return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    }
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_GROUP_LEAVE, arg, &a, id, &rc))
        return rc;
    const char *gid = a.group_id;
    members_ctx m = {json_array()};
    el_store_group_list_members(srv->store, gid, add_member, &m, NULL, 0);
    rc = el_store_group_member_remove(srv->store, gid, me(c), NULL, 0);
    if (rc == EL_ERR_NOT_FOUND) {
        json_decref(m.arr);
        return FAIL(EL_REJ_NOT_FOUND, "not a member of that group");
    }
    if (rc < 0) {
        json_decref(m.arr);
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_ENVELOPE_SEND, arg, &a, id, &rc))
        return rc;
    const char *to = a.peer, *env = a.text;
    json_t *jttl = a.ttl;
    if (!user_known(c, to, id, &rc))
        return rc;
    char eid[23];
    el_random_id(eid, 22);
    /* visibility first: a block (which also ends the contact) then answers
     * as for any stranger; only a co-member's block is "ok, discarded" */
    if (!el_presence_visible(srv, me(c), to))
        return FAIL(EL_REJ_NOT_ALLOWED, "not a contact or group co-member");
    rc = el_store_block_is(srv->store, to, me(c), NULL, 0); /* fails closed */
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    if (rc == 1)
        return send_ack(c, id, json_pack("{s:b, s:s}", "ok", 1, "id", eid)); /* discarded */
    int64_t ttl = jttl ? json_integer_value(jttl) : srv->cfg->envelope_ttl;
    if (ttl > srv->cfg->envelope_ttl)
        ttl = srv->cfg->envelope_ttl;
    int64_t now = el_now_ms();
    rc = el_store_envelope_put(srv->store, eid, to, me(c), env, now, now + ttl * 1000,
                                   (unsigned)srv->cfg->queue_max, NULL, 0);
    if (rc == EL_ERR_QUOTA)
        return FAIL(EL_REJ_QUOTA, "the recipient's offline queue is full");
    if (rc < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
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
        e.blob_len = strlen(env);
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
    el_evargs a;
    int rc;
    if (refused(c, EL_EV_ENVELOPE_ACK, arg, &a, id, &rc))
        return rc;
    int n = el_store_envelope_delete(c->srv->store, me(c), a.ids, (size_t)a.n, NULL, 0);
    if (n < 0)
        return FAIL(EL_REJ_INTERNAL, EL_DB_FAILED);
    for (int i = 0; i < a.n && c->client->env_sent; i++)
        free(el_map_del(c->client->env_sent, a.ids[i]));
    if (send_ack(c, id, json_pack("{s:b, s:i}", "ok", 1, "deleted", n)) < 0)
        return -1;
    push_envelopes(c); /* room again for what waits */
    return 0;
}

/* ---- dispatch ---- */

/* Indexed by el_ev_handler. `relations`: the event may change who may relay
 * to whom, so the relay decisions cached per connection (relay.c) are
 * invalidated after it. */
static const struct {
    int needs_login;
    int relations;
    handler_fn fn;
} handlers[EL_EV__COUNT] = {
    [EL_EV_LOGIN] = {0, 0, h_login},
    [EL_EV_GET_CONTACTS] = {1, 0, h_get_contacts},
    [EL_EV_CONTACT_REQUEST] = {1, 1, h_contact_request},
    [EL_EV_CONTACT_RESPOND] = {1, 1, h_contact_respond},
    [EL_EV_CONTACT_REMOVE] = {1, 1, h_contact_remove},
    [EL_EV_BLOCK] = {1, 1, h_block},
    [EL_EV_UNBLOCK] = {1, 1, h_unblock},
    [EL_EV_GET_ICE_SERVERS] = {1, 0, h_get_ice_servers},
    [EL_EV_PROFILE_UPDATE] = {1, 0, h_profile_update},
    [EL_EV_PROFILE_GET] = {1, 0, h_profile_get},
    [EL_EV_PROFILE_DELETE] = {1, 0, h_profile_delete},
    [EL_EV_GROUP_CREATE] = {1, 1, h_group_create},
    [EL_EV_GROUP_LIST] = {1, 0, h_group_list},
    [EL_EV_GROUP_UPDATE] = {1, 1, h_group_update},
    [EL_EV_GROUP_LEAVE] = {1, 1, h_group_leave},
    [EL_EV_ENVELOPE_SEND] = {1, 0, h_envelope_send},
    [EL_EV_ENVELOPE_ACK] = {1, 0, h_envelope_ack},
};

int el_handlers_event(el_conn *c, const char *data, size_t len, int64_t id)
{
    static jsmntok_t tok[EL_EVCHECK_MAX_TOKENS]; /* one thread: one scratch array */
    el_json j;
    el_evcheck ev;
    /* an unknown name is answered after the kicked check, as a known one */
    if (el_evcheck_event(&j, data, len, tok, EL_EVCHECK_MAX_TOKENS, &ev) != 0 &&
        ev.reject != EL_REJ_UNKNOWN_EVENT)
        return FAIL(ev.reject, ev.message);
    el_client *cl = c->client;
    if (cl && cl->kicked)
        return 0; /* on its way out: nothing more is answered */
    if (ev.relay >= 0) {
        if (!cl || !cl->logged_in)
            return FAIL(EL_REJ_NOT_LOGGED_IN, "log in first");
        return el_relay(c, cl->peer_id, &j, &ev, id);
    }
    if (ev.handler < 0)
        return el_handlers_reply_error(c, id, ev.name, ev.reject, ev.message);
    if (!cl || (handlers[ev.handler].needs_login && !cl->logged_in))
        return el_handlers_reply_error(c, id, ev.name, EL_REJ_NOT_LOGGED_IN, "log in first");
    json_t *arg;
    if (el_evcheck_arg(&j, data, &arg, &ev) != 0)
        return el_handlers_reply_error(c, id, ev.name, ev.reject, ev.message);
    int rc = handlers[ev.handler].fn(c, arg, id);
    json_decref(arg);
    if (handlers[ev.handler].relations) {
        c->srv->relations_epoch++;
        el_cluster_relations_changed(c->srv->cluster); /* the other nodes' caches too */
    }
    return rc;
}
