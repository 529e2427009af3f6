/* presence.h - presence scoping and notifications (server-internal). */
#ifndef EL_SERVER_PRESENCE_H
#define EL_SERVER_PRESENCE_H

#include <jansson.h>

#include "server/server_int.h"



/* 1 when a may see b's presence and exchange signaling with b. */
int el_presence_visible(el_server *srv, const char *a, const char *b);
/* a sees b's presence and profile: visible, and b does not block a. */
int el_presence_sees(el_server *srv, const char *a, const char *b);
/* A peer object (PROTOCOL.md §4) for a known user, or NULL. New reference. */
json_t *el_presence_peer(el_server *srv, const char *peer_id);
/* Emits event with obj (borrowed) as its argument. */
int el_presence_emit(el_conn *c, const char *event, json_t *obj);
/* After login: online_users to c, user_connected to every visible online peer. */
void el_presence_announce(el_conn *c, const char *me);
/* At logout: user_disconnected to every visible online peer of me. */
void el_presence_leave(el_server *srv, const char *me);
/* Another node says peer_id came online / went offline there (cluster.c):
 * user_connected / user_disconnected to its visible peers on this node. */
void el_presence_remote(el_server *srv, const char *peer_id, int online);
/* A relationship between a and b changed: tell both (when online) whether
 * they now see each other. */
void el_presence_pair_changed(el_server *srv, const char *a, const char *b);

#endif
