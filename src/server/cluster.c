/* cluster.c - see cluster.h for the design (keys, channels, failure modes).
 *
 * Two hiredis connections: `cmd` for commands and publishes, `sub` for the
 * subscriptions (a subscribed connection takes no other commands). Both are
 * only ever freed from the tick timer or el_cluster_close(), never inside a
 * hiredis callback (hiredis frees a context itself after its disconnect
 * callback; we only forget the pointer there). */
#include "server/cluster.h"

#include "server/presence.h"
#include "server/server_int.h"

#include "base/enc.h"
#include "base/log.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libuv.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEARTBEAT_TTL_MS 3000
#define TICK_MS 1000
#define CONNECT_TIMEOUT_MS 5000
#define STALL_MS (2 * HEARTBEAT_TTL_MS) /* no heartbeat reply this long: reconnect */
#define BACKOFF_MAX_MS 5000
#define MAX_MESSAGE (256 * 1024) /* relay payloads are at most max-event-size */

typedef struct rnode {
    char id[EL_CLUSTER_NODE_ID_MAX + 1];
    int refs; /* mirror entries naming this node */
} rnode;

typedef struct rpeer {
    char peer[EL_PEER_ID_CHARS + 1];
    rnode *node;
    int touched; /* changed by a presence message during a resync */
} rpeer;

struct el_cluster {
    el_server *srv;
    uv_loop_t *loop;
    char host[256];
    int port, db;
    char node_id[EL_CLUSTER_NODE_ID_MAX + 1];
    char ch_mine[EL_CLUSTER_NODE_ID_MAX + 32];
    char key_hb[EL_CLUSTER_NODE_ID_MAX + 32];
    char key_set[EL_CLUSTER_NODE_ID_MAX + 32];
    redisAsyncContext *cmd, *sub;
    int cmd_up;       /* cmd connected */
    int subscribed;   /* subscription confirmations received on sub */
    int up;           /* both ready and registered: the cluster works */
    int syncing;      /* the HGETALL of a resync is outstanding */
    int hb_primed;    /* a heartbeat went through since the last resync */
    int64_t hb_reply_ms; /* loop time of the last heartbeat reply */
    int stopping;
    int ever_up, down_logged;
    int64_t connect_started_ms, next_try_ms, backoff_ms;
    uv_timer_t tick;
    int tick_live;
    el_map *remote; /* peer_id -> rpeer, peers on other nodes */
    el_map *nodes;  /* node id -> rnode, the nodes of the mirror */
    uint64_t published, received, reconnects, dead_nodes, publish_failed;
};

static const char CH_PRESENCE[] = "echolink:presence";
static const char KEY_PEERS[] = "echolink:peers";

/* KEYS: peers hash, my set. ARGV: peer, me, channel, message. */
static const char LUA_LEAVE[] =
    "redis.call('SREM', KEYS[2], ARGV[1]) "
    "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
    "  redis.call('HDEL', KEYS[1], ARGV[1]) "
    "  redis.call('PUBLISH', ARGV[3], ARGV[4]) "
    "  return 1 "
    "end "
    "return 0";

/* KEYS: my heartbeat. ARGV: TTL ms. Returns 1 if the key still existed. */
static const char LUA_HEARTBEAT[] =
    "local had = redis.call('EXISTS', KEYS[1]) "
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) "
    "return had";

/* KEYS: peers hash, the dead node's set, its heartbeat. ARGV: dead node. */
static const char LUA_REAP[] =
    "if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end "
    "local ps = redis.call('SMEMBERS', KEYS[2]) "
    "for _, p in ipairs(ps) do "
    "  if redis.call('HGET', KEYS[1], p) == ARGV[1] then redis.call('HDEL', KEYS[1], p) end "
    "end "
    "redis.call('DEL', KEYS[2]) "
    "return #ps";

/* Re-registration after a (re)connect. KEYS: peers hash, my set. ARGV: me,
 * channel, then the peers this node serves now. Peers that left while Redis
 * was away are removed and announced offline; the current ones are written
 * and announced online (nodes that resynced before us learn of them). */
static const char LUA_RESET[] =
    "local keep = {} "
    "for i = 3, #ARGV do keep[ARGV[i]] = true end "
    "for _, p in ipairs(redis.call('SMEMBERS', KEYS[2])) do "
    "  if not keep[p] then "
    "    redis.call('SREM', KEYS[2], p) "
    "    if redis.call('HGET', KEYS[1], p) == ARGV[1] then "
    "      redis.call('HDEL', KEYS[1], p) "
    "      redis.call('PUBLISH', ARGV[2], cjson.encode({t='presence', peer=p, online=false, node=ARGV[1]})) "
    "    end "
    "  end "
    "end "
    "for i = 3, #ARGV do "
    "  redis.call('SADD', KEYS[2], ARGV[i]) "
    "  redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) "
    "  redis.call('PUBLISH', ARGV[2], cjson.encode({t='presence', peer=ARGV[i], online=true, node=ARGV[1]})) "
    "end "
    "return #ARGV - 2";

static int valid_node_id(const char *s)
{
    return el_b64url_token(s, EL_CLUSTER_NODE_ID_MAX);
}

/* redis://host[:port][/db] */
static int parse_url(el_cluster *cl, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "redis://", 8) != 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "--redis must be redis://host:port[/db]");
    const char *h = url + 8, *end = h + strcspn(h, ":/");
    if (end == h || (size_t)(end - h) >= sizeof cl->host)
        return el_seterr(err, errlen, EL_ERR_INVALID, "--redis: missing or too long host");
    memcpy(cl->host, h, (size_t)(end - h));
    cl->host[end - h] = '\0';
    cl->port = 6379;
    cl->db = 0;
    char *e;
    if (*end == ':') {
        long p = strtol(end + 1, &e, 10);
        if (e == end + 1 || p < 1 || p > 65535 || (*e && *e != '/'))
            return el_seterr(err, errlen, EL_ERR_INVALID, "--redis: bad port");
        cl->port = (int)p;
        end = e;
    }
    if (*end == '/' && end[1]) {
        long d = strtol(end + 1, &e, 10);
        if (e == end + 1 || *e || d < 0 || d > 100000)
            return el_seterr(err, errlen, EL_ERR_INVALID, "--redis: bad database number");
        cl->db = (int)d;
    } else if (*end && strcmp(end, "/")) {
        return el_seterr(err, errlen, EL_ERR_INVALID, "--redis must be redis://host:port[/db]");
    }
    return 0;
}

el_cluster *el_cluster_new(el_server *srv, uv_loop_t *loop, const char *url, const char *node_id,
                           char *err, size_t errlen)
{
    el_cluster *cl = calloc(1, sizeof *cl);
    if (!cl) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cl->srv = srv;
    cl->loop = loop;
    cl->remote = el_map_new();
    cl->nodes = el_map_new();
    if (!cl->remote || !cl->nodes) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (parse_url(cl, url, err, errlen) < 0)
        goto fail;
    if (node_id && !valid_node_id(node_id)) {
        el_seterr(err, errlen, EL_ERR_INVALID, "--node-id must be 1-64 of [A-Za-z0-9_-]");
        goto fail;
    }
    if (node_id)
        snprintf(cl->node_id, sizeof cl->node_id, "%s", node_id);
    else
        el_random_id(cl->node_id, 12);
    snprintf(cl->ch_mine, sizeof cl->ch_mine, "echolink:to:%s", cl->node_id);
    snprintf(cl->key_hb, sizeof cl->key_hb, "echolink:node:%s", cl->node_id);
    snprintf(cl->key_set, sizeof cl->key_set, "echolink:node:%s:peers", cl->node_id);
    cl->backoff_ms = TICK_MS;
    return cl;
fail:
    el_cluster_free(cl);
    return NULL;
}

/* ---- the mirror of remote presence ---- */

static rpeer *mirror_put(el_cluster *cl, const char *peer, const char *node, int *added)
{
    *added = 0;
    rnode *n = el_map_get(cl->nodes, node);
    if (!n) {
        n = calloc(1, sizeof *n);
        if (!n)
            return NULL;
        snprintf(n->id, sizeof n->id, "%s", node);
        if (el_map_put(cl->nodes, n->id, n) < 0) {
            free(n);
            return NULL;
        }
    }
    rpeer *p = el_map_get(cl->remote, peer);
    if (!p) {
        p = calloc(1, sizeof *p);
        if (p)
            snprintf(p->peer, sizeof p->peer, "%s", peer);
        if (!p || el_map_put(cl->remote, p->peer, p) < 0) {
            free(p);
            if (!n->refs) { /* created above for this peer only */
                el_map_del(cl->nodes, n->id);
                free(n);
            }
            return NULL;
        }
        *added = 1;
    } else if (p->node == n) {
        return p;
    } else if (--p->node->refs == 0) {
        el_map_del(cl->nodes, p->node->id);
        free(p->node);
    }
    p->node = n;
    n->refs++;
    return p;
}

static void mirror_del(el_cluster *cl, const char *peer)
{
    rpeer *p = el_map_del(cl->remote, peer);
    if (!p)
        return;
    if (--p->node->refs == 0) {
        el_map_del(cl->nodes, p->node->id);
        free(p->node);
    }
    free(p);
}

/* ---- commands ---- */

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        EL_WARN("redis: %s: %s", priv ? (const char *)priv : "command", reply->str);
}

/* Queues a command on cmd; returns -1 when not connected. */
static int command(el_cluster *cl, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                   const size_t *lens)
{
    if (!cl->cmd || !cl->cmd_up)
        return -1;
    if (redisAsyncCommandArgv(cl->cmd, fn, priv, argc, argv, lens) != REDIS_OK) {
        EL_WARN("redis: cannot queue %s", argv[0]);
        return -1;
    }
    return 0;
}

static int publish(el_cluster *cl, const char *channel, const char *msg, size_t len)
{
    const char *argv[] = {"PUBLISH", channel, msg};
    size_t lens[] = {7, strlen(channel), len};
    if (command(cl, on_reply, "PUBLISH", 3, argv, lens) < 0) {
        cl->publish_failed++;
        return -1;
    }
    cl->published++;
    return 0;
}

static int presence_msg(char *out, size_t cap, const char *peer, int online, const char *node)
{
    return snprintf(out, cap, "{\"t\":\"presence\",\"peer\":\"%s\",\"online\":%s,\"node\":\"%s\"}",
                    peer, online ? "true" : "false", node);
}

static void resync(el_cluster *cl);

/* The heartbeat's reply says whether the key still existed. It did not,
 * while we were up: our loop stalled past the TTL (or Redis lost its data),
 * the other nodes declared us dead and reaped our peers: register again. */
static void on_heartbeat(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    el_cluster *cl = priv;
    redisReply *reply = r;
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        EL_WARN("redis: heartbeat: %s", reply->str);
        return;
    }
    cl->hb_reply_ms = (int64_t)uv_now(cl->loop);
    int had = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    if (!cl->hb_primed) {
        cl->hb_primed = 1; /* the first one after a (re)connect: resync is under way */
    } else if (!had && cl->up && !cl->stopping) {
        EL_WARN("cluster: node %s's heartbeat had expired: registering its peers again", cl->node_id);
        resync(cl);
    }
}

static void heartbeat(el_cluster *cl)
{
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", HEARTBEAT_TTL_MS);
    const char *argv[] = {"EVAL", LUA_HEARTBEAT, "1", cl->key_hb, ttl};
    size_t lens[] = {4, sizeof LUA_HEARTBEAT - 1, 1, strlen(cl->key_hb), strlen(ttl)};
    command(cl, on_heartbeat, cl, 5, argv, lens);
}

/* ---- incoming messages ---- */

static el_conn *local_session(el_cluster *cl, const char *peer)
{
    el_conn *c = el_map_get(cl->srv->peers, peer);
    return c && c->client && c->client->logged_in ? c : NULL;
}

static void on_presence(el_cluster *cl, const char *peer, int online, const char *node)
{
    if (!strcmp(node, cl->node_id))
        return;
    el_conn *mine = local_session(cl, peer);
    if (online) {
        if (mine) /* logged in again elsewhere: as on one node, the old session goes */
            el_handlers_kick(mine, "replaced");
        int added;
        rpeer *p = mirror_put(cl, peer, node, &added);
        if (!p) {
            EL_WARN("cluster: out of memory for the presence of %s", peer);
            return;
        }
        if (cl->syncing)
            p->touched = 1;
        if (added)
            el_presence_remote(cl->srv, peer, 1);
        return;
    }
    rpeer *p = el_map_get(cl->remote, peer);
    if (!p || strcmp(p->node->id, node))
        return; /* already moved on: a late offline from its old node */
    mirror_del(cl, peer);
    el_presence_remote(cl->srv, peer, 0);
}

/* {"t":"envelope","to":P,"id":ID}: push that stored envelope. */
static void on_envelope(el_cluster *cl, json_t *m)
{
    const char *to = json_string_value(json_object_get(m, "to"));
    const char *id = json_string_value(json_object_get(m, "id"));
    el_conn *c = to ? local_session(cl, to) : NULL;
    if (c && id)
        el_handlers_push_envelope(c, id);
}

/* A relay from another node for a target that is not reading: as on one
 * node (relay.c), the target must not be dropped for others' traffic. The
 * sender's node has acknowledged it already, so the sender (the payload's
 * first member, stamped by its node) gets an `error` event instead. */
static void refuse_relay(el_cluster *cl, el_conn *target, const char *event, const char *payload,
                         size_t len)
{
    static const char from_key[] = "{\"from\":\"";
    cl->srv->metrics.rejected[EL_REJ_RATE_LIMITED]++;
    if (len < sizeof from_key - 1 + EL_PEER_ID_CHARS || memcmp(payload, from_key, sizeof from_key - 1))
        return;
    char from[EL_PEER_ID_CHARS + 1];
    memcpy(from, payload + sizeof from_key - 1, EL_PEER_ID_CHARS);
    from[EL_PEER_ID_CHARS] = '\0';
    EL_DEBUG("cluster: %s to %s dropped: %zu bytes wait for it", event, target->client->peer_id,
             target->q_bytes);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "error", el_reject_code(EL_REJ_RATE_LIMITED),
                          "message", "the peer is not reading fast enough; the event was dropped",
                          "event", event, "to", target->client->peer_id);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        el_cluster_emit(cl, from, "error", s);
    free(s);
    json_decref(o);
}

/* {"t":"relay"|"event","to":"<peer>","event":"<name>","payload":<json>}, as
 * delivery_msg() writes it. Read by position, not parsed: the payload goes
 * to the socket byte for byte, as relay.c copies a local relay through (a
 * JSON round trip could change numbers or escapes). Returns 0 if handled. */
static int on_delivery(el_cluster *cl, const char *data, size_t len)
{
    static const char p1[] = "\",\"to\":\"", p2[] = "\",\"event\":\"", p3[] = "\",\"payload\":";
    size_t at = 11; /* {"t":"relay or {"t":"event */
    if (len < at || (memcmp(data, "{\"t\":\"relay", at) && memcmp(data, "{\"t\":\"event", at)))
        return -1;
    if (len < at + sizeof p1 - 1 + EL_PEER_ID_CHARS || memcmp(data + at, p1, sizeof p1 - 1))
        return -1;
    at += sizeof p1 - 1;
    char to[EL_PEER_ID_CHARS + 1];
    memcpy(to, data + at, EL_PEER_ID_CHARS);
    to[EL_PEER_ID_CHARS] = '\0';
    at += EL_PEER_ID_CHARS;
    if (len < at + sizeof p2 - 1 || memcmp(data + at, p2, sizeof p2 - 1))
        return -1;
    at += sizeof p2 - 1;
    char event[48];
    size_t n = 0;
    while (at + n < len && n < sizeof event - 1 &&
           ((data[at + n] >= 'a' && data[at + n] <= 'z') || data[at + n] == '_'))
        n++;
    if (n == 0 || at + n >= len || data[at + n] != '"')
        return -1;
    memcpy(event, data + at, n);
    event[n] = '\0';
    at += n;
    if (len < at + sizeof p3 - 1 + 2 || memcmp(data + at, p3, sizeof p3 - 1) || data[len - 1] != '}')
        return -1;
    at += sizeof p3 - 1;
    el_conn *c = local_session(cl, to);
    if (!c) /* it left meanwhile: as a local peer that just closed */
        return 0;
    if (!memcmp(data, "{\"t\":\"relay", 11) && c->q_bytes + (len - 1 - at) > EL_RELAY_TARGET_BACKLOG) {
        refuse_relay(cl, c, event, data + at, len - 1 - at);
        return 0;
    }
    el_socket_emit(c, event, data + at, len - 1 - at);
    return 0;
}

static void on_message(el_cluster *cl, const char *data, size_t len)
{
    cl->received++;
    if (on_delivery(cl, data, len) == 0)
        return;
    json_error_t jerr;
    json_t *m = json_loadb(data, len, 0, &jerr);
    const char *t = json_string_value(json_object_get(m, "t"));
    if (!t) {
        EL_WARN("cluster: ignoring a malformed message (%s)", m ? "no type" : jerr.text);
    } else if (!strcmp(t, "presence")) {
        const char *peer = json_string_value(json_object_get(m, "peer"));
        const char *node = json_string_value(json_object_get(m, "node"));
        json_t *online = json_object_get(m, "online");
        if (peer && node && json_is_boolean(online) && strlen(peer) == EL_PEER_ID_CHARS &&
            valid_node_id(node))
            on_presence(cl, peer, json_is_true(online), node);
    } else if (!strcmp(t, "relations")) {
        cl->srv->relations_epoch++;
    } else if (!strcmp(t, "envelope")) {
        on_envelope(cl, m);
    } else {
        EL_WARN("cluster: ignoring a message of type '%.32s'", t);
    }
    json_decref(m);
}

/* ---- resync after a (re)connect ---- */

typedef struct {
    const char **argv;
    size_t *lens;
    int n;
} argv_build;

static void add_local(const char *key, void *value, void *user)
{
    (void)value;
    argv_build *b = user;
    b->argv[b->n] = key;
    b->lens[b->n++] = strlen(key);
}

static void clear_touched(const char *key, void *value, void *user)
{
    (void)key;
    (void)user;
    ((rpeer *)value)->touched = 0;
}

typedef struct {
    el_cluster *cl;
    json_t *seen; /* object: peer -> node, the snapshot */
    char (*gone)[EL_PEER_ID_CHARS + 1];
    size_t ngone, cap;
} snap_ctx;

static void find_gone(const char *key, void *value, void *user)
{
    snap_ctx *s = user;
    rpeer *p = value;
    if (p->touched || json_object_get(s->seen, key))
        return;
    if (s->ngone == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        void *n = realloc(s->gone, ncap * sizeof *s->gone);
        if (!n)
            return;
        s->gone = n;
        s->cap = ncap;
    }
    memcpy(s->gone[s->ngone++], key, EL_PEER_ID_CHARS + 1);
}

/* HGETALL echolink:peers: what changed while we were away becomes
 * user_connected / user_disconnected; entries a presence message touched
 * during the fetch are newer than the snapshot and kept. */
static void on_snapshot(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    el_cluster *cl = priv;
    redisReply *reply = r;
    cl->syncing = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply)
            EL_WARN("redis: HGETALL %s failed", KEY_PEERS);
        return;
    }
    snap_ctx s = {cl, json_object(), NULL, 0, 0};
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            k->len != EL_PEER_ID_CHARS || !valid_node_id(v->str) || !strcmp(v->str, cl->node_id) ||
            local_session(cl, k->str))
            continue;
        json_object_set_new(s.seen, k->str, json_string(v->str));
        rpeer *p = el_map_get(cl->remote, k->str);
        if (p && p->touched)
            continue;
        int added;
        if (mirror_put(cl, k->str, v->str, &added) && added)
            el_presence_remote(cl->srv, k->str, 1);
    }
    el_map_each(cl->remote, find_gone, &s);
    for (size_t i = 0; i < s.ngone; i++) {
        mirror_del(cl, s.gone[i]);
        el_presence_remote(cl->srv, s.gone[i], 0);
    }
    el_map_each(cl->remote, clear_touched, NULL);
    EL_INFO("cluster: node %s in sync: %zu peers on other nodes, %zu nodes", cl->node_id,
            el_map_count(cl->remote), el_map_count(cl->nodes));
    json_decref(s.seen);
    free(s.gone);
}

static void resync(el_cluster *cl)
{
    /* relation changes other nodes published while we were not subscribed
     * are lost: no relay decision cached before may stand (relay.c) */
    cl->srv->relations_epoch++;
    cl->hb_primed = 0;
    cl->hb_reply_ms = (int64_t)uv_now(cl->loop);
    heartbeat(cl);
    size_t n = el_map_count(cl->srv->peers);
    argv_build b = {calloc(n + 7, sizeof *b.argv), calloc(n + 7, sizeof *b.lens), 0};
    if (b.argv && b.lens) {
        const char *head[] = {"EVAL", LUA_RESET, "2", KEY_PEERS, cl->key_set, cl->node_id, CH_PRESENCE};
        for (; b.n < 7; b.n++) {
            b.argv[b.n] = head[b.n];
            b.lens[b.n] = strlen(head[b.n]);
        }
        el_map_each(cl->srv->peers, add_local, &b);
        command(cl, on_reply, "re-registration", b.n, b.argv, b.lens);
    } else {
        EL_WARN("cluster: out of memory re-registering %zu peers", n);
    }
    free(b.argv);
    free(b.lens);
    cl->syncing = 1;
    const char *argv[] = {"HGETALL", KEY_PEERS};
    size_t lens[] = {7, sizeof KEY_PEERS - 1};
    if (command(cl, on_snapshot, cl, 2, argv, lens) < 0)
        cl->syncing = 0;
}

static void check_ready(el_cluster *cl)
{
    if (cl->up || !cl->cmd_up || cl->subscribed < 2 || cl->stopping)
        return;
    cl->up = 1;
    cl->backoff_ms = TICK_MS;
    if (cl->ever_up)
        cl->reconnects++;
    cl->ever_up = 1;
    cl->down_logged = 0;
    EL_INFO("cluster: node %s connected to redis %s:%d/%d", cl->node_id, cl->host, cl->port, cl->db);
    resync(cl);
}

/* ---- connections ---- */

static void went_down(el_cluster *cl, const char *why)
{
    cl->up = 0;
    cl->syncing = 0;
    if (!cl->down_logged && !cl->stopping) {
        EL_WARN("cluster: redis %s:%d unavailable (%s): serving local clients only, reconnecting",
                cl->host, cl->port, why);
        cl->down_logged = 1;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    el_cluster *cl = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees ac after this callback */
        if (ac == cl->cmd)
            cl->cmd = NULL;
        if (ac == cl->sub)
            cl->sub = NULL;
        went_down(cl, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    if (ac == cl->cmd) {
        cl->cmd_up = 1;
        check_ready(cl);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    el_cluster *cl = ac->data;
    (void)status;
    if (ac == cl->cmd) {
        cl->cmd = NULL;
        cl->cmd_up = 0;
    }
    if (ac == cl->sub) {
        cl->sub = NULL;
        cl->subscribed = 0;
    }
    went_down(cl, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void on_sub(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    el_cluster *cl = priv;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (!strcmp(kind, "subscribe")) {
        cl->subscribed++;
        check_ready(cl);
    } else if (!strcmp(kind, "message") && reply->element[2]->type == REDIS_REPLY_STRING) {
        if (reply->element[2]->len <= MAX_MESSAGE)
            on_message(cl, reply->element[2]->str, reply->element[2]->len);
    }
}

static redisAsyncContext *open_one(el_cluster *cl)
{
    redisAsyncContext *ac = redisAsyncConnect(cl->host, cl->port);
    if (!ac)
        return NULL;
    if (ac->err) {
        EL_DEBUG("cluster: redis connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = cl;
    if (redisLibuvAttach(ac, cl->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* Frees what is left of a half-open pair (outside any hiredis callback). */
static void drop_connections(el_cluster *cl)
{
    redisAsyncContext *c = cl->cmd, *s = cl->sub;
    cl->cmd = cl->sub = NULL;
    cl->cmd_up = 0;
    cl->subscribed = 0;
    if (c)
        redisAsyncFree(c);
    if (s)
        redisAsyncFree(s);
}

static void connect_both(el_cluster *cl)
{
    cl->connect_started_ms = uv_now(cl->loop);
    cl->cmd = open_one(cl);
    cl->sub = cl->cmd ? open_one(cl) : NULL;
    if (!cl->cmd || !cl->sub) {
        drop_connections(cl);
        went_down(cl, "cannot connect");
        return;
    }
    char db[16];
    snprintf(db, sizeof db, "%d", cl->db);
    if (cl->db)
        redisAsyncCommand(cl->cmd, on_reply, "SELECT", "SELECT %s", db);
    redisAsyncCommand(cl->sub, on_sub, cl, "SUBSCRIBE %s %s", CH_PRESENCE, cl->ch_mine);
}

/* ---- the node-death check ---- */

typedef struct {
    el_cluster *cl;
    size_t n;
    char ids[][EL_CLUSTER_NODE_ID_MAX + 1];
} check_ctx;

typedef struct {
    check_ctx *c;
    const char **argv;
    size_t *lens;
    char (*keys)[EL_CLUSTER_NODE_ID_MAX + 32];
} check_build;

static void add_node(const char *key, void *value, void *user)
{
    (void)value;
    check_build *b = user;
    size_t i = b->c->n++;
    snprintf(b->c->ids[i], sizeof b->c->ids[i], "%s", key);
    snprintf(b->keys[i], sizeof b->keys[i], "echolink:node:%s", key);
    b->argv[i + 1] = b->keys[i];
    b->lens[i + 1] = strlen(b->keys[i]);
}

typedef struct {
    const char *node;
    char (*ids)[EL_PEER_ID_CHARS + 1];
    size_t n, cap;
} dead_ctx;

static void collect_dead(const char *key, void *value, void *user)
{
    dead_ctx *d = user;
    rpeer *p = value;
    if (strcmp(p->node->id, d->node))
        return;
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 64;
        void *n = realloc(d->ids, ncap * sizeof *d->ids);
        if (!n)
            return;
        d->ids = n;
        d->cap = ncap;
    }
    memcpy(d->ids[d->n++], key, EL_PEER_ID_CHARS + 1);
}

static void node_dead(el_cluster *cl, const char *node)
{
    char id[EL_CLUSTER_NODE_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", node); /* node may point into an rnode freed below */
    dead_ctx d = {id, NULL, 0, 0};
    el_map_each(cl->remote, collect_dead, &d);
    EL_WARN("cluster: node %s is gone (no heartbeat): %zu peers leave", id, d.n);
    cl->dead_nodes++;
    for (size_t i = 0; i < d.n; i++) {
        mirror_del(cl, d.ids[i]);
        el_presence_remote(cl->srv, d.ids[i], 0);
    }
    free(d.ids);
    char set[EL_CLUSTER_NODE_ID_MAX + 32], hb[EL_CLUSTER_NODE_ID_MAX + 32];
    snprintf(set, sizeof set, "echolink:node:%s:peers", id);
    snprintf(hb, sizeof hb, "echolink:node:%s", id);
    const char *argv[] = {"EVAL", LUA_REAP, "3", KEY_PEERS, set, hb, id};
    size_t lens[7];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    command(cl, on_reply, "reaping a dead node", 7, argv, lens);
}

static void on_heartbeats(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    check_ctx *c = priv;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == c->n && !c->cl->syncing) {
        for (size_t i = 0; i < c->n; i++)
            if (reply->element[i]->type == REDIS_REPLY_NIL)
                node_dead(c->cl, c->ids[i]);
    }
    free(c);
}

static void check_nodes(el_cluster *cl)
{
    size_t n = el_map_count(cl->nodes);
    if (n == 0)
        return;
    check_build b;
    b.c = malloc(sizeof *b.c + n * sizeof b.c->ids[0]);
    b.argv = calloc(n + 1, sizeof *b.argv);
    b.lens = calloc(n + 1, sizeof *b.lens);
    b.keys = calloc(n, sizeof *b.keys);
    if (b.c && b.argv && b.lens && b.keys) {
        b.c->cl = cl;
        b.c->n = 0;
        b.argv[0] = "MGET";
        b.lens[0] = 4;
        el_map_each(cl->nodes, add_node, &b);
        if (command(cl, on_heartbeats, b.c, (int)n + 1, b.argv, b.lens) == 0)
            b.c = NULL; /* the callback frees it */
    }
    free(b.c);
    free(b.argv);
    free(b.lens);
    free(b.keys);
}

static void tick_cb(uv_timer_t *t)
{
    el_cluster *cl = t->data;
    if (cl->stopping)
        return;
    int64_t now = (int64_t)uv_now(cl->loop);
    if (cl->up && now - cl->hb_reply_ms > STALL_MS) {
        /* connected but silent (Redis stopped, a black-holed link): commands
         * would pile up in hiredis's buffer without bound; start over */
        went_down(cl, "no reply from redis");
        drop_connections(cl);
    }
    if (cl->up) {
        heartbeat(cl);
        check_nodes(cl);
        return;
    }
    if (cl->cmd && cl->sub) {
        if (now - cl->connect_started_ms < CONNECT_TIMEOUT_MS)
            return; /* still connecting or subscribing */
        went_down(cl, "connect timeout");
    }
    drop_connections(cl);
    if (now < cl->next_try_ms)
        return;
    cl->next_try_ms = now + cl->backoff_ms;
    cl->backoff_ms = cl->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : cl->backoff_ms * 2;
    connect_both(cl);
}

void el_cluster_start(el_cluster *cl)
{
    if (!cl)
        return;
    uv_timer_init(cl->loop, &cl->tick);
    cl->tick.data = cl;
    cl->tick_live = 1;
    uv_timer_start(&cl->tick, tick_cb, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&cl->tick);
    EL_INFO("cluster: node %s, redis %s:%d/%d", cl->node_id, cl->host, cl->port, cl->db);
    cl->next_try_ms = (int64_t)uv_now(cl->loop) + cl->backoff_ms;
    connect_both(cl);
}

void el_cluster_shutdown(el_cluster *cl)
{
    if (!cl || cl->stopping)
        return;
    /* the sessions' logouts were queued just before: then the heartbeat
     * goes, so other nodes reap whatever a lost reply left behind */
    const char *argv[] = {"DEL", cl->key_hb};
    size_t lens[] = {3, strlen(cl->key_hb)};
    command(cl, on_reply, "DEL heartbeat", 2, argv, lens);
    cl->stopping = 1;
}

void el_cluster_close(el_cluster *cl)
{
    if (!cl)
        return;
    cl->stopping = 1;
    cl->up = 0;
    drop_connections(cl);
    if (cl->tick_live && !uv_is_closing((uv_handle_t *)&cl->tick))
        uv_close((uv_handle_t *)&cl->tick, NULL);
}

void el_cluster_free(el_cluster *cl)
{
    if (!cl)
        return;
    drop_connections(cl); /* when the loop never ran el_cluster_close */
    el_map_free_with_values(cl->remote);
    el_map_free_with_values(cl->nodes);
    free(cl);
}

/* ---- the server's hooks ---- */

void el_cluster_peer_online(el_cluster *cl, const char *peer_id)
{
    if (!cl)
        return;
    mirror_del(cl, peer_id); /* served here now */
    if (!cl->up)
        return; /* the re-registration at reconnect writes it */
    const char *hset[] = {"HSET", KEY_PEERS, peer_id, cl->node_id};
    size_t hl[] = {4, sizeof KEY_PEERS - 1, strlen(peer_id), strlen(cl->node_id)};
    command(cl, on_reply, "HSET", 4, hset, hl);
    const char *sadd[] = {"SADD", cl->key_set, peer_id};
    size_t sl[] = {4, strlen(cl->key_set), strlen(peer_id)};
    command(cl, on_reply, "SADD", 3, sadd, sl);
    char msg[256];
    int n = presence_msg(msg, sizeof msg, peer_id, 1, cl->node_id);
    publish(cl, CH_PRESENCE, msg, (size_t)n);
    /* Write now, not at the next poll phase: the login ack goes out at the
     * end of this loop turn, and a client told "logged in" may at once make
     * another node look it up; the registration must be in Redis first.
     * (A non-blocking write; what the socket does not take waits for
     * writability as usual. Never called from a hiredis callback.) */
    if (cl->cmd)
        redisAsyncHandleWrite(cl->cmd);
}

void el_cluster_peer_offline(el_cluster *cl, const char *peer_id)
{
    if (!cl || !cl->cmd_up)
        return;
    char msg[256];
    presence_msg(msg, sizeof msg, peer_id, 0, cl->node_id);
    const char *argv[] = {"EVAL", LUA_LEAVE, "2", KEY_PEERS, cl->key_set, peer_id, cl->node_id,
                          CH_PRESENCE, msg};
    size_t lens[9];
    for (int i = 0; i < 9; i++)
        lens[i] = strlen(argv[i]);
    command(cl, on_reply, "logout", 9, argv, lens);
}

const char *el_cluster_node_of(const el_cluster *cl, const char *peer_id)
{
    if (!cl || !cl->up)
        return NULL;
    rpeer *p = el_map_get(cl->remote, peer_id);
    return p ? p->node->id : NULL;
}

typedef struct {
    void (*fn)(const char *peer_id, void *user);
    void *user;
} each_ctx;

static void each_remote(const char *key, void *value, void *user)
{
    (void)value;
    each_ctx *e = user;
    e->fn(key, e->user);
}

void el_cluster_each_remote(const el_cluster *cl, void (*fn)(const char *peer_id, void *user),
                            void *user)
{
    if (!cl || !cl->up)
        return;
    each_ctx e = {fn, user};
    el_map_each(cl->remote, each_remote, &e);
}

/* A message for peer `to` whose node the mirror does not know (yet): the
 * presence message of a login a moment ago may still be on its way, so the
 * hash is asked before giving up. Only for the rare events (contact notices,
 * envelopes); the relay hot path answers "offline" instead of waiting. */
typedef struct {
    el_cluster *cl;
    size_t len;
    char msg[];
} lookup_ctx;

static void on_lookup(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    lookup_ctx *l = priv;
    redisReply *reply = r;
    el_cluster *cl = l->cl;
    if (reply && reply->type == REDIS_REPLY_STRING && valid_node_id(reply->str) &&
        strcmp(reply->str, cl->node_id) && cl->up) {
        char channel[EL_CLUSTER_NODE_ID_MAX + 32];
        snprintf(channel, sizeof channel, "echolink:to:%s", reply->str);
        publish(cl, channel, l->msg, l->len);
    }
    free(l);
}

/* Publishes msg to the node serving `to`. lookup: ask Redis when the mirror
 * does not know the peer. Returns 0 when handed to Redis. */
static int route(el_cluster *cl, const char *to, const char *msg, size_t len, int lookup)
{
    const char *node = el_cluster_node_of(cl, to);
    if (node) {
        char channel[EL_CLUSTER_NODE_ID_MAX + 32];
        snprintf(channel, sizeof channel, "echolink:to:%s", node);
        return publish(cl, channel, msg, len);
    }
    if (!lookup || !cl->up || el_map_get(cl->srv->peers, to))
        return -1;
    lookup_ctx *l = malloc(sizeof *l + len);
    if (!l)
        return -1;
    l->cl = cl;
    l->len = len;
    memcpy(l->msg, msg, len);
    const char *argv[] = {"HGET", KEY_PEERS, to};
    size_t lens[] = {4, sizeof KEY_PEERS - 1, strlen(to)};
    if (command(cl, on_lookup, l, 3, argv, lens) < 0) {
        free(l);
        return -1;
    }
    return 0;
}

/* {"t":"relay"|"event","to":P,"event":E,"payload":<payload>} in a new buffer */
static char *delivery_msg(const char *to, int relay, const char *event, const char *payload,
                          size_t len, size_t *outlen)
{
    char head[256];
    int h = snprintf(head, sizeof head, "{\"t\":\"%s\",\"to\":\"%s\",\"event\":\"%s\",\"payload\":",
                     relay ? "relay" : "event", to, event);
    if (h < 0 || (size_t)h >= sizeof head || len > MAX_MESSAGE)
        return NULL;
    char *msg = malloc((size_t)h + len + 1);
    if (!msg)
        return NULL;
    memcpy(msg, head, (size_t)h);
    memcpy(msg + h, payload, len);
    msg[(size_t)h + len] = '}';
    *outlen = (size_t)h + len + 1;
    return msg;
}

int el_cluster_send(el_cluster *cl, const char *node, const char *to, int relay, const char *event,
                    const char *payload, size_t len)
{
    if (!cl || !cl->up || !node)
        return -1;
    size_t n;
    char *msg = delivery_msg(to, relay, event, payload, len, &n);
    if (!msg)
        return -1;
    char channel[EL_CLUSTER_NODE_ID_MAX + 32];
    snprintf(channel, sizeof channel, "echolink:to:%s", node);
    int rc = publish(cl, channel, msg, n);
    free(msg);
    return rc;
}

int el_cluster_emit(el_cluster *cl, const char *to, const char *event, const char *json)
{
    if (!cl || !cl->up)
        return 0;
    size_t n;
    char *msg = delivery_msg(to, 0, event, json, strlen(json), &n);
    if (!msg)
        return -1;
    int rc = route(cl, to, msg, n, 1);
    free(msg);
    return rc;
}

void el_cluster_envelope(el_cluster *cl, const char *to, const char *id)
{
    if (!cl || !cl->up)
        return; /* delivered at its next login */
    char msg[256];
    int n = snprintf(msg, sizeof msg, "{\"t\":\"envelope\",\"to\":\"%s\",\"id\":\"%s\"}", to, id);
    if (n > 0 && (size_t)n < sizeof msg)
        route(cl, to, msg, (size_t)n, 1);
}

void el_cluster_relations_changed(el_cluster *cl)
{
    if (!cl || !cl->up)
        return;
    static const char msg[] = "{\"t\":\"relations\"}";
    publish(cl, CH_PRESENCE, msg, sizeof msg - 1);
}

int el_cluster_healthy(const el_cluster *cl)
{
    return !cl || cl->up;
}

int el_cluster_metrics(const el_cluster *cl, char *out, size_t outlen)
{
    if (!cl)
        return 0;
    int n = snprintf(out, outlen,
                     "# TYPE echolink_cluster_redis_up gauge\necholink_cluster_redis_up %d\n"
                     "# TYPE echolink_cluster_remote_nodes gauge\necholink_cluster_remote_nodes %zu\n"
                     "# TYPE echolink_cluster_remote_peers gauge\necholink_cluster_remote_peers %zu\n"
                     "# TYPE echolink_cluster_published_total counter\necholink_cluster_published_total %llu\n"
                     "# TYPE echolink_cluster_publish_failed_total counter\necholink_cluster_publish_failed_total %llu\n"
                     "# TYPE echolink_cluster_received_total counter\necholink_cluster_received_total %llu\n"
                     "# TYPE echolink_cluster_reconnects_total counter\necholink_cluster_reconnects_total %llu\n"
                     "# TYPE echolink_cluster_dead_nodes_total counter\necholink_cluster_dead_nodes_total %llu\n",
                     cl->up, el_map_count(cl->nodes), el_map_count(cl->remote),
                     (unsigned long long)cl->published, (unsigned long long)cl->publish_failed,
                     (unsigned long long)cl->received, (unsigned long long)cl->reconnects,
                     (unsigned long long)cl->dead_nodes);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}
