/* ctl.h - the local control socket: how one-shot `echolink` commands hand
 * their work to the process that owns the profile (`echolink chat` or
 * `listen`), and how local scripts follow its events.
 *
 * Transport: an AF_UNIX SOCK_STREAM socket at <profile dir>/control.sock,
 * mode 0600 inside the 0700 profile directory, so only the user reaches it.
 * Protocol: newline-delimited JSON, UTF-8, one compact object per line.
 *
 *   request   {"id": <integer>, "cmd": <string>, ...arguments}
 *   response  {"id": <same>, "ok": true, ...results}
 *             {"id": <same or null>, "ok": false, "error": <text>}
 *   event     {"event": <any JSON value>}       (only to subscribed clients)
 *
 * Each request gets exactly one response, not necessarily in request order
 * (the owner answers when it is done). Commands handled here, never passed
 * to the owner's handler:
 *
 *   | cmd           | response                                          |
 *   |---------------|---------------------------------------------------|
 *   | "ping"        | {"id","ok":true,"pid":<server pid>}               |
 *   | "subscribe"   | {"id","ok":true}; events follow on this connection |
 *   | "unsubscribe" | {"id","ok":true}; no more events                  |
 *
 * Errors answered here, the connection staying open: a line that is not
 * JSON ("invalid JSON: ..."), not an object, without an integer "id" (these
 * three with "id": null), or without a string "cmd". A line longer than
 * EL_CTL_LINE_MAX bytes is answered with an error (id null) and the
 * connection closed. Empty lines are ignored.
 *
 * Bounds: at most EL_CTL_CLIENTS_MAX connections (one more gets an error line
 * and is closed); a client whose unsent output would exceed EL_CTL_QUEUE_MAX
 * bytes (it does not read its events or answers) is disconnected, though one
 * answer into an empty queue is always accepted whatever its size; while more
 * than EL_CTL_PAUSE bytes wait for a client, its requests are not read. All
 * socket I/O is non-blocking.
 *
 * Threads and lifetime (server): everything runs on the GMainContext given to
 * el_ctl_server_new, which need not be the global default; every el_ctl_
 * function except el_ctl_call must be called from the thread that iterates
 * it. The handler runs from that context. Never call el_ctl_server_free from
 * inside the handler. Only the profile's owner (the holder of the profile
 * lock) should run a server: the stale-socket check below is not atomic
 * between two processes starting at once.
 *
 * Conventions: functions return EL_OK or a negative el_err (base/err.h);
 * detail text goes to err/errlen where there is such a parameter. */
#ifndef EL_CLIENT_CTL_H
#define EL_CLIENT_CTL_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

#define EL_CTL_LINE_MAX (1u << 20)      /* longest request line, bytes without '\n' */
#define EL_CTL_CLIENTS_MAX 32           /* connections served at once */
#define EL_CTL_QUEUE_MAX (4u << 20)     /* unsent output per client before disconnecting it */
#define EL_CTL_PAUSE (1u << 20)         /* unsent output above which requests wait */
#define EL_CTL_RESPONSE_MAX (16u << 20) /* longest response line el_ctl_call reads */

typedef struct el_ctl_server el_ctl_server;

/* Names one client connection. Never 0, never reused by a server. After the
 * client disconnects, calls that take it do nothing. */
typedef uint64_t el_ctl_conn;

/* Called once per request whose "cmd" is not one of the built-in ones.
 * `request` is borrowed for the call (json_incref it to keep it); its "id" is
 * an integer and its "cmd" a string. Answer now or later with el_ctl_reply or
 * el_ctl_reply_error, exactly once. */
typedef void (*el_ctl_handler)(el_ctl_server *srv, el_ctl_conn conn, json_t *request,
                               void *user);

/* Listens on `path`. When `path` exists: a socket that a server answers on is
 * EL_ERR_STATE ("another echolink is serving ..."); a socket nobody answers on
 * (left by a crash) is replaced; anything else is EL_ERR_EXISTS. A path
 * longer than the 107 bytes a socket address holds is EL_ERR_INVALID.
 * `handler` may be NULL (every other command is then answered "unknown
 * command"). `ctx` is referenced; `path` is copied. On success *out owns a
 * server for el_ctl_server_free(); on failure *out is NULL and nothing was
 * attached to `ctx`. */
int el_ctl_server_new(GMainContext *ctx, const char *path, el_ctl_handler handler, void *user,
                      el_ctl_server **out, char *err, size_t errlen);

/* Disconnects every client, stops listening and removes the socket file
 * (unless another server has replaced it meanwhile). Answers not yet given
 * are dropped. NULL is a no-op. */
void el_ctl_server_free(el_ctl_server *srv);

/* Connected clients right now. */
size_t el_ctl_server_clients(const el_ctl_server *srv);

/* Answers request `id` of `conn` with `response`, a JSON object whose
 * reference is stolen (also on failure); NULL stands for {}. "id" is set to
 * `id`, and "ok" to true unless the object has "ok" already. A client that
 * has gone away makes this a no-op returning EL_OK. Returns EL_ERR_INVALID
 * when `response` is not an object, EL_ERR_NOMEM. */
int el_ctl_reply(el_ctl_server *srv, el_ctl_conn conn, json_int_t id, json_t *response);

/* Answers {"id": id, "ok": false, "error": message}. Same results. */
int el_ctl_reply_error(el_ctl_server *srv, el_ctl_conn conn, json_int_t id,
                       const char *message);

/* Sends {"event": event} to every subscribed client (`event` is borrowed).
 * Slow subscribers are disconnected as said above. EL_ERR_INVALID for NULL,
 * EL_ERR_NOMEM. */
int el_ctl_broadcast(el_ctl_server *srv, json_t *event);

/* Client side, blocking, no main loop needed (callable from any thread):
 * connects to `path`, sends `request` (borrowed; a JSON object with a string
 * "cmd"; an integer "id" is used as is, else 1 is sent), and waits for the
 * response line with that id, skipping event lines. timeout_ms covers the
 * whole call; 0 waits without limit. On EL_OK *response owns the response
 * object (whose "ok" may well be false: that is the owner's answer); on
 * failure it is NULL. Errors:
 *   EL_ERR_INVALID    bad request, or `path` too long for a socket address
 *   EL_ERR_NOT_FOUND  nothing listens on `path` (no file, or a stale socket):
 *                     no running echolink owns the profile
 *   EL_ERR_DENIED     the socket may not be opened (permissions)
 *   EL_ERR_IO         no answer within timeout_ms ("no answer ... within"),
 *                     the connection closed before the answer, a malformed
 *                     or over-long (EL_CTL_RESPONSE_MAX) line, socket errors */
int el_ctl_call(const char *path, json_t *request, json_t **response, unsigned timeout_ms,
                char *err, size_t errlen);

#endif
