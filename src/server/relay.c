/* relay.c - offer / answer / ice_candidate, copied through.
 *
 * These are most of the server's traffic, so nothing is re-serialized: the
 * event was already checked and tokenized (proto/json.h), and the outgoing
 * packet is assembled from byte ranges of the incoming one by
 * el_evcheck_relay_write (evcheck.h). The object's members are copied in
 * order, minus any "from", after a server-written "from" — so a client can
 * never choose the sender its peer sees. This file keeps what needs the
 * server: routing, the relation checks, the target's backlog, sending. */
#include "server/relay.h"

#include "server/presence.h"

#include <stdlib.h>
#include <string.h>


static int ack_ok(el_conn *c, int64_t id)
{
    if (id < 0)
        return 0;
    return el_socket_ack(c, "/", id, "{\"ok\":true}", 11);
}

int el_relay(el_conn *c, const char *from, const el_json *j, el_evcheck *ev, int64_t id)
{
    el_server *srv = c->srv;
    const char *event = ev->name;
    char to[EL_PEER_ID_CHARS + 1];
    if (el_evcheck_relay_to(j, from, to, ev) != 0)
        return el_handlers_reply_error(c, id, event, ev->reject, ev->message);

    el_conn *target = el_map_get(srv->peers, to);
    /* cluster: the peer's session may be on another node (cluster.h) */
    const char *node = target ? NULL : el_cluster_node_of(srv->cluster, to);
    int known = target || node ? 1 : el_store_user_exists(srv->store, to, NULL, 0);
    if (known < 0)
        return el_handlers_reply_error(c, id, event, EL_REJ_INTERNAL, EL_DB_FAILED);
    if (known == 0)
        return el_handlers_reply_error(c, id, event, EL_REJ_UNKNOWN_PEER, "no user with that peer id");
    /* who may reach whom is settled before online or not: "offline" would
     * tell a stranger that the peer is away, and "not_allowed" only while
     * it is online (presence is for contacts and co-members) */
    el_client *cl = c->client;
    /* The cached decision is only as fresh as the news of relation changes:
     * on another node they arrive through Redis, so without it (and until
     * it is back: cluster.c resync) every relay asks the store. */
    if (cl->relay_ok_epoch != srv->relations_epoch || strcmp(cl->relay_ok_to, to) != 0 ||
        !el_cluster_healthy(srv->cluster)) {
        /* A block looks like "offline", never like "not a contact": checked
         * first. A store that cannot say (rc < 0, logged by the store) must
         * not let the event through: the answer would be cached below. */
        int blocked = el_store_block_is(srv->store, to, from, NULL, 0);
        if (blocked < 0)
            return el_handlers_reply_error(c, id, event, EL_REJ_INTERNAL, EL_DB_FAILED);
        if (blocked == 1)
            return el_handlers_reply_error(c, id, event, EL_REJ_OFFLINE, "the peer is offline");
        if (!el_presence_visible(srv, from, to))
            return el_handlers_reply_error(c, id, event, EL_REJ_NOT_ALLOWED,
                                           "not a contact or group co-member");
        memcpy(cl->relay_ok_to, to, sizeof cl->relay_ok_to);
        cl->relay_ok_epoch = srv->relations_epoch;
    }
    if (!target && !node)
        return el_handlers_reply_error(c, id, event, EL_REJ_OFFLINE, "the peer is offline");

    size_t cap = el_evcheck_relay_cap(j, ev);
    if (target && target->q_bytes + cap > EL_RELAY_TARGET_BACKLOG)
        return el_handlers_reply_error(c, id, event, EL_REJ_RATE_LIMITED,
                                       "the peer is not reading fast enough; retry later");
    el_pkt *p = el_pkt_new(cap);
    if (!p)
        return el_handlers_reply_error(c, id, event, EL_REJ_INTERNAL, "out of memory");
    char *start = (char *)p->buf + LWS_PRE;
    if (el_evcheck_relay_write(j, from, start, cap, &p->len, ev) != 0) {
        free(p);
        return el_handlers_reply_error(c, id, event, ev->reject, ev->message);
    }
    if (node) { /* publish the object, after 42["<event>", and before the closing ] */
        size_t at = 4 + strlen(event) + 2;
        int rc = el_cluster_send(srv->cluster, node, to, 1, event, start + at, p->len - at - 1);
        free(p);
        if (rc < 0)
            return el_handlers_reply_error(c, id, event, EL_REJ_OFFLINE, "the peer is offline");
        srv->metrics.relayed[ev->relay]++;
        return ack_ok(c, id);
    }
    if (el_conn_send_pkt(target, p) < 0)
        return el_handlers_reply_error(c, id, event, EL_REJ_OFFLINE, "the peer is offline");
    srv->metrics.relayed[ev->relay]++;
    return ack_ok(c, id);
}
