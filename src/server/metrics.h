/* metrics.h - echolinkd's counters, rendered in Prometheus text format.
 *
 * Plain integers updated on the server's one thread; /metrics reads them. */
#ifndef EL_SERVER_METRICS_H
#define EL_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    EL_RELAY_OFFER,
    EL_RELAY_ANSWER,
    EL_RELAY_ICE,
    EL_RELAY__COUNT
} el_relay_kind;

/* Reasons an input was rejected; names are the error codes of PROTOCOL.md. */
typedef enum {
    EL_REJ_BAD_REQUEST,
    EL_REJ_UNKNOWN_EVENT,
    EL_REJ_NOT_LOGGED_IN,
    EL_REJ_BAD_SIGNATURE,
    EL_REJ_OFFLINE,
    EL_REJ_UNKNOWN_PEER,
    EL_REJ_NOT_ALLOWED,
    EL_REJ_RATE_LIMITED,
    EL_REJ_TOO_LARGE,
    EL_REJ_INVALID_JSON,
    EL_REJ_BINARY,
    EL_REJ_QUOTA,
    EL_REJ_NOT_FOUND,
    EL_REJ_INTERNAL,
    EL_REJ_PROTOCOL,      /* Engine.IO/Socket.IO framing error: connection closed */
    EL_REJ_CONN_LIMIT,    /* handshake refused: too many connections */
    EL_REJ__COUNT
} el_reject;

typedef struct {
    uint64_t connections_total;
    int64_t connections_open;
    int64_t websocket_open;
    int64_t peers_online;
    uint64_t logins_total;
    uint64_t logins_failed;
    uint64_t events_total;
    uint64_t relayed[EL_RELAY__COUNT];
    uint64_t rejected[EL_REJ__COUNT];
    uint64_t envelopes_stored;
    uint64_t envelopes_delivered;
    uint64_t http_requests;
    uint64_t ws_upgrades_own; /* WebSocket handshakes and framing done by rawws.c */
    uint64_t ws_upgrades_lws; /* ... by lws's WebSocket role (TLS, or handed over) */
} el_metrics;

const char *el_reject_code(el_reject r);
/* Renders into out; returns the length, or -1 when outlen is too small. */
int el_metrics_render(const el_metrics *m, char *out, size_t outlen);

#endif
