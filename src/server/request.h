/* request.h - the pure parts of an HTTP request's handling in echolinkd:
 * mapping a request path to a file under the web root, and reading the
 * Engine.IO query string. No libwebsockets here, so both can be fuzzed
 * (tests/fuzz/fuzz_http.c) apart from the server.
 *
 * The path reaching el_req_map_path is what lws hands LWS_CALLBACK_HTTP:
 * already %-decoded and with "." / ".." segments collapsed by lws's own
 * parser. el_req_map_path does not rely on that: it refuses any "/.." and
 * any backslash itself, and checks the resolved file against the root. */
#ifndef EL_SERVER_REQUEST_H
#define EL_SERVER_REQUEST_H

#include <stddef.h>

/* Results of el_req_map_path, as the HTTP status served. */
#define EL_REQ_FOUND 200
#define EL_REQ_NOT_FOUND 404
#define EL_REQ_TOO_LONG 414

/* Maps `path` (NUL-terminated) to the regular file it names under `root`
 * (a realpath() without a trailing slash, or "" when no web client is
 * served). A directory serves its index.html; symbolic links are followed
 * but the final file must still lie under root. On EL_REQ_FOUND, out
 * (outlen bytes, at least PATH_MAX) holds the file's real path, which
 * starts with root followed by '/'. Otherwise out is "". Touches the file
 * system only through realpath() and stat(). */
int el_req_map_path(const char *root, const char *path, char *out, size_t outlen);

/* The Engine.IO query arguments echolinkd reads; longer values are cut to
 * the field size minus one (so they can never equal an expected value). */
typedef struct {
    char eio[8];
    char transport[16];
    char sid[32];
    int has_eio, has_transport, has_sid;
} el_req_query;

/* Clears q before the first el_req_query_arg. */
void el_req_query_init(el_req_query *q);

/* Takes one "name=value" argument (NUL-terminated, as lws splits them at
 * '&'); modifies arg in place (the '=' becomes NUL). Arguments without '='
 * and unknown names are ignored; a repeated name keeps the last value. */
void el_req_query_arg(el_req_query *q, char *arg);

/* What the query of a polling request asks for, before any session lookup. */
typedef enum {
    EL_REQ_Q_TRANSPORT_UNKNOWN = 0, /* error code 0 "Transport unknown" */
    EL_REQ_Q_SESSION = 1,           /* has a sid: look the session up */
    EL_REQ_Q_BAD_METHOD = 2,        /* code 2 "Bad handshake method" */
    EL_REQ_Q_BAD_VERSION = 5,       /* code 5 "Unsupported protocol version" */
    EL_REQ_Q_BAD_REQUEST = 3,       /* code 3 "Bad request" */
    EL_REQ_Q_HANDSHAKE = 6,         /* a new polling session */
} el_req_q_verdict;

/* The verdict for a polling request's query; is_get: the method is GET. */
el_req_q_verdict el_req_query_poll(const el_req_query *q, int is_get);

/* 1 when a WebSocket upgrade with this query may proceed (transport=
 * websocket, and either a sid or EIO=4), else 0. */
int el_req_query_ws_ok(const el_req_query *q);

#endif
