/* presence.c - who sees whom, and the online/offline notifications.
 *
 * A user sees its contacts and group co-members (or everyone, with
 * --open-presence). Presence is computed from the store when a peer logs in
 * or leaves, so the cost is O(contacts), never O(users).
 *
 * A block hides the blocker: a peer never hears that someone who blocks it
 * is online (a group can keep the two co-members), as the relay answers it
 * "offline". The blocker still sees the other.
 *
 * In a cluster (--redis) a peer may be online on another node: "online"
 * and online_users also count the remote peers cluster.c mirrors, and
 * notices to a remote peer go through its node (emit_to). */
#include "server/presence.h"

#include "base/log.h"

#include <stdlib.h>
#include <string.h>

int el_presence_visible(el_server *srv, const char *a, const char *b)
{
    if (!strcmp(a, b))
        return 0;
    if (srv->cfg->open_presence)
        return 1;
    if (el_store_contact_is(srv->store, a, b, NULL, 0) == 1)
        return 1;
    return el_store_group_is_co_member(srv->store, a, b, NULL, 0) == 1;
}

/* a blocks b; a store that cannot say counts as a block (fails closed) */
static bool blocks(el_server *srv, const char *a, const char *b)
{
    return el_store_block_is(srv->store, a, b, NULL, 0) != 0;
}

int el_presence_sees(el_server *srv, const char *a, const char *b)
{
    return el_presence_visible(srv, a, b) && !blocks(srv, b, a);
}

static int online(el_server *srv, const char *peer_id)
{
    return el_map_get(srv->peers, peer_id) != NULL || el_cluster_node_of(srv->cluster, peer_id);
}

json_t *el_presence_peer(el_server *srv, const char *peer_id)
{
    el_store_user u;
    if (el_store_user_get(srv->store, peer_id, &u, NULL, 0, NULL, 0) != 0)
        return NULL;
    return json_pack("{s:s, s:s?, s:b, s:s, s:s, s:s, s:b}", "peer_id", u.peer_id, "name",
                     u.has_name ? u.name : NULL, "has_avatar", u.has_avatar, "ik", u.ik, "sk",
                     u.sk, "sk_sig", u.sk_sig, "online", online(srv, peer_id));
}

int el_presence_emit(el_conn *c, const char *event, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (!s) {
        EL_WARN("cannot serialize the '%s' event", event);
        return 0; /* a reply lost to a bug must not look like a closed session */
    }
    int rc = el_socket_emit(c, event, s, strlen(s));
    free(s);
    return rc;
}

/* Emits to peer_id's session here, or through its node in a cluster. */
static void emit_to(el_server *srv, const char *peer_id, const char *event, json_t *obj)
{
    el_conn *c = el_map_get(srv->peers, peer_id);
    if (c) {
        el_presence_emit(c, event, obj);
        return;
    }
    char *s = el_cluster_node_of(srv->cluster, peer_id) ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (s)
        el_cluster_emit(srv->cluster, peer_id, event, s);
    free(s);
}

/* Visible peers of one user: contacts and co-members, deduplicated. */
typedef struct {
    el_server *srv;
    char (*ids)[EL_PEER_ID_CHARS + 1];
    size_t n, cap;
    int unique; /* the source yields no duplicates: skip the O(n) check */
} peer_set;

static int set_add(const char *peer_id, void *user)
{
    peer_set *s = user;
    for (size_t i = 0; !s->unique && i < s->n; i++)
        if (!strcmp(s->ids[i], peer_id))
            return 0;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 32;
        void *n = realloc(s->ids, ncap * sizeof *s->ids);
        if (!n)
            return EL_ERR_NOMEM;
        s->ids = n;
        s->cap = ncap;
    }
    snprintf(s->ids[s->n++], EL_PEER_ID_CHARS + 1, "%s", peer_id);
    return 0;
}

static void set_add_online(const char *key, void *value, void *user)
{
    (void)value;
    set_add(key, user);
}

static void set_add_remote(const char *peer_id, void *user)
{
    set_add(peer_id, user);
}

static void visible_online(el_server *srv, const char *me, peer_set *s)
{
    memset(s, 0, sizeof *s);
    s->srv = srv;
    if (srv->cfg->open_presence) {
        s->unique = 1; /* map keys */
        el_map_each(srv->peers, set_add_online, s);
        s->unique = 0; /* a peer may just be moving between nodes */
        el_cluster_each_remote(srv->cluster, set_add_remote, s);
    } else {
        el_store_contact_list(srv->store, me, set_add, s, NULL, 0);
        el_store_group_list_co_members(srv->store, me, set_add, s, NULL, 0);
    }
}

void el_presence_announce(el_conn *c, const char *me)
{
    el_server *srv = c->srv;
    peer_set s;
    visible_online(srv, me, &s);
    json_t *users = json_array();
    json_t *mine = el_presence_peer(srv, me);
    for (size_t i = 0; i < s.n; i++) {
        el_conn *other = el_map_get(srv->peers, s.ids[i]);
        if (other == c || (!other && !el_cluster_node_of(srv->cluster, s.ids[i])))
            continue;
        json_t *p = blocks(srv, s.ids[i], me) ? NULL : el_presence_peer(srv, s.ids[i]);
        if (p)
            json_array_append_new(users, p);
        if (mine && other && !blocks(srv, me, s.ids[i])) /* remote peers: from their node (cluster.c) */
            el_presence_emit(other, "user_connected", mine);
    }
    json_t *msg = json_pack("{s:o}", "users", users);
    el_presence_emit(c, "online_users", msg);
    json_decref(msg);
    json_decref(mine);
    free(s.ids);
}

void el_presence_leave(el_server *srv, const char *me)
{
    peer_set s;
    visible_online(srv, me, &s);
    json_t *msg = json_pack("{s:s}", "peer_id", me);
    for (size_t i = 0; i < s.n; i++) {
        el_conn *other = el_map_get(srv->peers, s.ids[i]);
        if (other && strcmp(s.ids[i], me) && !blocks(srv, me, s.ids[i]))
            el_presence_emit(other, "user_disconnected", msg);
    }
    json_decref(msg);
    free(s.ids);
}

void el_presence_remote(el_server *srv, const char *peer_id, int is_online)
{
    peer_set s;
    json_t *msg = is_online ? el_presence_peer(srv, peer_id) : json_pack("{s:s}", "peer_id", peer_id);
    if (!msg)
        return;
    if (srv->cfg->open_presence) {
        memset(&s, 0, sizeof s);
        s.unique = 1;
        el_map_each(srv->peers, set_add_online, &s);
    } else {
        visible_online(srv, peer_id, &s);
    }
    for (size_t i = 0; i < s.n; i++) {
        el_conn *other = el_map_get(srv->peers, s.ids[i]);
        if (other && strcmp(s.ids[i], peer_id) && !blocks(srv, peer_id, s.ids[i]))
            el_presence_emit(other, is_online ? "user_connected" : "user_disconnected", msg);
    }
    json_decref(msg);
    free(s.ids);
}

/* Runs on the node where the change was made; a or b may be on another
 * node (cluster), and then hears of it through emit_to. */
void el_presence_pair_changed(el_server *srv, const char *a, const char *b)
{
    if (!online(srv, a) || !online(srv, b))
        return;
    if (el_presence_visible(srv, a, b)) {
        /* each direction on its own: a block hides only the blocker */
        const char *from[2] = {a, b}, *to[2] = {b, a};
        for (int k = 0; k < 2; k++) {
            bool hidden = blocks(srv, from[k], to[k]);
            json_t *o = hidden ? json_pack("{s:s}", "peer_id", from[k]) : el_presence_peer(srv, from[k]);
            if (o)
                emit_to(srv, to[k], hidden ? "user_disconnected" : "user_connected", o);
            json_decref(o);
        }
    } else {
        json_t *ma = json_pack("{s:s}", "peer_id", a), *mb = json_pack("{s:s}", "peer_id", b);
        emit_to(srv, b, "user_disconnected", ma);
        emit_to(srv, a, "user_disconnected", mb);
        json_decref(ma);
        json_decref(mb);
    }
}
