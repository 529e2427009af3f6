/* tui.h - the ncurses interface of `echolink chat`. */
#ifndef EL_TUI_H
#define EL_TUI_H

#include <glib.h>
#include <stddef.h>

#include "app.h"

/* Runs the UI until the user quits (/quit, Ctrl-C, Ctrl-D): the ncurses
 * screen on the thread-default GMainContext `ctx` (stdin read with
 * g_unix_fd_add_full on that context, SIGWINCH via g_unix_signal_source_new),
 * events from el_app_add_listener, actions through el_app_request.
 * Returns an exit code (0). */
int el_tui_run(el_app *app, GMainContext *ctx, char *err, size_t errlen);

#endif
