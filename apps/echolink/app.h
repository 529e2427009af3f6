/* app.h - the running `echolink` program: one profile's session, its
 * control socket, and the request handler every front end shares.
 *
 * Everything a user can do is a request, a JSON object {"cmd": NAME, ...}
 * answered by one reply object {"ok": true, ...} or {"ok": false, "error",
 * "code"}; the command line (one-shot commands), the control socket
 * (one-shot commands while `listen` or `chat` owns the profile) and the
 * terminal UI all go through el_app_request. The commands, their members
 * and replies are listed in app.c (table `commands`) and in
 * `echolink --help`. Replies never use the member "id": the control
 * socket puts the request's id there.
 *
 * Events of the session (session.h) go to every listener and to control
 * socket clients that subscribed. Runs on one GMainContext, which must be
 * the thread-default one. */
#ifndef EL_APP_H
#define EL_APP_H

#include <glib.h>
#include <jansson.h>

#include "client/profile.h"
#include "client/session.h"

typedef struct el_app el_app;

typedef struct {
    const char *const *servers;       /* NULL: the profile's */
    const char *const *ice_addresses; /* restrict ICE gathering (tests) */
    int accept_files;                 /* auto-accept offered files */
    int control_socket;               /* serve <profile>/control.sock */
} el_app_options;

/* Exit codes (sysexits.h), shared by every command. */
enum {
    EL_EXIT_OK = 0,
    EL_EXIT_USAGE = 64,       /* bad command line */
    EL_EXIT_DATAERR = 65,     /* bad input: a malformed peer ID, text too long... */
    EL_EXIT_NOINPUT = 66,     /* no such profile, file, message, group */
    EL_EXIT_UNAVAILABLE = 69, /* the server cannot be reached */
    EL_EXIT_SOFTWARE = 70,    /* internal error */
    EL_EXIT_IOERR = 74,       /* disk / database error */
    EL_EXIT_TEMPFAIL = 75,    /* queued, not delivered yet: retried later */
    EL_EXIT_NOPERM = 77,      /* refused: not allowed, blocked, not an admin */
};

typedef void (*el_app_listener)(el_app *app, json_t *event, void *user);
typedef void (*el_app_reply_cb)(el_app *app, json_t *reply, void *user);

/* Takes ownership of nothing: prof and id must outlive the app. */
el_app *el_app_new(GMainContext *ctx, el_profile *prof, const el_identity *id,
                   const el_app_options *opt, char *err, size_t errlen);
/* Starts the session (and the control socket). */
int el_app_start(el_app *app, char *err, size_t errlen);
void el_app_free(el_app *app);

el_session *el_app_session(el_app *app);
const char *el_app_peer_id(const el_app *app);

/* Listeners get every session event (borrowed for the call). */
void el_app_add_listener(el_app *app, el_app_listener fn, void *user);
/* Removes the listener added with the same fn and user (safe to call from
 * outside a listener only). */
void el_app_remove_listener(el_app *app, el_app_listener fn, void *user);

/* Runs one request; `cb` gets exactly one reply (borrowed for the call),
 * possibly before el_app_request returns, at the latest inside el_app_free
 * ({"ok":false,"error":"cancelled"} for what the server never answered).
 * `req` is borrowed. */
void el_app_request(el_app *app, json_t *req, el_app_reply_cb cb, void *user);

/* The exit code that fits a failed reply's "code". */
int el_app_exit_code(json_t *reply);

#endif
