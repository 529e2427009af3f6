/* server.h - echolinkd: the signaling server as a library, so that tests and
 * apps/echolinkd share one implementation.
 *
 * One el_server owns a libwebsockets context on libuv, the store, and every
 * connection. It runs on the calling thread in el_server_run() until
 * el_server_stop() (safe from a libuv signal handler) or SIGTERM/SIGINT. */
#ifndef EL_SERVER_H
#define EL_SERVER_H

#include "server/config.h"

typedef struct el_server el_server;

/* Opens the store and binds the port (el_server_port). cfg is borrowed for
 * the server's lifetime. Returns NULL with a reason in err. */
el_server *el_server_new(const el_server_config *cfg, char *err, size_t errlen);
/* Installs the SIGTERM/SIGINT/SIGHUP handlers, then announces readiness:
 * "echolinkd VERSION listening on port PORT" on stdout and --port-file.
 * Serves until stopped; then closes every connection cleanly. Returns 0, or
 * 1 when --port-file could not be written (the server then stops at once). */
int el_server_run(el_server *srv);
void el_server_stop(el_server *srv);
void el_server_free(el_server *srv);
/* SIGHUP calls fn(srv, user) on the loop (the program reloads its
 * configuration there: see apps/echolinkd/main.c). Without a hook SIGHUP is
 * ignored (logged), never fatal. */
typedef void (*el_server_reload_fn)(el_server *srv, void *user);
void el_server_on_reload(el_server *srv, el_server_reload_fn fn, void *user);
int el_server_port(const el_server *srv);

#endif
