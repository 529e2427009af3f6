/* evcheck.h - the checks echolinkd makes on a signaling event before it
 * touches any state (docs/PROTOCOL.md §3-6): the event's shape, each event's
 * argument fields, and the relay rewrite of offer/answer/ice_candidate.
 *
 * These are the pure parts of handlers.c and relay.c, restated without a
 * connection, a store or a socket, so that they can be fuzzed
 * (tests/fuzz/fuzz_event.c). handlers.c/relay.c are meant to call them (see
 * the report of issue 8); until then they must be kept in step by hand, and
 * every rule below names the handler it comes from. */
#ifndef EL_SERVER_EVCHECK_H
#define EL_SERVER_EVCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/json.h"
#include "server/metrics.h"

#define EL_EVCHECK_MAX_TOKENS 8192 /* handlers.c MAX_TOKENS */
#define EL_EVCHECK_MAX_DEPTH 32
#define EL_EVCHECK_PEER_LEN 32

typedef struct {
    int rejected;          /* 1: the server answers with reject + message */
    el_reject reject;
    const char *message;   /* static text; NULL when not rejected */
    int relay;             /* el_relay_kind, or -1 */
    int handler;           /* index of the event in el_evcheck_names, or -1 */
    char name[48];         /* the event name as reported (cut at 40 bytes) */
} el_evcheck;

/* The table of handlers.c, in its order, and how long it is. */
extern const char *const el_evcheck_names[];
extern const size_t el_evcheck_count;

/* Step 1 (el_handlers_event): scans data into j (tok: maxtok tokens) and
 * classifies it: an invalid or too large document, not [name, arg], a relay
 * event, a known handler or an unknown name (out->name then holds at most
 * 40 bytes of it, never cut inside a UTF-8 sequence). Returns 0, or -1 when
 * out->rejected. */
int el_evcheck_event(el_json *j, const char *data, size_t len, jsmntok_t *tok, int maxtok,
                     el_evcheck *out);

/* Step 2 for a handler event: loads the argument as handlers.c does
 * (jansson, duplicates refused; absent: {}) into *arg (caller frees with
 * json_decref; NULL when rejected). Returns 0 or -1 (out->rejected). */
int el_evcheck_arg(const el_json *j, const char *data, json_t **arg, el_evcheck *out);

/* Step 3: the argument's fields for handler out->handler, checked in the
 * order the handler does, up to its first store lookup. `me` is the logged
 * in peer id (32 characters). Returns 0 or -1 (out->rejected). */
int el_evcheck_fields(const char *me, json_t *arg, el_evcheck *out);

/* Relay events: checks the object argument and its "to" and writes the
 * packet the peer gets, 42["<event>",{"from":"<from>",<members but from>}],
 * into buf (cap bytes; el_evcheck_relay_cap() suffices); *to gets the
 * target. Returns 0, or -1 (out->rejected). */
size_t el_evcheck_relay_cap(const el_json *j);
int el_evcheck_relay(const el_json *j, const char *from, char to[EL_EVCHECK_PEER_LEN + 1],
                     char *buf, size_t cap, size_t *outlen, el_evcheck *out);

#endif
