/* evcheck.h - the checks echolinkd makes on a signaling event before it
 * touches any state (docs/PROTOCOL.md §3-6): the event's shape, each event's
 * argument fields, and the relay rewrite of offer/answer/ice_candidate.
 *
 * This is the one implementation: handlers.c and relay.c call these steps
 * and keep only what needs a connection, the store or the presence map
 * around them; tests/fuzz/fuzz_event.c fuzzes the same functions without a
 * server. The messages set here are the ones the clients read.
 *
 * Call order, as the server does it:
 *   el_evcheck_event    every event (el_handlers_event)
 *   relay events:   el_evcheck_relay_to, then routing (relay.c), then
 *                   el_evcheck_relay_cap + el_evcheck_relay_write
 *   handler events: el_evcheck_arg, then el_evcheck_fields at the top of
 *                   the handler (login checks "already logged in" first). */
#ifndef EL_SERVER_EVCHECK_H
#define EL_SERVER_EVCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "crypto/identity.h"
#include "proto/json.h"
#include "server/metrics.h"

#define EL_EVCHECK_MAX_TOKENS 8192 /* JSON values in one event */
#define EL_EVCHECK_MAX_DEPTH 32
#define EL_EVCHECK_PEER_LEN 32
#define EL_EVCHECK_LIST_MAX 256       /* group members, add, remove */
#define EL_EVCHECK_ACK_MAX 1000       /* ids in one envelope_ack */
#define EL_EVCHECK_ENVELOPE_MAX 49152 /* envelope_send's envelope, bytes */

/* The handler events, in the order of handlers.c's table. */
typedef enum {
    EL_EV_LOGIN,
    EL_EV_GET_CONTACTS,
    EL_EV_CONTACT_REQUEST,
    EL_EV_CONTACT_RESPOND,
    EL_EV_CONTACT_REMOVE,
    EL_EV_BLOCK,
    EL_EV_UNBLOCK,
    EL_EV_GET_ICE_SERVERS,
    EL_EV_PROFILE_UPDATE,
    EL_EV_PROFILE_GET,
    EL_EV_PROFILE_DELETE,
    EL_EV_GROUP_CREATE,
    EL_EV_GROUP_LIST,
    EL_EV_GROUP_UPDATE,
    EL_EV_GROUP_LEAVE,
    EL_EV_ENVELOPE_SEND,
    EL_EV_ENVELOPE_ACK,
    EL_EV__COUNT
} el_ev_handler;

/* Event names, indexed by el_ev_handler. */
extern const char *const el_evcheck_names[EL_EV__COUNT];

typedef struct {
    int rejected;          /* 1: the server answers with reject + message */
    el_reject reject;
    const char *message;   /* static text or text[]; NULL when not rejected */
    int login_failed;      /* login's keys were refused: counts as a failed login */
    int relay;             /* el_relay_kind, or -1 */
    int handler;           /* el_ev_handler, or -1 */
    char name[48];         /* the event name as reported (cut at 40 bytes) */
    char text[128];        /* a message with details (message points here) */
} el_evcheck;

/* Step 1: scans data into j (tok: maxtok tokens) and classifies it: an
 * invalid or too large document, not [name, arg], a relay event, a known
 * handler or an unknown name (out->name then holds at most 40 bytes of it,
 * never cut inside a UTF-8 sequence). Returns 0, or -1 when out->rejected.
 * j points into data and tok: it lives as long as they do. */
int el_evcheck_event(el_json *j, const char *data, size_t len, jsmntok_t *tok, int maxtok,
                     el_evcheck *out);

/* Step 2 for a handler event: loads the argument (jansson, duplicate keys
 * refused; absent: {}) into *arg, which the caller frees with json_decref;
 * NULL when rejected. Returns 0 or -1 (out->rejected). */
int el_evcheck_arg(const el_json *j, const char *data, json_t **arg, el_evcheck *out);

/* What a handler's checks took from its argument. Pointers point into arg
 * and live as long as it does; absent optional members are NULL. */
typedef struct {
    const char *peer;                 /* "to" (contact_request, envelope_send) or "peer_id" */
    const char *ik, *sk, *sk_sig;     /* login */
    const char *sig;                  /* login: checked against the nonce by the handler */
    el_id_bundle bundle;              /* login: decoded, sk_sig verified */
    json_t *name;                     /* login, profile_update, group_update */
    json_t *avatar;                   /* profile_update */
    const char *text;                 /* contact_request's message ("" when absent),
                                         group_create's name, envelope_send's envelope */
    int accept;                       /* contact_respond */
    json_t *ttl;                      /* envelope_send */
    const char *group_id;             /* group_update, group_leave */
    const char *admin;                /* group_update */
    int n;                            /* ids[0..n): group_create's members,
                                         group_update's add, envelope_ack's ids */
    const char *ids[EL_EVCHECK_ACK_MAX];
    int nrem;                         /* rem[0..nrem): group_update's remove */
    const char *rem[EL_EVCHECK_LIST_MAX];
} el_evargs;

/* Step 3: handler h's argument fields, checked in the handler's order up to
 * its first store lookup, into *a. `me` is the logged-in peer id (32
 * characters; any string for login). Returns 0 or -1 (out->rejected; only
 * reject, message, text and login_failed are written). */
int el_evcheck_fields(el_ev_handler h, const char *me, json_t *arg, el_evargs *a,
                      el_evcheck *out);

/* Relay step 1 (before routing): the argument is an object whose first
 * "to" is another peer's id, copied into to. Returns 0 or -1. */
int el_evcheck_relay_to(const el_json *j, const char *from, char to[EL_EVCHECK_PEER_LEN + 1],
                        el_evcheck *out);

/* Bytes el_evcheck_relay_write may write for this event. */
size_t el_evcheck_relay_cap(const el_json *j, const el_evcheck *ev);

/* Relay step 2 (after routing, el_evcheck_relay_to passed): writes the
 * packet the peer gets, 42["<event>",{"from":"<from>",<members but from>}],
 * into buf (cap bytes); refuses escaped member names and a second "to".
 * Returns 0 with *outlen set, or -1 (out->rejected, *outlen 0). */
int el_evcheck_relay_write(const el_json *j, const char *from, char *buf, size_t cap,
                           size_t *outlen, el_evcheck *out);

#endif
