/* cluster.h - several echolinkd nodes behind one Redis (--redis), the way
 * Socket.IO's Redis adapter joins several Socket.IO servers (server-internal).
 *
 * Each node keeps its own sessions; Redis holds who is where and carries
 * what one node must tell another over pub/sub. hiredis runs asynchronously
 * on echolinkd's libuv loop (hiredis/adapters/libuv.h): nothing here ever
 * blocks the loop, except the name lookup of a Redis host name at connect
 * (hiredis 0.14 resolves synchronously: give an address or an /etc/hosts
 * name).
 *
 * Redis keys (db from the URL; pub/sub channels are server-wide, so two
 * clusters must not share one Redis server):
 *   echolink:node:<node>         heartbeat, SET ... PX 3000 every 1 s
 *   echolink:peers               hash peer_id -> node id of its session
 *   echolink:node:<node>:peers   set of the node's peer ids (for cleanup)
 * Channels (every message is one JSON object, "t" says what it is):
 *   echolink:presence    {"t":"presence","peer":P,"online":true|false,"node":N}
 *                        {"t":"relations"}  contacts/blocks/groups changed
 *   echolink:to:<node>   {"t":"relay","to":P,"event":E,"payload":{...}}
 *                        {"t":"event","to":P,"event":E,"payload":{...}}
 *                        {"t":"envelope","to":P,"id":ENVELOPE_ID}
 *
 * Presence. Login: HSET echolink:peers P me, SADD my set, PUBLISH online.
 * Logout: one Lua script removes P only if the hash still names this node
 * and only then publishes offline, so a peer that already moved to another
 * node is never reported gone. Every node mirrors the remote part of the
 * hash in memory (peer -> node), fed by the presence channel and by a
 * HGETALL at every (re)connect; so the hot paths (relay routing, "online",
 * online_users at login) read memory, never wait for Redis. A node that
 * receives "online" for a peer it serves itself kicks its old session
 * ("replaced"), as one node does for a second login.
 *
 * Routing. relay.c/handlers.c deliver locally when the peer's session is
 * here; otherwise they ask el_cluster_node_of() and publish to that node's
 * channel, which delivers to its local session as if relayed locally. The
 * sender's ack is "ok" once the message is handed to Redis for a node that
 * the mirror shows alive, "offline" when no node has the peer or Redis is
 * unreachable. Envelopes are stored in the shared store first; the publish
 * only tells the recipient's node to push that id now (a lost publish costs
 * latency, never the envelope: it is delivered at the next login).
 *
 * Node death. Every second each node MGETs the heartbeats of the nodes that
 * appear in its mirror; a missing one is dead: its peers leave the mirror,
 * their visible local peers get user_disconnected, and a Lua script removes
 * them from Redis (only entries still naming the dead node). Bound: heartbeat
 * TTL (3 s) + 1 s check period after the node's last refresh.
 *
 * Redis going away. A Redis unreachable at start-up is the same case (the
 * node starts, degraded, and keeps trying); a bad URL refuses to start. A
 * connection that stays silent for 2 x TTL (Redis stopped, a black-holed
 * link) is dropped like a closed one, so commands never pile up in
 * hiredis's buffers without bound. A dropped connection is logged; the node keeps serving
 * its own clients (local presence and relay need no Redis), remote peers are
 * "offline" for relay, and it reconnects with backoff (1, 2, 4, 5, 5 ... s).
 * Once both connections are back and subscribed it re-registers (heartbeat,
 * its peers, an "online" for each) and re-reads the hash, emitting
 * user_connected/user_disconnected for what changed meanwhile. While Redis
 * is down, /healthz answers 200 "degraded: redis unavailable" (the node
 * still serves; a load balancer may prefer healthy nodes by the body) and
 * /metrics shows echolink_cluster_redis_up 0.
 *
 * Lifetime: el_cluster_new() only parses; el_cluster_start() connects on the
 * running loop; el_cluster_shutdown() (at SIGTERM, before the sessions
 * close) deregisters the node; el_cluster_close() frees the Redis contexts
 * and closes the timer (their handles close on the loop);
 * el_cluster_free() after the loop stopped. Every function accepts a NULL
 * cluster (no --redis) and then does nothing. */
#ifndef EL_SERVER_CLUSTER_H
#define EL_SERVER_CLUSTER_H

#include <stddef.h>
#include <uv.h>

typedef struct el_cluster el_cluster;
struct el_server;

#define EL_CLUSTER_NODE_ID_MAX 64

/* url: redis://host:port[/db]; node_id: [A-Za-z0-9_-]{1,64} or NULL for a
 * random one. srv and loop are borrowed for the cluster's lifetime. */
el_cluster *el_cluster_new(struct el_server *srv, uv_loop_t *loop, const char *url,
                           const char *node_id, char *err, size_t errlen);
void el_cluster_start(el_cluster *cl);
void el_cluster_shutdown(el_cluster *cl);
void el_cluster_close(el_cluster *cl);
void el_cluster_free(el_cluster *cl);

/* A local login / logout of peer_id (the session is already in, or already
 * out of, srv->peers). */
void el_cluster_peer_online(el_cluster *cl, const char *peer_id);
void el_cluster_peer_offline(el_cluster *cl, const char *peer_id);
/* The node serving peer_id elsewhere, or NULL (unknown, or Redis down).
 * The string is valid until control returns to the loop. */
const char *el_cluster_node_of(const el_cluster *cl, const char *peer_id);
/* Calls fn for every peer online on another node. */
void el_cluster_each_remote(const el_cluster *cl, void (*fn)(const char *peer_id, void *user),
                            void *user);
/* Sends event `event` with argument `payload` (JSON object text, borrowed)
 * to the session of peer `to` on `node`. relay=1 counts it as a relayed
 * offer/answer/candidate. Returns 0 when handed to Redis, -1 otherwise. */
int el_cluster_send(el_cluster *cl, const char *node, const char *to, int relay,
                    const char *event, const char *payload, size_t len);
/* Emits event to peer `to` wherever it is (nothing when offline or local). */
int el_cluster_emit(el_cluster *cl, const char *to, const char *event, const char *json);
/* Tells `to`'s node that envelope id waits for it. */
void el_cluster_envelope(el_cluster *cl, const char *to, const char *id);
/* Contacts, blocks or groups changed: every node drops its cached relay
 * decisions. */
void el_cluster_relations_changed(el_cluster *cl);
/* 1 when connected to Redis and subscribed (or no cluster). */
int el_cluster_healthy(const el_cluster *cl);
/* Appends Prometheus lines; returns the length written, or -1 if too small. */
int el_cluster_metrics(const el_cluster *cl, char *out, size_t outlen);

#endif
