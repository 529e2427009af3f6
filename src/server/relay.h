/* relay.h - the offer/answer/ice_candidate hot path (server-internal). */
#ifndef EL_SERVER_RELAY_H
#define EL_SERVER_RELAY_H

#include "proto/json.h"
#include "server/server_int.h"

/* The relay kind of the event-name token `name`, or -1 for other events. */
int el_relay_kind_of(const el_json *j, int name);
/* Forwards the event's object argument to its "to" peer, with "from" written
 * by the server, copying every other member through byte for byte; acks the
 * sender. j is the scanned event array. Returns -1 if c closed. */
int el_relay(el_conn *c, const char *from, const el_json *j, el_relay_kind kind, int64_t id);

#endif
