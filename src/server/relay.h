/* relay.h - the offer/answer/ice_candidate hot path (server-internal). */
#ifndef EL_SERVER_RELAY_H
#define EL_SERVER_RELAY_H

#include "proto/json.h"
#include "server/evcheck.h"
#include "server/server_int.h"

/* Forwards the event's object argument to its "to" peer, with "from" written
 * by the server, copying every other member through byte for byte; acks the
 * sender. j is the scanned event array, ev its el_evcheck_event result (a
 * relay event); ev is overwritten with a refusal's reason. Returns -1 if c
 * closed. */
int el_relay(el_conn *c, const char *from, const el_json *j, el_evcheck *ev, int64_t id);

#endif
