/* tui.c - `echolink chat`: the run loop, the model and its updates from
 * the session's events, and the keyboard (tui.h, tui_int.h).
 *
 * Everything runs on the caller's GMainContext: stdin, SIGWINCH and the
 * app's events are sources on it, so no locking is needed. The screen is
 * redrawn at most every REDRAW_MS after a change, and at once after a key,
 * so that typing never lags behind a busy transfer. */
#include "tui.h"

#include "tui_int.h"

#include "base/err.h"
#include "base/log.h"

#include <curses.h>
#include <glib-unix.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define REDRAW_MS 30
#define REFRESH_MS 40
#define SENT_MAX 100
#define LOG_LINES 200

/* Key codes of our own for the sequences terminfo may not know. */
enum {
    TUI_KEY_ALT_UP = KEY_MAX + 1,
    TUI_KEY_ALT_DOWN,
};

/* The app has no way to drop a listener: it holds this, and an event that
 * arrives after the UI ended finds t == NULL. */
struct tui_handle {
    el_tui *t;
};

typedef struct {
    el_tui *t; /* NULL once the UI ended */
    el_tui_reply_fn fn;
    void *data;
    GDestroyNotify free_data;
} tui_pending;

static void typing_stop(el_tui *t);
static void load_history(el_tui *t, const char *conv, int64_t before);

/* ---- requests ------------------------------------------------------------------------ */

static void on_reply(el_app *app, json_t *reply, void *user)
{
    tui_pending *p = user;
    (void)app;
    if (p->t) {
        el_tui *t = p->t;
        g_ptr_array_remove_fast(t->pending, p);
        if (p->fn)
            p->fn(t, reply, p->data);
        else
            el_tui_reply_ok(t, reply);
        el_tui_dirty(t);
    }
    if (p->free_data)
        p->free_data(p->data);
    g_free(p);
}

void el_tui_request(el_tui *t, json_t *req, el_tui_reply_fn fn, void *data,
                    GDestroyNotify free_data)
{
    tui_pending *p = g_new0(tui_pending, 1);
    *p = (tui_pending){t, fn, data, free_data};
    g_ptr_array_add(t->pending, p);
    if (req)
        el_app_request(t->app, req, on_reply, p);
    else /* json_pack failed: answer like the app would */
        on_reply(t->app, NULL, p);
    json_decref(req);
}

int el_tui_reply_ok(el_tui *t, json_t *reply)
{
    if (json_is_true(json_object_get(reply, "ok")))
        return 1;
    const char *e = json_string_value(json_object_get(reply, "error"));
    el_tui_notice(t, 1, "%s", e ? e : "the request failed");
    return 0;
}

/* For requests whose failure the user did not ask about (typing, refresh). */
static void quiet_reply(el_tui *t, json_t *reply, void *data)
{
    (void)t, (void)reply, (void)data;
}

void el_tui_notice(el_tui *t, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->notice, sizeof t->notice, fmt, ap);
    va_end(ap);
    t->notice_error = error;
    el_tui_dirty(t);
}

/* ---- redraw and refresh scheduling ------------------------------------------------- */

static gboolean redraw_due(gpointer user)
{
    el_tui *t = user;
    g_source_unref(t->redraw_src);
    t->redraw_src = NULL;
    el_tui_draw(t);
    return G_SOURCE_REMOVE;
}

static GSource *add_timeout(el_tui *t, guint ms, GSourceFunc fn)
{
    GSource *src = g_timeout_source_new(ms);
    g_source_set_callback(src, fn, t, NULL);
    g_source_attach(src, t->ctx);
    return src;
}

static void drop_source(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

void el_tui_dirty(el_tui *t)
{
    if (!t->redraw_src && !t->quit)
        t->redraw_src = add_timeout(t, REDRAW_MS, redraw_due);
}

static void request_lists(el_tui *t, unsigned what);

static gboolean refresh_due(gpointer user)
{
    el_tui *t = user;
    unsigned what = t->want;
    g_source_unref(t->refresh_src);
    t->refresh_src = NULL;
    t->want = 0;
    request_lists(t, what);
    if ((what & TUI_WANT_NEW) && t->sel)
        load_history(t, t->sel, 0);
    return G_SOURCE_REMOVE;
}

/* Bursts of events (a reconnect, a group fan-out) make one request each. */
void el_tui_want(el_tui *t, unsigned what)
{
    t->want |= what;
    if (!t->refresh_src && !t->quit)
        t->refresh_src = add_timeout(t, REFRESH_MS, refresh_due);
}

/* ---- the model: conversations ---------------------------------------------------------- */

static void conv_free(gpointer p)
{
    tui_conv *c = p;
    g_free(c->conv);
    g_free(c->name);
    g_free(c->link);
    g_hash_table_destroy(c->typing);
    g_free(c);
}

static void req_free(gpointer p)
{
    tui_req *r = p;
    g_free(r->peer);
    g_free(r->name);
    g_free(r->message);
    g_free(r);
}

tui_conv *el_tui_conv(el_tui *t, const char *conv, int create)
{
    if (!conv || (strncmp(conv, "p:", 2) && strncmp(conv, "g:", 2)) || !conv[2])
        return NULL;
    for (guint i = 0; i < t->convs->len; i++) {
        tui_conv *c = t->convs->pdata[i];
        if (!strcmp(c->conv, conv))
            return c;
    }
    if (!create)
        return NULL;
    tui_conv *c = g_new0(tui_conv, 1);
    c->conv = g_strdup(conv);
    c->group = conv[0] == 'g';
    c->online = -1;
    c->typing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_ptr_array_add(t->convs, c);
    return c;
}

const char *el_tui_name(el_tui *t, const char *peer_id, char buf[16])
{
    if (!peer_id)
        return "?";
    if (t->me_id && !strcmp(peer_id, t->me_id))
        return t->me_name && *t->me_name ? t->me_name : "me";
    const char *n = g_hash_table_lookup(t->names, peer_id);
    if (n && *n)
        return n;
    g_strlcpy(buf, peer_id, 9);
    return buf;
}

const char *el_tui_conv_title(el_tui *t, const tui_conv *c, char buf[16])
{
    if (c->name && *c->name)
        return c->name;
    if (!c->group)
        return el_tui_name(t, c->conv + 2, buf);
    buf[0] = '#';
    g_strlcpy(buf + 1, c->conv + 2, 9);
    return buf;
}

static void set_name(el_tui *t, const char *peer_id, const char *name)
{
    if (peer_id && name && *name)
        g_hash_table_replace(t->names, g_strdup(peer_id), g_strdup(name));
}

/* Peers first, then groups, each by name: a stable order to Tab through. */
static gint conv_cmp(gconstpointer a, gconstpointer b, gpointer user)
{
    el_tui *t = user;
    const tui_conv *x = *(tui_conv *const *)a, *y = *(tui_conv *const *)b;
    if (x->group != y->group)
        return x->group - y->group;
    char bx[16], by[16];
    char *nx = g_utf8_casefold(el_tui_conv_title(t, x, bx), -1);
    char *ny = g_utf8_casefold(el_tui_conv_title(t, y, by), -1);
    int r = g_utf8_collate(nx, ny);
    g_free(nx);
    g_free(ny);
    return r ? r : strcmp(x->conv, y->conv);
}

static void sort_convs(el_tui *t)
{
    g_ptr_array_sort_with_data(t->convs, conv_cmp, t);
    if (!t->sel && t->convs->len > 0)
        el_tui_select(t, ((tui_conv *)t->convs->pdata[0])->conv);
}

static int is_shown(el_tui *t, const char *conv)
{
    return conv && t->sel && !strcmp(conv, t->sel);
}

/* ---- the model: lists from the app ------------------------------------------------------- */

static void got_conversations(el_tui *t, json_t *reply, void *data)
{
    (void)data;
    json_t *o;
    size_t i;
    json_array_foreach(json_object_get(reply, "conversations"), i, o) {
        tui_conv *c = el_tui_conv(t, json_string_value(json_object_get(o, "conv")), 1);
        if (!c)
            continue;
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!c->group)
            set_name(t, c->conv + 2, name);
        if (name && *name && !c->group) {
            g_free(c->name);
            c->name = g_strdup(name);
        }
        c->last_ts = json_integer_value(json_object_get(o, "last_ts"));
        /* the shown conversation is read as it arrives */
        c->unread = is_shown(t, c->conv) && !t->overlay
                        ? 0
                        : (int)json_integer_value(json_object_get(o, "unread"));
    }
    sort_convs(t);
}

/* A peer object (PROTOCOL.md §4) or a bare peer id. */
static const char *peer_of(json_t *v, const char **name)
{
    if (json_is_string(v)) {
        *name = NULL;
        return json_string_value(v);
    }
    *name = json_string_value(json_object_get(v, "name"));
    return json_string_value(json_object_get(v, "peer_id"));
}

static void add_request(el_tui *t, const char *peer, const char *name, const char *message)
{
    if (!peer)
        return;
    for (guint i = 0; i < t->requests->len; i++)
        if (!strcmp(((tui_req *)t->requests->pdata[i])->peer, peer))
            return;
    tui_req *r = g_new0(tui_req, 1);
    r->peer = g_strdup(peer);
    r->name = g_strdup(name);
    r->message = g_strdup(message);
    g_ptr_array_add(t->requests, r);
    set_name(t, peer, name);
}

static void drop_request(el_tui *t, const char *peer)
{
    for (guint i = 0; peer && i < t->requests->len; i++)
        if (!strcmp(((tui_req *)t->requests->pdata[i])->peer, peer)) {
            g_ptr_array_remove_index(t->requests, i);
            return;
        }
}

static void got_peers(el_tui *t, json_t *reply, void *data)
{
    /* data != NULL: the user asked (/peers), so say what went wrong */
    if (!json_is_true(json_object_get(reply, "ok"))) {
        if (data)
            el_tui_reply_ok(t, reply);
        return;
    }
    for (guint i = 0; i < t->convs->len; i++)
        ((tui_conv *)t->convs->pdata[i])->contact = 0;
    json_t *o;
    size_t i;
    json_array_foreach(json_object_get(reply, "contacts"), i, o) {
        const char *name, *peer = peer_of(o, &name);
        if (!peer)
            continue;
        char conv[80];
        snprintf(conv, sizeof conv, "p:%s", peer);
        tui_conv *c = el_tui_conv(t, conv, 1);
        if (!c)
            continue;
        c->contact = 1;
        if (json_is_boolean(json_object_get(o, "online")))
            c->online = json_is_true(json_object_get(o, "online"));
        set_name(t, peer, name);
    }
    g_ptr_array_set_size(t->requests, 0);
    json_array_foreach(json_object_get(reply, "incoming"), i, o) {
        const char *name, *peer = peer_of(json_object_get(o, "from"), &name);
        add_request(t, peer, name, json_string_value(json_object_get(o, "message")));
    }
    if (data)
        el_tui_notice(t, 0, "%u contacts, %u requests", (unsigned)json_array_size(json_object_get(reply, "contacts")),
                      t->requests->len);
    sort_convs(t);
}

static void got_groups(el_tui *t, json_t *reply, void *data)
{
    (void)data;
    json_t *o;
    size_t i;
    json_array_foreach(json_object_get(reply, "groups"), i, o) {
        const char *gid = json_string_value(json_object_get(o, "group_id"));
        char conv[80];
        snprintf(conv, sizeof conv, "g:%s", gid ? gid : "");
        tui_conv *c = el_tui_conv(t, conv, 1);
        if (!c)
            continue;
        const char *name = json_string_value(json_object_get(o, "name"));
        if (name) {
            g_free(c->name);
            c->name = g_strdup(name);
        }
        c->left = json_is_true(json_object_get(o, "left"));
    }
    sort_convs(t);
}

static void got_whoami(el_tui *t, json_t *reply, void *data)
{
    (void)data;
    const char *id = json_string_value(json_object_get(reply, "peer_id"));
    const char *name = json_string_value(json_object_get(reply, "name"));
    if (id) {
        g_free(t->me_id);
        t->me_id = g_strdup(id);
    }
    if (name) {
        g_free(t->me_name);
        t->me_name = g_strdup(name);
    }
    if (!t->signal && json_is_boolean(json_object_get(reply, "online")))
        t->signal = g_strdup(json_is_true(json_object_get(reply, "online")) ? "online" : "offline");
}

static void request_lists(el_tui *t, unsigned what)
{
    if (what & TUI_WANT_CONVS)
        el_tui_request(t, json_pack("{s:s}", "cmd", "conversations"), got_conversations, NULL, NULL);
    if (what & TUI_WANT_GROUPS)
        el_tui_request(t, json_pack("{s:s}", "cmd", "groups"), got_groups, NULL, NULL);
    if (what & TUI_WANT_PEERS)
        el_tui_request(t, json_pack("{s:s}", "cmd", "peers"), got_peers, NULL, NULL);
}

void el_tui_refresh_peers(el_tui *t)
{
    el_tui_request(t, json_pack("{s:s}", "cmd", "peers"), got_peers, t, NULL);
    el_tui_want(t, TUI_WANT_CONVS | TUI_WANT_GROUPS);
}

/* ---- the model: messages of the shown conversation ----------------------------------------- */

static int64_t msg_row(json_t *m)
{
    return json_integer_value(json_object_get(m, "row"));
}

static gint row_cmp(gconstpointer a, gconstpointer b)
{
    int64_t x = msg_row(*(json_t *const *)a), y = msg_row(*(json_t *const *)b);
    return x < y ? -1 : x > y;
}

/* Rows are unique and stable: a row we hold is replaced (its state may
 * have changed), a new one is added, and the list stays in row order. */
static void merge_messages(el_tui *t, json_t *list)
{
    json_t *m;
    size_t i;
    int added = 0;
    json_array_foreach(list, i, m) {
        int64_t row = msg_row(m);
        guint j = t->msgs->len;
        while (j > 0 && msg_row(t->msgs->pdata[j - 1]) != row)
            j--;
        if (j > 0) {
            json_decref(t->msgs->pdata[j - 1]);
            t->msgs->pdata[j - 1] = json_incref(m);
        } else {
            g_ptr_array_add(t->msgs, json_incref(m));
            added = 1;
        }
    }
    if (added)
        g_ptr_array_sort(t->msgs, row_cmp);
}

static void mark_read(el_tui *t);

typedef struct {
    char *conv;
    int64_t before;
} history_ask;

static void history_ask_free(gpointer p)
{
    history_ask *h = p;
    g_free(h->conv);
    g_free(h);
}

static void got_history(el_tui *t, json_t *reply, void *data)
{
    history_ask *h = data;
    if (!is_shown(t, h->conv))
        return; /* the user moved on */
    if (h->before)
        t->loading_older = 0;
    if (!el_tui_reply_ok(t, reply))
        return;
    json_t *list = json_object_get(reply, "messages");
    int first = t->msgs->len == 0;
    merge_messages(t, list);
    if (h->before || first)
        t->more = json_array_size(list) >= TUI_PAGE;
    json_t *m;
    size_t i;
    json_array_foreach(list, i, m) {
        if (!json_is_true(json_object_get(m, "outgoing")) &&
            json_integer_value(json_object_get(m, "read_at")) == 0) {
            mark_read(t);
            break;
        }
    }
}

/* before = 0: the newest page (merged into what we hold); else the page
 * older than that row (scrollback). */
static void load_history(el_tui *t, const char *conv, int64_t before)
{
    history_ask *h = g_new0(history_ask, 1);
    h->conv = g_strdup(conv);
    h->before = before;
    json_t *req = json_pack("{s:s, s:s, s:i}", "cmd", "history", "conv", conv, "limit", TUI_PAGE);
    if (req && before)
        json_object_set_new(req, "before", json_integer(before));
    el_tui_request(t, req, got_history, h, history_ask_free);
}

static void got_read(el_tui *t, json_t *reply, void *data)
{
    char *conv = data;
    if (!json_is_true(json_object_get(reply, "ok")))
        return;
    tui_conv *c = el_tui_conv(t, conv, 0);
    if (c)
        c->unread = 0;
}

/* Only what the user can see is read: not behind an overlay. */
static void mark_read(el_tui *t)
{
    if (!t->sel || t->overlay)
        return;
    el_tui_request(t, json_pack("{s:s, s:s}", "cmd", "read", "conv", t->sel), got_read,
                   g_strdup(t->sel), g_free);
}

void el_tui_select(el_tui *t, const char *conv)
{
    if (conv && is_shown(t, conv))
        return;
    typing_stop(t);
    el_tui_close_overlay(t);
    g_free(t->sel);
    t->sel = g_strdup(conv);
    g_ptr_array_set_size(t->msgs, 0);
    t->scroll = 0;
    t->more = 0;
    t->loading_older = 0;
    if (conv) {
        el_tui_conv(t, conv, 1);
        load_history(t, conv, 0);
    }
    el_tui_dirty(t);
}

json_t *el_tui_msg_by_id(el_tui *t, const char *id)
{
    for (guint i = t->msgs->len; id && i > 0; i--) {
        const char *mid = json_string_value(json_object_get(t->msgs->pdata[i - 1], "id"));
        if (mid && !strcmp(mid, id))
            return t->msgs->pdata[i - 1];
    }
    return NULL;
}

static json_t *msg_by_file(el_tui *t, const char *file_id)
{
    for (guint i = t->msgs->len; file_id && i > 0; i--) {
        json_t *f = json_object_get(t->msgs->pdata[i - 1], "file");
        const char *fid = json_string_value(json_object_get(f, "file_id"));
        if (fid && !strcmp(fid, file_id))
            return t->msgs->pdata[i - 1];
    }
    return NULL;
}

void el_tui_apply_edit(el_tui *t, const char *id, const char *text)
{
    json_t *m = el_tui_msg_by_id(t, id);
    if (m && text) {
        json_object_set_new(m, "text", json_string(text));
        json_object_set_new(m, "edited", json_true());
    }
}

void el_tui_apply_delete(el_tui *t, const char *id)
{
    json_t *m = el_tui_msg_by_id(t, id);
    if (m) {
        json_object_set_new(m, "text", json_string(""));
        json_object_set_new(m, "deleted", json_true());
    }
}

void el_tui_apply_reaction(el_tui *t, const char *id, const char *from, const char *emoji,
                           int remove)
{
    json_t *m = el_tui_msg_by_id(t, id);
    if (!m || !from || !emoji)
        return;
    json_t *list = json_object_get(m, "reactions");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(m, "reactions", list);
    }
    json_t *r;
    size_t i;
    json_array_foreach(list, i, r) {
        const char *f = json_string_value(json_object_get(r, "from"));
        const char *e = json_string_value(json_object_get(r, "emoji"));
        if (f && e && !strcmp(f, from) && !strcmp(e, emoji)) {
            if (remove)
                json_array_remove(list, i);
            return;
        }
    }
    if (!remove)
        json_array_append_new(list, json_pack("{s:s, s:s}", "from", from, "emoji", emoji));
}

/* ---- overlays -------------------------------------------------------------------------- */

void el_tui_show_overlay(el_tui *t, const char *title, GPtrArray *lines)
{
    el_tui_close_overlay(t);
    t->overlay = g_new0(tui_overlay, 1);
    t->overlay->title = g_strdup(title);
    t->overlay->lines = lines;
    el_tui_dirty(t);
}

void el_tui_close_overlay(el_tui *t)
{
    if (!t->overlay)
        return;
    g_free(t->overlay->title);
    g_ptr_array_free(t->overlay->lines, TRUE);
    g_free(t->overlay);
    t->overlay = NULL;
    /* what arrived while it covered the conversation is seen now */
    tui_conv *c = el_tui_conv(t, t->sel, 0);
    if (c && c->unread)
        mark_read(t);
    el_tui_dirty(t);
}

/* ---- events ------------------------------------------------------------------------------ */

#define S(ev, key) json_string_value(json_object_get((ev), (key)))

static void ev_signal(el_tui *t, json_t *ev)
{
    const char *state = S(ev, "state");
    if (!state)
        return;
    int was_online = t->signal && !strcmp(t->signal, "online");
    g_free(t->signal);
    t->signal = g_strdup(state);
    if (!strcmp(state, "online") && !was_online)
        el_tui_want(t, TUI_WANT_ALL); /* contacts and presence need the server */
}

static void ev_login(el_tui *t, json_t *ev)
{
    if (S(ev, "peer_id")) {
        g_free(t->me_id);
        t->me_id = g_strdup(S(ev, "peer_id"));
    }
    if (S(ev, "name")) {
        g_free(t->me_name);
        t->me_name = g_strdup(S(ev, "name"));
    }
}

static tui_conv *peer_conv(el_tui *t, const char *peer, int create)
{
    if (!peer)
        return NULL;
    char conv[80];
    snprintf(conv, sizeof conv, "p:%s", peer);
    return el_tui_conv(t, conv, create);
}

static void ev_presence(el_tui *t, json_t *ev)
{
    const char *peer = S(ev, "peer_id");
    set_name(t, peer, S(ev, "name"));
    tui_conv *c = peer_conv(t, peer, 1);
    if (c) {
        c->online = json_is_true(json_object_get(ev, "online"));
        sort_convs(t);
    }
}

static void ev_contact_request(el_tui *t, json_t *ev)
{
    const char *name, *peer = peer_of(json_object_get(ev, "from"), &name);
    if (!name)
        name = S(ev, "name");
    add_request(t, peer, name, S(ev, "message"));
    char buf[16];
    const char *who = el_tui_name(t, peer, buf);
    const char *msg = S(ev, "message");
    el_tui_notice(t, 0, "contact request from %s%s%s%s: /accept %s or /refuse %s", who,
                  msg ? " (\"" : "", msg ? msg : "", msg ? "\")" : "", who, who);
    beep();
}

static void ev_contact_added(el_tui *t, json_t *ev)
{
    const char *peer = S(ev, "peer_id");
    set_name(t, peer, S(ev, "name"));
    drop_request(t, peer);
    tui_conv *c = peer_conv(t, peer, 1);
    if (c)
        c->contact = 1;
    char buf[16];
    el_tui_notice(t, 0, "%s is a contact now", el_tui_name(t, peer, buf));
    sort_convs(t);
    el_tui_want(t, TUI_WANT_PEERS);
}

static void ev_contact_gone(el_tui *t, json_t *ev)
{
    const char *peer = S(ev, "peer_id");
    const char *what = S(ev, "event");
    drop_request(t, peer);
    char buf[16];
    el_tui_notice(t, 0, "%s %s", el_tui_name(t, peer, buf),
                  !strcmp(what, "contact_refused") ? "refused the request" : "is no longer a contact");
    el_tui_want(t, TUI_WANT_PEERS);
}

static void ev_link(el_tui *t, json_t *ev)
{
    tui_conv *c = peer_conv(t, S(ev, "peer_id"), 0);
    if (c && S(ev, "state")) {
        g_free(c->link);
        c->link = g_strdup(S(ev, "state"));
    }
}

static void ev_key_changed(el_tui *t, json_t *ev)
{
    char buf[16];
    el_tui_notice(t, 1, "the key of %s changed: compare /verify, then /accept-key",
                  el_tui_name(t, S(ev, "peer_id"), buf));
    beep();
}

static void ev_message(el_tui *t, json_t *ev)
{
    const char *conv = S(ev, "conv"), *from = S(ev, "from");
    tui_conv *c = el_tui_conv(t, conv, 1);
    if (!c)
        return;
    int mine = from && t->me_id && !strcmp(from, t->me_id);
    if (from)
        g_hash_table_remove(c->typing, from);
    if (!mine) {
        beep();
        if (!is_shown(t, conv) || t->overlay)
            c->unread++;
    }
    c->last_ts = json_integer_value(json_object_get(ev, "ts"));
    if (!t->sel)
        el_tui_select(t, conv);
    else if (is_shown(t, conv))
        el_tui_want(t, TUI_WANT_NEW);
    sort_convs(t);
    el_tui_want(t, TUI_WANT_CONVS);
}

static int status_rank(const char *s)
{
    if (!s)
        return 0;
    if (!strcmp(s, "read"))
        return 3;
    if (!strcmp(s, "delivered"))
        return 2;
    return 1; /* pending, sent */
}

static void ev_status(el_tui *t, json_t *ev)
{
    json_t *m = el_tui_msg_by_id(t, S(ev, "id"));
    if (!m)
        return;
    if (t->sel[0] == 'g') {
        /* a group message is delivered when every member has it: ask */
        el_tui_want(t, TUI_WANT_NEW);
        return;
    }
    const char *st = S(ev, "status");
    if (status_rank(st) > status_rank(S(m, "status")) && status_rank(st) > 1)
        json_object_set_new(m, "status", json_string(st));
}

static void ev_typing(el_tui *t, json_t *ev)
{
    tui_conv *c = el_tui_conv(t, S(ev, "conv"), 0);
    const char *from = S(ev, "from");
    if (!c || !from)
        return;
    if (json_is_true(json_object_get(ev, "typing"))) {
        gint64 *until = g_new(gint64, 1);
        *until = g_get_monotonic_time() + TUI_TYPING_SHOWN_US;
        g_hash_table_replace(c->typing, g_strdup(from), until);
    } else {
        g_hash_table_remove(c->typing, from);
    }
}

static void ev_reaction(el_tui *t, json_t *ev)
{
    if (is_shown(t, S(ev, "conv")))
        el_tui_apply_reaction(t, S(ev, "target"), S(ev, "from"), S(ev, "emoji"),
                              json_is_true(json_object_get(ev, "remove")));
}

static void ev_edit(el_tui *t, json_t *ev)
{
    if (is_shown(t, S(ev, "conv")))
        el_tui_apply_edit(t, S(ev, "target"), S(ev, "text"));
}

static void ev_delete(el_tui *t, json_t *ev)
{
    if (is_shown(t, S(ev, "conv")))
        el_tui_apply_delete(t, S(ev, "target"));
}

static void ev_file_offer(el_tui *t, json_t *ev)
{
    const char *from = S(ev, "from");
    if (from && t->me_id && !strcmp(from, t->me_id))
        return;
    char buf[16];
    el_tui_notice(t, 0, "%s offers %s \"%s\" (%" JSON_INTEGER_FORMAT " bytes): /accept-file N",
                  el_tui_name(t, from, buf), json_integer_value(json_object_get(ev, "voice_ms")) ? "a voice message" : "a file",
                  S(ev, "name") ? S(ev, "name") : "?", json_integer_value(json_object_get(ev, "size")));
    ev_message(t, ev);
}

static json_t *file_of(el_tui *t, json_t *ev)
{
    if (!is_shown(t, S(ev, "conv")))
        return NULL;
    json_t *m = msg_by_file(t, S(ev, "file_id"));
    return m ? json_object_get(m, "file") : NULL;
}

static void ev_file_progress(el_tui *t, json_t *ev)
{
    json_t *f = file_of(t, ev);
    if (f) {
        json_object_set(f, "offset", json_object_get(ev, "bytes"));
        json_object_set_new(f, "state", json_string("active"));
    }
}

static void ev_file_complete(el_tui *t, json_t *ev)
{
    json_t *f = file_of(t, ev);
    if (f) {
        json_object_set(f, "offset", json_object_get(f, "size"));
        json_object_set_new(f, "state", json_string("complete"));
        if (S(ev, "path"))
            json_object_set(f, "path", json_object_get(ev, "path"));
    }
    const char *dir = S(ev, "direction");
    if (dir && !strcmp(dir, "in"))
        el_tui_notice(t, 0, "received %s", S(ev, "path") ? S(ev, "path") : "a file");
}

static void ev_file_failed(el_tui *t, json_t *ev)
{
    const char *e = S(ev, "error") ? S(ev, "error") : "failed";
    json_t *f = file_of(t, ev);
    if (f) {
        json_object_set_new(f, "state", json_string(g_str_has_prefix(e, "cancelled") ? "cancelled" : "failed"));
        json_object_set_new(f, "error", json_string(e));
    }
    el_tui_notice(t, 1, "file transfer: %s", e);
}

static void ev_group(el_tui *t, json_t *ev)
{
    const char *change = S(ev, "change");
    if (change)
        el_tui_notice(t, 0, "group %s: %s", S(ev, "name") ? S(ev, "name") : "?", change);
    el_tui_want(t, TUI_WANT_GROUPS | TUI_WANT_CONVS);
    if (t->sel && t->sel[0] == 'g')
        el_tui_want(t, TUI_WANT_NEW); /* system lines ("X left") */
}

static void ev_error(el_tui *t, json_t *ev)
{
    el_tui_notice(t, 1, "%s", S(ev, "message") ? S(ev, "message") : "error");
}

static const struct {
    const char *name;
    void (*fn)(el_tui *t, json_t *ev);
} events[] = {
    {"signal", ev_signal},
    {"login", ev_login},
    {"presence", ev_presence},
    {"contact_request", ev_contact_request},
    {"contact_added", ev_contact_added},
    {"contact_refused", ev_contact_gone},
    {"contact_removed", ev_contact_gone},
    {"link", ev_link},
    {"key_changed", ev_key_changed},
    {"message", ev_message},
    {"status", ev_status},
    {"typing", ev_typing},
    {"reaction", ev_reaction},
    {"edit", ev_edit},
    {"delete", ev_delete},
    {"file_offer", ev_file_offer},
    {"file_progress", ev_file_progress},
    {"file_complete", ev_file_complete},
    {"file_failed", ev_file_failed},
    {"group", ev_group},
    {"error", ev_error},
};

static void on_event(el_app *app, json_t *ev, void *user)
{
    tui_handle *h = user;
    (void)app;
    const char *name = S(ev, "event");
    if (!h->t || !name)
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(events); i++) {
        if (!strcmp(name, events[i].name)) {
            events[i].fn(h->t, ev);
            el_tui_dirty(h->t);
            return;
        }
    }
}

/* ---- typing ------------------------------------------------------------------------------ */

static void typing_stop(el_tui *t)
{
    drop_source(&t->typing_idle);
    if (!t->typing_conv)
        return;
    el_tui_request(t, json_pack("{s:s, s:s, s:b}", "cmd", "typing", "conv", t->typing_conv, "typing", 0),
                   quiet_reply, NULL, NULL);
    g_free(t->typing_conv);
    t->typing_conv = NULL;
}

static gboolean typing_idle(gpointer user)
{
    el_tui *t = user;
    g_source_unref(t->typing_idle);
    t->typing_idle = NULL;
    typing_stop(t);
    return G_SOURCE_REMOVE;
}

/* A key that changed a draft message (not a /command). */
static void typing_poke(el_tui *t)
{
    const gunichar *chars = el_tui_edit_chars(t->edit);
    size_t len = el_tui_edit_len(t->edit);
    if (!t->sel || (len > 0 && chars[0] == '/'))
        return;
    if (len == 0) {
        typing_stop(t);
        return;
    }
    if (!t->typing_conv) {
        t->typing_conv = g_strdup(t->sel);
        el_tui_request(t, json_pack("{s:s, s:s, s:b}", "cmd", "typing", "conv", t->sel, "typing", 1),
                       quiet_reply, NULL, NULL);
    }
    drop_source(&t->typing_idle);
    t->typing_idle = add_timeout(t, TUI_TYPING_IDLE_MS, typing_idle);
}

static gboolean tick(gpointer user)
{
    el_tui *t = user;
    gint64 now = g_get_monotonic_time();
    for (guint i = 0; i < t->convs->len; i++) {
        tui_conv *c = t->convs->pdata[i];
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, c->typing);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            if (*(gint64 *)v < now) {
                g_hash_table_iter_remove(&it);
                el_tui_dirty(t);
            }
        }
    }
    return G_SOURCE_CONTINUE;
}

/* ---- keyboard ---------------------------------------------------------------------------- */

static void sent_push(el_tui *t, const char *line)
{
    if (t->sent->len > 0 && !strcmp(t->sent->pdata[t->sent->len - 1], line))
        return;
    if (t->sent->len >= SENT_MAX)
        g_ptr_array_remove_index(t->sent, 0);
    g_ptr_array_add(t->sent, g_strdup(line));
}

static void sent_browse(el_tui *t, int dir)
{
    int n = (int)t->sent->len;
    if (n == 0)
        return;
    int pos = t->sent_pos < 0 ? n : t->sent_pos;
    pos += dir;
    if (pos < 0)
        pos = 0;
    if (pos >= n) {
        t->sent_pos = -1;
        el_tui_edit_set(t->edit, NULL);
        return;
    }
    t->sent_pos = pos;
    el_tui_edit_set(t->edit, t->sent->pdata[pos]);
}

static void got_sent(el_tui *t, json_t *reply, void *data)
{
    (void)data;
    if (el_tui_reply_ok(t, reply))
        el_tui_want(t, TUI_WANT_NEW | TUI_WANT_CONVS);
}

static void send_text(el_tui *t, const char *text)
{
    if (!t->sel) {
        el_tui_notice(t, 1, "no conversation open: /open PEER, or /help");
        return;
    }
    typing_stop(t);
    t->scroll = 0;
    el_tui_request(t, json_pack("{s:s, s:s, s:s}", "cmd", "send", "to", t->sel, "text", text), got_sent,
                   NULL, NULL);
}

static void submit(el_tui *t)
{
    char *line = el_tui_edit_text(t->edit);
    el_tui_edit_set(t->edit, NULL);
    t->edit_first = 0;
    t->sent_pos = -1;
    if (*g_strstrip(line)) {
        sent_push(t, line);
        if (line[0] == '/' && line[1] != '/')
            el_tui_command(t, line);
        else
            send_text(t, line[0] == '/' ? line + 1 : line); /* "//x" sends "/x" */
    }
    g_free(line);
}

static void cycle(el_tui *t, int dir)
{
    int n = (int)t->convs->len;
    if (n == 0)
        return;
    int cur = -1;
    for (int i = 0; i < n; i++)
        if (is_shown(t, ((tui_conv *)t->convs->pdata[i])->conv))
            cur = i;
    int next = cur < 0 ? 0 : ((cur + dir) % n + n) % n;
    el_tui_select(t, ((tui_conv *)t->convs->pdata[next])->conv);
}

static void scroll_page(el_tui *t, int dir)
{
    int page = el_tui_pane_rows(t) - 1;
    if (page < 1)
        page = 1;
    if (t->overlay) {
        t->overlay->scroll += dir * page;
        if (t->overlay->scroll < 0)
            t->overlay->scroll = 0;
        return;
    }
    t->scroll += dir * page;
    if (t->scroll < 0)
        t->scroll = 0;
    el_tui_draw(t); /* clamps t->scroll to what there is */
    if (dir > 0 && t->scroll_at_top && t->more && !t->loading_older && t->msgs->len > 0 && t->sel) {
        t->loading_older = 1;
        load_history(t, t->sel, msg_row(t->msgs->pdata[0]));
    }
}

static void resized(el_tui *t)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        resize_term(ws.ws_row, ws.ws_col);
    clearok(curscr, TRUE);
}

static void edit_op(el_tui *t, el_tui_edit_op op)
{
    size_t before = el_tui_edit_len(t->edit);
    el_tui_edit_apply(t->edit, op);
    if (el_tui_edit_len(t->edit) != before)
        typing_poke(t);
}

static void on_function_key(el_tui *t, wint_t k)
{
    switch (k) {
    case KEY_ENTER: submit(t); break;
    case KEY_BACKSPACE: edit_op(t, EL_TUI_EDIT_BACKSPACE); break;
    case KEY_DC: edit_op(t, EL_TUI_EDIT_DELETE); break;
    case KEY_LEFT: edit_op(t, EL_TUI_EDIT_LEFT); break;
    case KEY_RIGHT: edit_op(t, EL_TUI_EDIT_RIGHT); break;
    case KEY_HOME: edit_op(t, EL_TUI_EDIT_HOME); break;
    case KEY_END: edit_op(t, EL_TUI_EDIT_END); break;
    case KEY_UP: sent_browse(t, -1); break;
    case KEY_DOWN: sent_browse(t, 1); break;
    case KEY_PPAGE: scroll_page(t, 1); break;
    case KEY_NPAGE: scroll_page(t, -1); break;
    case KEY_BTAB:
    case TUI_KEY_ALT_UP: cycle(t, -1); break;
    case TUI_KEY_ALT_DOWN: cycle(t, 1); break;
    case KEY_RESIZE: clearok(curscr, TRUE); break; /* curses resized itself */
    default: break;
    }
}

static void on_char(el_tui *t, wint_t c)
{
    switch (c) {
    case '\r':
    case '\n': submit(t); break;
    case 3: t->quit = 1; break;                /* Ctrl-C */
    case 4:                                    /* Ctrl-D: quit on an empty line */
        if (el_tui_edit_len(t->edit) == 0)
            t->quit = 1;
        else
            edit_op(t, EL_TUI_EDIT_DELETE);
        break;
    case '\t':
    case 14: cycle(t, 1); break;               /* Tab, Ctrl-N */
    case 16: cycle(t, -1); break;              /* Ctrl-P */
    case 1: edit_op(t, EL_TUI_EDIT_HOME); break;
    case 5: edit_op(t, EL_TUI_EDIT_END); break;
    case 2: edit_op(t, EL_TUI_EDIT_LEFT); break;
    case 6: edit_op(t, EL_TUI_EDIT_RIGHT); break;
    case 21: edit_op(t, EL_TUI_EDIT_KILL_START); break;
    case 11: edit_op(t, EL_TUI_EDIT_KILL_END); break;
    case 23: edit_op(t, EL_TUI_EDIT_KILL_WORD); break;
    case 8:
    case 127: edit_op(t, EL_TUI_EDIT_BACKSPACE); break;
    case 12: clearok(curscr, TRUE); break;     /* Ctrl-L */
    case 27:                                   /* Esc */
        if (t->overlay)
            el_tui_close_overlay(t);
        else
            t->notice[0] = 0;
        break;
    default:
        if (el_tui_edit_insert(t->edit, (gunichar)c) == 0)
            typing_poke(t);
        break;
    }
}

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer user)
{
    el_tui *t = user;
    (void)fd;
    for (;;) {
        wint_t ch;
        int r = wget_wch(stdscr, &ch);
        if (r == ERR)
            break;
        if (r == KEY_CODE_YES)
            on_function_key(t, ch);
        else
            on_char(t, ch);
        if (t->quit)
            return G_SOURCE_CONTINUE;
    }
    if (cond & (G_IO_HUP | G_IO_ERR)) {
        t->quit = 1; /* the terminal went away */
        return G_SOURCE_CONTINUE;
    }
    drop_source(&t->redraw_src);
    el_tui_draw(t);
    return G_SOURCE_CONTINUE;
}

static gboolean on_winch(gpointer user)
{
    el_tui *t = user;
    resized(t);
    el_tui_draw(t);
    return G_SOURCE_CONTINUE;
}

static gboolean on_quit_signal(gpointer user)
{
    el_tui *t = user;
    t->quit = 1;
    return G_SOURCE_CONTINUE;
}

/* ---- the screen -------------------------------------------------------------------------- */

/* Library log lines would scribble over the screen: errors go to the
 * notice line, the rest nowhere while the UI runs (ECHOLINK_LOG=debug
 * with `echolink listen` is the place to read them). */
static void log_sink(el_log_level level, const char *file, int line, const char *msg, void *user)
{
    (void)file, (void)line;
    if (level == EL_LOG_ERROR)
        el_tui_notice(user, 1, "%s", msg);
}

static void define_keys(void)
{
    /* xterm and tmux send these for Alt-Up/Down; terminfo may not list them */
    define_key("\033[1;3A", TUI_KEY_ALT_UP);
    define_key("\033[1;3B", TUI_KEY_ALT_DOWN);
    define_key("\033\033[A", TUI_KEY_ALT_UP);
    define_key("\033\033[B", TUI_KEY_ALT_DOWN);
}

static int screen_open(el_tui *t, char *err, size_t errlen)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return el_seterr(err, errlen, EL_ERR_INVALID, "chat needs a terminal (stdin and stdout)");
    setlocale(LC_ALL, "");
    t->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
    t->screen = newterm(NULL, stdout, stdin);
    if (!t->screen)
        return el_seterr(err, errlen, EL_ERR_INVALID, "cannot use the terminal (TERM=%s)",
                         getenv("TERM") ? getenv("TERM") : "");
    set_term(t->screen);
    raw(); /* Ctrl-C and Ctrl-Z are keys: Ctrl-C quits cleanly */
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    define_keys();
    t->colors = has_colors() && !getenv("NO_COLOR");
    if (t->colors)
        el_tui_colors_init(t);
    el_log_set_sink(log_sink, t);
    return 0;
}

static void screen_close(el_tui *t)
{
    if (!t->screen)
        return;
    el_log_set_sink(NULL, NULL);
    endwin();
    delscreen(t->screen);
    t->screen = NULL;
}

static GSource *attach(el_tui *t, GSource *src, GSourceFunc fn)
{
    g_source_set_callback(src, fn, t, NULL);
    g_source_attach(src, t->ctx);
    return src;
}

static void sources_open(el_tui *t)
{
    GSource *in = g_unix_fd_source_new(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(in, (GSourceFunc)(void (*)(void))on_stdin, t, NULL);
    g_source_attach(in, t->ctx);
    t->stdin_src = in;
    t->winch_src = attach(t, g_unix_signal_source_new(SIGWINCH), on_winch);
    t->int_src = attach(t, g_unix_signal_source_new(SIGINT), on_quit_signal);
    t->term_src = attach(t, g_unix_signal_source_new(SIGTERM), on_quit_signal);
    t->hup_src = attach(t, g_unix_signal_source_new(SIGHUP), on_quit_signal);
    t->tick_src = add_timeout(t, 1000, tick);
}

static void sources_close(el_tui *t)
{
    drop_source(&t->stdin_src);
    drop_source(&t->winch_src);
    drop_source(&t->int_src);
    drop_source(&t->term_src);
    drop_source(&t->hup_src);
    drop_source(&t->tick_src);
    drop_source(&t->redraw_src);
    drop_source(&t->refresh_src);
    drop_source(&t->typing_idle);
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static el_tui *tui_new(el_app *app, GMainContext *ctx)
{
    el_tui *t = g_new0(el_tui, 1);
    t->app = app;
    t->ctx = ctx;
    t->handle = g_new0(tui_handle, 1);
    t->handle->t = t;
    t->convs = g_ptr_array_new_with_free_func(conv_free);
    t->requests = g_ptr_array_new_with_free_func(req_free);
    t->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)json_decref);
    t->edit = el_tui_edit_new();
    t->sent = g_ptr_array_new_with_free_func(g_free);
    t->sent_pos = -1;
    t->pending = g_ptr_array_new();
    t->me_id = g_strdup(el_app_peer_id(app));
    return t;
}

static void tui_free(el_tui *t)
{
    for (guint i = 0; i < t->pending->len; i++)
        ((tui_pending *)t->pending->pdata[i])->t = NULL;
    g_ptr_array_free(t->pending, TRUE);
    el_app_remove_listener(t->app, on_event, t->handle);
    g_free(t->handle);
    el_tui_close_overlay(t);
    g_ptr_array_free(t->convs, TRUE);
    g_ptr_array_free(t->requests, TRUE);
    g_hash_table_destroy(t->names);
    g_ptr_array_free(t->msgs, TRUE);
    el_tui_edit_free(t->edit);
    g_ptr_array_free(t->sent, TRUE);
    g_free(t->sel);
    g_free(t->typing_conv);
    g_free(t->me_id);
    g_free(t->me_name);
    g_free(t->signal);
    g_free(t);
}

int el_tui_run(el_app *app, GMainContext *ctx, char *err, size_t errlen)
{
    el_tui *t = tui_new(app, ctx);
    if (screen_open(t, err, errlen) != 0) {
        screen_close(t);
        tui_free(t);
        return EL_EXIT_USAGE;
    }
    sources_open(t);
    el_app_add_listener(app, on_event, t->handle);
    el_tui_notice(t, 0, "Tab switches conversations, /help lists the commands");
    el_tui_request(t, json_pack("{s:s}", "cmd", "whoami"), got_whoami, NULL, NULL);
    request_lists(t, TUI_WANT_ALL);
    el_tui_draw(t);
    while (!t->quit)
        g_main_context_iteration(ctx, TRUE);
    typing_stop(t);
    sources_close(t);
    screen_close(t);
    tui_free(t);
    return EL_EXIT_OK;
}
