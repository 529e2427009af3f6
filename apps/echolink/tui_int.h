/* tui_int.h - what the files of the terminal UI share (tui.c: the model,
 * events, input and the run loop; tui_view.c: drawing; tui_cmd.c: slash
 * commands). Never included outside apps/echolink/tui*.c.
 *
 * Model: the conversation list (contacts, groups, conversations with
 * history) and the messages of the shown conversation only, as the
 * history request returns them (JSON objects), updated in place by the
 * session's events and re-read from the history when new rows appear. */
#ifndef EL_TUI_INT_H
#define EL_TUI_INT_H

#include <glib.h>
#include <jansson.h>
#include <stdint.h>

#include "app.h"
#include "tui_edit.h"

#define TUI_PAGE 100          /* messages per history request */
#define TUI_TYPING_IDLE_MS 3000
#define TUI_TYPING_SHOWN_US (8 * G_USEC_PER_SEC) /* a "typing" without its end */

typedef struct el_tui el_tui;

/* One entry of the left pane. */
typedef struct {
    char *conv;       /* "p:<peer_id>" or "g:<group_id>" */
    char *name;       /* NULL: none known */
    int group;
    int online;       /* peers: 1 online, 0 offline, -1 unknown */
    int unread;
    int64_t last_ts;
    char *link;       /* peers: link state of the last "link" event, or NULL */
    int left;         /* groups: we left it */
    int contact;      /* peers: in the server's contact list */
    GHashTable *typing; /* peer id -> gint64 (monotonic us when it expires) */
} tui_conv;

/* An incoming contact request. */
typedef struct {
    char *peer;
    char *name;
    char *message;
} tui_req;

/* What the right pane shows instead of the conversation (Esc closes). */
typedef struct {
    char *title;
    GPtrArray *lines; /* char * (UTF-8) */
    int scroll;
} tui_overlay;

typedef struct tui_handle tui_handle;

struct el_tui {
    el_app *app;
    GMainContext *ctx;
    tui_handle *handle; /* what the app's listener and replies hold */
    struct screen *screen; /* curses' SCREEN */
    int quit;
    int colors;         /* has_colors() and not NO_COLOR */
    int utf8;           /* the locale's charset is UTF-8 */

    /* model */
    GPtrArray *convs;    /* tui_conv *, in display order */
    GPtrArray *requests; /* tui_req * */
    GHashTable *names;   /* peer id -> display name */
    char *sel;           /* conv shown, or NULL */
    GPtrArray *msgs;     /* json_t * of the shown conv, oldest first */
    int more;            /* older messages may exist */
    int loading_older;
    tui_overlay *overlay;
    int scroll;          /* message pane: lines up from the bottom */
    int scroll_at_top;   /* the last draw showed the oldest loaded line */
    int list_top;        /* left pane: first entry shown */

    char *me_id;
    char *me_name;
    char *signal;        /* state of the last "signal" event */
    char notice[512];
    int notice_error;

    /* input */
    el_tui_edit *edit;
    size_t edit_first;   /* first character shown on the input line */
    GPtrArray *sent;     /* lines entered, oldest first */
    int sent_pos;        /* browsing `sent` with Up/Down; -1 not */
    char *typing_conv;   /* where we said "typing", or NULL */
    GSource *typing_idle;

    /* sources on ctx */
    GSource *stdin_src, *winch_src, *int_src, *term_src, *hup_src, *tick_src;
    GSource *redraw_src, *refresh_src;
    unsigned want;       /* TUI_WANT_* bits for refresh_src */
    GPtrArray *pending;  /* requests in flight (tui_pending *) */
};

enum {
    TUI_WANT_CONVS = 1,
    TUI_WANT_PEERS = 2,
    TUI_WANT_GROUPS = 4,
    TUI_WANT_NEW = 8, /* new rows of the shown conversation */
    TUI_WANT_ALL = 7,
};

/* ---- tui.c ---- */
typedef void (*el_tui_reply_fn)(el_tui *t, json_t *reply, void *data);
/* Sends `req` (stolen) to the app; fn (may be NULL: errors go to the
 * notice line) gets the reply unless the UI has ended; free_data(data)
 * runs in every case once the reply came. */
void el_tui_request(el_tui *t, json_t *req, el_tui_reply_fn fn, void *data,
                    GDestroyNotify free_data);
/* 1 when reply says ok; otherwise shows its error and returns 0. */
int el_tui_reply_ok(el_tui *t, json_t *reply);
void el_tui_notice(el_tui *t, int error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void el_tui_dirty(el_tui *t);
void el_tui_want(el_tui *t, unsigned what);
/* /peers: the server's contact list again, with a word on the result. */
void el_tui_refresh_peers(el_tui *t);
tui_conv *el_tui_conv(el_tui *t, const char *conv, int create);
void el_tui_select(el_tui *t, const char *conv);
/* A peer's name, or its short id; never NULL, valid while the model is. */
const char *el_tui_name(el_tui *t, const char *peer_id, char buf[16]);
/* The name of a conversation for display. */
const char *el_tui_conv_title(el_tui *t, const tui_conv *c, char buf[16]);
void el_tui_show_overlay(el_tui *t, const char *title, GPtrArray *lines);
void el_tui_close_overlay(el_tui *t);
/* A message of the shown conversation by id, or NULL. */
json_t *el_tui_msg_by_id(el_tui *t, const char *id);
/* Applies our own edit/delete/react once the app said ok. */
void el_tui_apply_edit(el_tui *t, const char *id, const char *text);
void el_tui_apply_delete(el_tui *t, const char *id);
void el_tui_apply_reaction(el_tui *t, const char *id, const char *from, const char *emoji,
                           int remove);

/* ---- tui_view.c ---- */
void el_tui_draw(el_tui *t);
void el_tui_colors_init(el_tui *t);
/* Lines of the message pane at the current size (for scrolling). */
int el_tui_pane_rows(el_tui *t);

/* ---- tui_cmd.c ---- */
/* Runs one line that starts with '/'. */
void el_tui_command(el_tui *t, const char *line);
/* The conversation's messages numbered as shown: 1 is the oldest loaded. */
json_t *el_tui_msg_ref(el_tui *t, const char *ref);

#endif
