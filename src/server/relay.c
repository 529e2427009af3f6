/* relay.c - offer / answer / ice_candidate, copied through.
 *
 * These are most of the server's traffic, so nothing is re-serialized: the
 * event was already checked and tokenized (proto/json.h), and the outgoing
 * packet is assembled from byte ranges of the incoming one. The object's
 * members are copied in order, minus any "from", after a server-written
 * "from" — so a client can never choose the sender its peer sees. */
#include "server/relay.h"

#include "server/presence.h"

#include "crypto/identity.h"

#include <stdlib.h>
#include <string.h>

static const char *const relay_names[EL_RELAY__COUNT] = {"offer", "answer", "ice_candidate"};

/* Relayed bytes a target may have waiting in its send queue. Senders are
 * rate-limited per connection, but several of them together can outrun a
 * slow reader; past EL_CONN_MAX_QUEUE the target itself would be dropped
 * ("send queue overflow"), so others' traffic could disconnect it. Refusing
 * the relay here (rate_limited to the sender) keeps the victim's queue well
 * below that and leaves room for its own acks and presence events. */
#define RELAY_TARGET_BACKLOG (1024 * 1024)

int el_relay_kind_of(const el_json *j, int name)
{
    for (int k = 0; k < EL_RELAY__COUNT; k++)
        if (el_json_str_is(j, name, relay_names[k]))
            return k;
    return -1;
}

static int ack_ok(el_conn *c, int64_t id)
{
    if (id < 0)
        return 0;
    return el_socket_ack(c, "/", id, "{\"ok\":true}", 11);
}

int el_relay(el_conn *c, const char *from, const el_json *j, el_relay_kind kind, int64_t id)
{
    el_server *srv = c->srv;
    const char *event = relay_names[kind];
    int obj = el_json_at(j, 0, 1);
    if (obj < 0 || j->tok[obj].type != JSMN_OBJECT)
        return el_handlers_reply_error(c, id, event, EL_REJ_BAD_REQUEST,
                                       "the argument must be an object with 'to'");
    int to_tok = el_json_get(j, obj, "to");
    char to[EL_PEER_ID_CHARS + 1];
    int tlen = to_tok >= 0 ? j->tok[to_tok].end - j->tok[to_tok].start : 0;
    if (to_tok < 0 || j->tok[to_tok].type != JSMN_STRING || tlen != EL_PEER_ID_CHARS)
        return el_handlers_reply_error(c, id, event, EL_REJ_BAD_REQUEST, "'to' must be a peer id");
    memcpy(to, j->js + j->tok[to_tok].start, EL_PEER_ID_CHARS);
    to[EL_PEER_ID_CHARS] = '\0';
    if (!el_id_valid_peer_id(to) || !strcmp(to, from))
        return el_handlers_reply_error(c, id, event, EL_REJ_BAD_REQUEST, "'to' must be another peer's id");

    el_conn *target = el_map_get(srv->peers, to);
    /* cluster: the peer's session may be on another node (cluster.h) */
    const char *node = target ? NULL : el_cluster_node_of(srv->cluster, to);
    if (!target && !node) {
        if (el_store_user_exists(srv->store, to, NULL, 0) != 1)
            return el_handlers_reply_error(c, id, event, EL_REJ_UNKNOWN_PEER, "no user with that peer id");
        return el_handlers_reply_error(c, id, event, EL_REJ_OFFLINE, "the peer is offline");
    }
    el_client *cl = c->client;
    if (cl->relay_ok_epoch != srv->relations_epoch || strcmp(cl->relay_ok_to, to) != 0) {
        /* A block looks like "offline", never like "not a contact": checked first. */
        if (el_store_block_is(srv->store, to, from, NULL, 0) == 1)
            return el_handlers_reply_error(c, id, event, EL_REJ_OFFLINE, "the peer is offline");
        if (!el_presence_visible(srv, from, to))
            return el_handlers_reply_error(c, id, event, EL_REJ_NOT_ALLOWED,
                                           "not a contact or group co-member");
        memcpy(cl->relay_ok_to, to, sizeof cl->relay_ok_to);
        cl->relay_ok_epoch = srv->relations_epoch;
    }

    /* 42["<event>",{"from":"<from>"<,member>...}] */
    size_t elen = strlen(event);
    size_t cap = 4 + elen + 2 + 10 + EL_PEER_ID_CHARS + 1 + (size_t)(j->tok[obj].end - j->tok[obj].start) + 4;
    if (target && target->q_bytes + cap > RELAY_TARGET_BACKLOG)
        return el_handlers_reply_error(c, id, event, EL_REJ_RATE_LIMITED,
                                       "the peer is not reading fast enough; retry later");
    el_pkt *p = el_pkt_new(cap);
    if (!p)
        return el_handlers_reply_error(c, id, event, EL_REJ_INTERNAL, "out of memory");
    char *o = (char *)p->buf + LWS_PRE, *start = o;
    memcpy(o, "42[\"", 4), o += 4;
    memcpy(o, event, elen), o += elen;
    memcpy(o, "\",{\"from\":\"", 11), o += 11;
    memcpy(o, from, EL_PEER_ID_CHARS), o += EL_PEER_ID_CHARS;
    *o++ = '"';
    int k = obj + 1;
    for (int pair = 0; pair < j->tok[obj].size; pair++) {
        int v = k + 1;
        int next = el_json_next(j, v);
        if (memchr(j->js + j->tok[k].start, '\\', (size_t)(j->tok[k].end - j->tok[k].start))) {
            /* "\u0066rom" would reach the peer as a second "from" */
            free(p);
            return el_handlers_reply_error(c, id, event, EL_REJ_BAD_REQUEST,
                                           "escaped characters in member names are not accepted");
        }
        if (el_json_str_is(j, k, "to") && k + 1 != to_tok) {
            /* the peer's JSON.parse keeps the last "to", we routed by the
             * first: refuse rather than deliver a contradiction */
            free(p);
            return el_handlers_reply_error(c, id, event, EL_REJ_BAD_REQUEST, "duplicate 'to'");
        }
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
    p->len = (size_t)(o - start);
    if (node) { /* publish the object, after 42["<event>", and before the closing ] */
        size_t at = 4 + elen + 2;
        int rc = el_cluster_send(srv->cluster, node, to, 1, event, start + at, p->len - at - 1);
        free(p);
        if (rc < 0)
            return el_handlers_reply_error(c, id, event, EL_REJ_OFFLINE, "the peer is offline");
        srv->metrics.relayed[kind]++;
        return ack_ok(c, id);
    }
    if (el_conn_send_pkt(target, p) < 0)
        return el_handlers_reply_error(c, id, event, EL_REJ_OFFLINE, "the peer is offline");
    srv->metrics.relayed[kind]++;
    return ack_ok(c, id);
}
