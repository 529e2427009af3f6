/* app.c - the request handler every echolink front end shares (app.h). */
#include "app.h"

#include "base/err.h"
#include "base/log.h"
#include "client/ctl.h"
#include "client/history.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    el_app_listener fn;
    void *user;
} listener;

struct el_app {
    GMainContext *ctx;
    el_profile *prof;
    const el_identity *id;
    el_session *sess;
    el_ctl_server *ctl;
    int serve_ctl;
    GArray *listeners;
};

/* One request in flight. */
typedef struct {
    el_app *app;
    el_app_reply_cb cb;
    void *user;
} req;

typedef void (*handler)(req *r, json_t *a);

/* ---- replies ------------------------------------------------------------------ */

static void done(req *r, json_t *reply)
{
    if (!reply)
        reply = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "out of memory", "code", "software");
    if (!json_object_get(reply, "ok"))
        json_object_set_new(reply, "ok", json_true());
    if (r->cb)
        r->cb(r->app, reply, r->user);
    json_decref(reply);
    free(r);
}

static const char *code_name(int rc)
{
    switch (rc) {
    case EL_ERR_INVALID:
    case EL_ERR_TOO_LARGE: return "invalid";
    case EL_ERR_NOT_FOUND: return "not_found";
    case EL_ERR_EXISTS: return "exists";
    case EL_ERR_DENIED: return "denied";
    case EL_ERR_STATE: return "state";
    case EL_ERR_QUOTA: return "quota";
    case EL_ERR_IO:
    case EL_ERR_DB: return "io";
    default: return "software";
    }
}

static void fail(req *r, int rc, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void fail(req *r, int rc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    done(r, json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "code", code_name(rc)));
}

/* The reply of a session call that returned rc with err. */
static void result(req *r, int rc, const char *err, json_t *ok)
{
    if (rc < 0) {
        json_decref(ok);
        fail(r, rc, "%s", err && *err ? err : el_strerror(rc));
    } else {
        done(r, ok ? ok : json_object());
    }
}

int el_app_exit_code(json_t *reply)
{
    if (json_is_true(json_object_get(reply, "ok")))
        return EL_EXIT_OK;
    const char *c = json_string_value(json_object_get(reply, "code"));
    static const struct {
        const char *code;
        int exit;
    } map[] = {
        {"invalid", EL_EXIT_DATAERR},      {"not_found", EL_EXIT_NOINPUT},
        {"exists", EL_EXIT_DATAERR},       {"denied", EL_EXIT_NOPERM},
        {"state", EL_EXIT_DATAERR},        {"quota", EL_EXIT_TEMPFAIL},
        {"io", EL_EXIT_IOERR},             {"unavailable", EL_EXIT_UNAVAILABLE},
        {"not_allowed", EL_EXIT_NOPERM},   {"unknown_peer", EL_EXIT_NOINPUT},
        {"bad_request", EL_EXIT_DATAERR},  {"rate_limited", EL_EXIT_TEMPFAIL},
        {"timeout", EL_EXIT_UNAVAILABLE},  {"disconnected", EL_EXIT_UNAVAILABLE},
        {"cancelled", EL_EXIT_UNAVAILABLE},
        {"quota_exceeded", EL_EXIT_TEMPFAIL},
    };
    for (size_t i = 0; c && i < G_N_ELEMENTS(map); i++)
        if (!strcmp(c, map[i].code))
            return map[i].exit;
    return EL_EXIT_SOFTWARE;
}

/* ---- arguments ------------------------------------------------------------------ */

static const char *str(json_t *a, const char *key)
{
    return json_string_value(json_object_get(a, key));
}

/* A required string member; fails the request when missing. */
static const char *need(req *r, json_t *a, const char *key)
{
    const char *v = str(a, key);
    if (!v)
        fail(r, EL_ERR_INVALID, "\"%s\" (a string) is required", key);
    return v;
}

/* ---- messages ---------------------------------------------------------------------- */

static void cmd_send(req *r, json_t *a)
{
    const char *to = need(r, a, "to");
    const char *text = to ? need(r, a, "text") : NULL;
    if (!text)
        return;
    char id[33], err[256];
    int rc = el_session_send_text(r->app->sess, to, text, str(a, "reply_to"), id, err, sizeof err);
    result(r, rc, err, rc == 0 ? json_pack("{s:s}", "msg_id", id) : NULL);
}

static void cmd_send_file(req *r, json_t *a)
{
    const char *to = need(r, a, "to");
    const char *path = to ? need(r, a, "path") : NULL;
    if (!path)
        return;
    json_int_t voice = json_integer_value(json_object_get(a, "voice_ms"));
    if (voice < 0 || voice > 86400000) {
        fail(r, EL_ERR_INVALID, "voice_ms must be 0..86400000");
        return;
    }
    char id[33], err[256];
    int rc = el_session_send_file(r->app->sess, to, path, (uint32_t)voice, id, err, sizeof err);
    result(r, rc, err, rc == 0 ? json_pack("{s:s}", "file_id", id) : NULL);
}

static void cmd_react(req *r, json_t *a)
{
    const char *conv = need(r, a, "conv");
    const char *target = conv ? need(r, a, "target") : NULL;
    const char *emoji = target ? need(r, a, "emoji") : NULL;
    if (!emoji)
        return;
    char err[256];
    int rc = el_session_react(r->app->sess, conv, target, emoji,
                              json_is_true(json_object_get(a, "remove")), err, sizeof err);
    result(r, rc, err, NULL);
}

static void cmd_edit(req *r, json_t *a)
{
    const char *conv = need(r, a, "conv");
    const char *target = conv ? need(r, a, "target") : NULL;
    const char *text = target ? need(r, a, "text") : NULL;
    if (!text)
        return;
    char err[256];
    int rc = el_session_edit(r->app->sess, conv, target, text, err, sizeof err);
    result(r, rc, err, NULL);
}

static void cmd_delete(req *r, json_t *a)
{
    const char *conv = need(r, a, "conv");
    const char *target = conv ? need(r, a, "target") : NULL;
    if (!target)
        return;
    char err[256];
    int rc = el_session_delete(r->app->sess, conv, target, err, sizeof err);
    result(r, rc, err, NULL);
}

static void cmd_read(req *r, json_t *a)
{
    const char *conv = need(r, a, "conv");
    if (!conv)
        return;
    char err[256];
    int rc = el_session_mark_read(r->app->sess, conv, err, sizeof err);
    result(r, rc, err, rc >= 0 ? json_pack("{s:i}", "marked", rc) : NULL);
}

static void cmd_typing(req *r, json_t *a)
{
    const char *conv = need(r, a, "conv");
    if (!conv)
        return;
    int rc = el_session_send_typing(r->app->sess, conv, json_is_true(json_object_get(a, "typing")));
    result(r, rc, "not a conversation", NULL);
}

static void cmd_accept_file(req *r, json_t *a)
{
    const char *fid = need(r, a, "file_id");
    if (!fid)
        return;
    char err[256];
    int rc = el_session_accept_file(r->app->sess, fid, err, sizeof err);
    result(r, rc, err, NULL);
}

static void cmd_cancel_file(req *r, json_t *a)
{
    const char *fid = need(r, a, "file_id");
    if (!fid)
        return;
    char err[256];
    int rc = el_session_cancel_file(r->app->sess, fid, str(a, "reason"), err, sizeof err);
    result(r, rc, err, NULL);
}

/* ---- the server: contacts ------------------------------------------------------------ */

static void server_replied(el_session *s, json_t *ack, void *user)
{
    (void)s;
    req *r = user;
    json_t *reply = json_deep_copy(ack);
    if (!json_is_true(json_object_get(reply, "ok"))) {
        const char *e = str(ack, "error");
        const char *m = str(ack, "message");
        json_object_set_new(reply, "code", json_string(e ? e : "software"));
        if (m)
            json_object_set_new(reply, "error", json_string(m));
        else if (!strcmp(e ? e : "", "timeout") || !strcmp(e ? e : "", "disconnected"))
            json_object_set_new(reply, "error", json_string("the server did not answer"));
    }
    done(r, reply);
}

static void server_call(req *r, const char *op, json_t *arg)
{
    char err[256];
    int rc = el_session_server_call(r->app->sess, op, arg, server_replied, r, err, sizeof err);
    json_decref(arg);
    if (rc != 0)
        fail(r, rc, "%s", err);
}

static const char *need_peer(req *r, json_t *a)
{
    const char *p = need(r, a, "peer");
    if (p && !el_id_valid_peer_id(p)) {
        fail(r, EL_ERR_INVALID, "\"%s\" is not a peer ID (32 characters of a-z and 2-7)", p);
        return NULL;
    }
    return p;
}

static void cmd_add(req *r, json_t *a)
{
    const char *p = need_peer(r, a);
    if (p)
        server_call(r, "contact_request", json_pack("{s:s, s:s?}", "to", p, "message",
                                                    str(a, "message")));
}

static void respond(req *r, json_t *a, int accept)
{
    const char *p = need_peer(r, a);
    if (p)
        server_call(r, "contact_respond", json_pack("{s:s, s:b}", "peer_id", p, "accept", accept));
}

static void cmd_accept(req *r, json_t *a) { respond(r, a, 1); }
static void cmd_refuse(req *r, json_t *a) { respond(r, a, 0); }

static void peer_op(req *r, json_t *a, const char *op)
{
    const char *p = need_peer(r, a);
    if (p)
        server_call(r, op, json_pack("{s:s}", "peer_id", p));
}

static void cmd_remove(req *r, json_t *a) { peer_op(r, a, "contact_remove"); }
static void cmd_block(req *r, json_t *a) { peer_op(r, a, "block"); }
static void cmd_unblock(req *r, json_t *a) { peer_op(r, a, "unblock"); }

static void cmd_peers(req *r, json_t *a)
{
    (void)a;
    server_call(r, "get_contacts", json_object());
}

/* ---- local reads --------------------------------------------------------------------- */

static const char *status_name(el_hist_status st)
{
    switch (st) {
    case EL_HIST_PENDING: return "pending";
    case EL_HIST_DELIVERED: return "delivered";
    case EL_HIST_READ: return "read";
    default: return "incoming";
    }
}

typedef struct {
    el_hist *h;
    json_t *list;
} msg_list;

static int add_reaction(const char *reactor, const char *emoji, int64_t at, void *user)
{
    (void)at;
    json_array_append_new(user, json_pack("{s:s, s:s}", "from", reactor, "emoji", emoji));
    return 0;
}

static int add_file(const el_hist_file *f, void *user)
{
    json_object_set_new(user, "file",
                        json_pack("{s:s, s:s, s:I, s:s, s:I, s:s?, s:s, s:I, s:s?}", "file_id",
                                  f->file_id, "name", f->name, "size", (json_int_t)f->size, "state",
                                  el_hist_file_state_name(f->state), "offset", (json_int_t)f->offset,
                                  "path", f->path, "sha256", f->sha256, "voice_ms",
                                  (json_int_t)f->voice_ms, "error", f->error));
    return 0;
}

static int add_msg(const el_hist_msg *m, void *user)
{
    msg_list *ml = user;
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:b, s:s, s:s, s:s?, s:I, s:b, s:b, s:s, s:I}",
                          "row", (json_int_t)m->row, "conv", m->conv, "id", m->id, "from",
                          m->author, "outgoing", m->outgoing, "kind", el_hist_kind_name(m->kind),
                          "text", m->text, "reply_to", m->reply_to, "ts", (json_int_t)m->ts,
                          "edited", m->edited_at != 0, "deleted", m->deleted, "status",
                          status_name(m->status), "read_at", (json_int_t)m->read_at);
    json_t *reactions = json_array();
    el_hist_reaction_list(ml->h, m->conv, m->id, add_reaction, reactions, NULL, 0);
    json_object_set_new(o, "reactions", reactions);
    if (m->file_id)
        el_hist_file_get(ml->h, m->file_id, add_file, o, NULL, 0);
    json_array_append_new(ml->list, o);
    return 0;
}

static const char *norm_conv(req *r, json_t *a, char out[80])
{
    const char *c = need(r, a, "conv");
    if (!c)
        return NULL;
    if (strncmp(c, "p:", 2) && strncmp(c, "g:", 2))
        snprintf(out, 80, "%s%s", strlen(c) == 32 && el_id_valid_peer_id(c) ? "p:" : "g:", c);
    else
        snprintf(out, 80, "%s", c);
    return out;
}

static void cmd_history(req *r, json_t *a)
{
    char conv[80];
    if (!norm_conv(r, a, conv))
        return;
    json_int_t limit = json_integer_value(json_object_get(a, "limit"));
    json_int_t before = json_integer_value(json_object_get(a, "before"));
    msg_list ml = {el_session_history(r->app->sess), json_array()};
    char err[256];
    int rc = el_hist_msg_list(ml.h, conv, before, limit > 0 && limit <= 10000 ? (unsigned)limit : 50,
                              add_msg, &ml, err, sizeof err);
    result(r, rc, err, json_pack("{s:o}", "messages", ml.list));
}

static void cmd_search(req *r, json_t *a)
{
    const char *q = need(r, a, "query");
    if (!q)
        return;
    char conv[80];
    int has_conv = json_is_string(json_object_get(a, "conv"));
    const char *c = has_conv ? norm_conv(r, a, conv) : NULL;
    if (has_conv && !c)
        return;
    json_int_t limit = json_integer_value(json_object_get(a, "limit"));
    msg_list ml = {el_session_history(r->app->sess), json_array()};
    char err[256];
    int rc = el_hist_search(ml.h, q, c, limit > 0 && limit <= 1000 ? (unsigned)limit : 50, add_msg,
                            &ml, err, sizeof err);
    result(r, rc, err, json_pack("{s:o}", "messages", ml.list));
}

static int add_group(const el_hist_group *g, void *user)
{
    json_t *o = json_loadb(g->state, g->state_len, 0, NULL);
    json_t *st = json_object_get(o, "state");
    json_array_append_new(user, json_pack("{s:s, s:s, s:I, s:O?, s:O?, s:b}", "group_id",
                                          g->group_id, "name", g->name, "version",
                                          (json_int_t)g->version, "admins",
                                          json_object_get(st, "admins"), "members",
                                          json_object_get(st, "members"), "left", g->left));
    json_decref(o);
    return 0;
}

static void cmd_groups(req *r, json_t *a)
{
    (void)a;
    json_t *list = json_array();
    char err[256];
    int rc = el_hist_group_list(el_session_history(r->app->sess), add_group, list, err, sizeof err);
    result(r, rc, err, json_pack("{s:o}", "groups", list));
}

typedef struct {
    el_hist *h;
    json_t *list;
} conv_list;

static int add_conv(const el_hist_conv *c, void *user)
{
    conv_list *cl = user;
    el_hist_peer p;
    const char *name = NULL;
    if (!strncmp(c->conv, "p:", 2) && el_hist_peer_get(cl->h, c->conv + 2, &p, NULL, 0) == 0 &&
        p.has_name)
        name = p.name;
    json_array_append_new(cl->list, json_pack("{s:s, s:s?, s:I, s:i}", "conv", c->conv, "name",
                                              name, "last_ts", (json_int_t)c->last_ts, "unread",
                                              (int)c->unread));
    return 0;
}

static void cmd_conversations(req *r, json_t *a)
{
    (void)a;
    conv_list cl = {el_session_history(r->app->sess), json_array()};
    char err[256];
    int rc = el_hist_conv_list(cl.h, add_conv, &cl, err, sizeof err);
    result(r, rc, err, json_pack("{s:o}", "conversations", cl.list));
}

static int add_transfer(const el_hist_file *f, void *user)
{
    json_t *o = json_object();
    add_file(f, o);
    json_t *file = json_incref(json_object_get(o, "file"));
    json_object_set_new(file, "outgoing", json_boolean(f->outgoing));
    json_object_set_new(file, "peer", json_string(f->peer));
    json_array_append_new(user, file);
    json_decref(o);
    return 0;
}

static void cmd_files(req *r, json_t *a)
{
    char conv[80];
    if (!norm_conv(r, a, conv))
        return;
    json_t *list = json_array();
    char err[256];
    int rc = el_hist_file_list_conv(el_session_history(r->app->sess), conv, add_transfer, list, err,
                                    sizeof err);
    result(r, rc, err, json_pack("{s:o}", "files", list));
}

/* ---- groups ---------------------------------------------------------------------------- */

static void group_created(el_session *s, json_t *ack, void *user)
{
    server_replied(s, ack, user);
}

static void cmd_group_create(req *r, json_t *a)
{
    const char *name = need(r, a, "name");
    if (!name)
        return;
    json_t *m = json_object_get(a, "members");
    size_t n = json_array_size(m);
    const char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_string_value(json_array_get(m, i)) ? json_string_value(json_array_get(m, i))
                                                       : "";
    char err[256];
    int rc = v ? el_session_group_create(r->app->sess, name, v, n, group_created, r, err, sizeof err)
               : EL_ERR_NOMEM;
    free(v);
    if (rc != 0)
        fail(r, rc, "%s", err);
}

typedef int (*group_fn)(el_session *, const char *, const char *, char *, size_t);

static void group_op(req *r, json_t *a, group_fn fn, const char *key)
{
    const char *gid = need(r, a, "group_id");
    const char *arg = gid ? need(r, a, key) : NULL;
    if (!arg)
        return;
    char err[256];
    result(r, fn(r->app->sess, gid, arg, err, sizeof err), err, NULL);
}

static void cmd_group_add(req *r, json_t *a) { group_op(r, a, el_session_group_add, "peer"); }
static void cmd_group_remove(req *r, json_t *a) { group_op(r, a, el_session_group_remove, "peer"); }
static void cmd_group_admin(req *r, json_t *a) { group_op(r, a, el_session_group_set_admin, "peer"); }
static void cmd_group_rename(req *r, json_t *a) { group_op(r, a, el_session_group_rename, "name"); }

static void cmd_group_leave(req *r, json_t *a)
{
    const char *gid = need(r, a, "group_id");
    if (!gid)
        return;
    char err[256];
    result(r, el_session_group_leave(r->app->sess, gid, err, sizeof err), err, NULL);
}

/* ---- trust and introspection --------------------------------------------------------------- */

static void cmd_verify(req *r, json_t *a)
{
    const char *p = need_peer(r, a);
    if (!p)
        return;
    char num[128], err[256];
    int rc = el_session_safety_number(r->app->sess, p, num, sizeof num, err, sizeof err);
    int confirm = json_is_true(json_object_get(a, "confirm"));
    if (rc == 0 && confirm)
        rc = el_session_set_verified(r->app->sess, p, err, sizeof err);
    result(r, rc, err, rc == 0 ? json_pack("{s:s, s:b}", "safety", num, "verified", confirm) : NULL);
}

static void cmd_accept_key(req *r, json_t *a)
{
    const char *p = need_peer(r, a);
    if (!p)
        return;
    char err[256];
    result(r, el_session_accept_key_change(r->app->sess, p, err, sizeof err), err, NULL);
}

/* Resident memory of this process, KiB (0 when /proc is not there). */
static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void cmd_stats(req *r, json_t *a)
{
    (void)a;
    json_t *st = el_session_stats_json(r->app->sess);
    json_object_set_new(st, "unsettled", json_integer(el_session_unsettled(r->app->sess)));
    json_object_set_new(st, "rss_kb", json_integer(rss_kb()));
    done(r, json_pack("{s:o}", "stats", st));
}

static void cmd_whoami(req *r, json_t *a)
{
    (void)a;
    done(r, json_pack("{s:s, s:s?, s:b}", "peer_id", el_app_peer_id(r->app), "name",
                      el_profile_display_name(r->app->prof), "online",
                      el_session_is_online(r->app->sess)));
}

static const struct {
    const char *name;
    handler fn;
} commands[] = {
    {"send", cmd_send},
    {"send_file", cmd_send_file},
    {"react", cmd_react},
    {"edit", cmd_edit},
    {"delete", cmd_delete},
    {"read", cmd_read},
    {"typing", cmd_typing},
    {"accept_file", cmd_accept_file},
    {"cancel_file", cmd_cancel_file},
    {"add", cmd_add},
    {"accept", cmd_accept},
    {"refuse", cmd_refuse},
    {"remove", cmd_remove},
    {"block", cmd_block},
    {"unblock", cmd_unblock},
    {"peers", cmd_peers},
    {"history", cmd_history},
    {"search", cmd_search},
    {"conversations", cmd_conversations},
    {"files", cmd_files},
    {"groups", cmd_groups},
    {"group_create", cmd_group_create},
    {"group_add", cmd_group_add},
    {"group_remove", cmd_group_remove},
    {"group_admin", cmd_group_admin},
    {"group_rename", cmd_group_rename},
    {"group_leave", cmd_group_leave},
    {"verify", cmd_verify},
    {"accept_key", cmd_accept_key},
    {"stats", cmd_stats},
    {"whoami", cmd_whoami},
};

void el_app_request(el_app *app, json_t *request, el_app_reply_cb cb, void *user)
{
    req *r = calloc(1, sizeof *r);
    if (!r) {
        json_t *e = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "out of memory", "code",
                              "software");
        if (cb)
            cb(app, e, user);
        json_decref(e);
        return;
    }
    *r = (req){app, cb, user};
    const char *cmd = str(request, "cmd");
    for (size_t i = 0; cmd && i < G_N_ELEMENTS(commands); i++) {
        if (!strcmp(cmd, commands[i].name)) {
            commands[i].fn(r, request);
            return;
        }
    }
    fail(r, EL_ERR_INVALID, "unknown command \"%s\"", cmd ? cmd : "(none)");
}

/* ---- the control socket ----------------------------------------------------------------- */

typedef struct {
    el_ctl_server *srv;
    el_ctl_conn conn;
    json_int_t id;
} ctl_req;

static void ctl_replied(el_app *app, json_t *reply, void *user)
{
    ctl_req *c = user;
    (void)app;
    el_ctl_reply(c->srv, c->conn, c->id, json_incref(reply)); /* it steals a reference */
    free(c);
}

static void ctl_handler(el_ctl_server *srv, el_ctl_conn conn, json_t *request, void *user)
{
    el_app *app = user;
    ctl_req *c = calloc(1, sizeof *c);
    if (!c) {
        el_ctl_reply_error(srv, conn, json_integer_value(json_object_get(request, "id")),
                           "out of memory");
        return;
    }
    *c = (ctl_req){srv, conn, json_integer_value(json_object_get(request, "id"))};
    el_app_request(app, request, ctl_replied, c);
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void on_event(el_session *s, json_t *ev, void *user)
{
    el_app *app = user;
    (void)s;
    for (guint i = 0; i < app->listeners->len; i++) {
        listener *l = &g_array_index(app->listeners, listener, i);
        l->fn(app, ev, l->user);
    }
    if (app->ctl)
        el_ctl_broadcast(app->ctl, ev);
}

el_app *el_app_new(GMainContext *ctx, el_profile *prof, const el_identity *id,
                   const el_app_options *opt, char *err, size_t errlen)
{
    el_app *app = calloc(1, sizeof *app);
    if (!app) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    app->ctx = ctx;
    app->prof = prof;
    app->id = id;
    app->serve_ctl = opt->control_socket;
    app->listeners = g_array_new(FALSE, FALSE, sizeof(listener));
    GPtrArray *urls = g_ptr_array_new();
    for (size_t i = 0; opt->servers && opt->servers[i]; i++)
        g_ptr_array_add(urls, (gpointer)opt->servers[i]);
    for (size_t i = 0; !opt->servers && i < el_profile_server_count(prof); i++)
        g_ptr_array_add(urls, (gpointer)el_profile_server(prof, i));
    if (urls->len == 0)
        g_ptr_array_add(urls, (gpointer) "ws://localhost:5000");
    g_ptr_array_add(urls, NULL);
    el_session_config cfg = {
        .server_urls = (const char *const *)urls->pdata,
        .name = el_profile_display_name(prof),
        .history_path = el_profile_history_path(prof),
        .trust_path = el_profile_trust_path(prof),
        .download_dir = el_profile_files_path(prof),
        .local_addresses = opt->ice_addresses,
        .auto_accept_files = opt->accept_files,
        /* bigger offers wait for `echolink accept-file`: a peer cannot fill
         * the disk unasked */
        .max_auto_accept = 4ULL << 30,
    };
    app->sess = el_session_new(ctx, id, &cfg, on_event, app, err, errlen);
    g_ptr_array_free(urls, TRUE);
    if (!app->sess) {
        el_app_free(app);
        return NULL;
    }
    return app;
}

int el_app_start(el_app *app, char *err, size_t errlen)
{
    if (app->serve_ctl) {
        int rc = el_ctl_server_new(app->ctx, el_profile_control_path(app->prof), ctl_handler, app,
                                   &app->ctl, err, errlen);
        if (rc != 0)
            return rc;
    }
    return el_session_start(app->sess, err, errlen);
}

void el_app_free(el_app *app)
{
    if (!app)
        return;
    /* the session first: requests still waiting for the server get their
     * "cancelled" reply, through the control socket too */
    el_session_free(app->sess);
    el_ctl_server_free(app->ctl);
    g_array_free(app->listeners, TRUE);
    free(app);
}

el_session *el_app_session(el_app *app)
{
    return app->sess;
}

const char *el_app_peer_id(const el_app *app)
{
    return el_identity_peer_id(app->id);
}

void el_app_add_listener(el_app *app, el_app_listener fn, void *user)
{
    listener l = {fn, user};
    g_array_append_val(app->listeners, l);
}

void el_app_remove_listener(el_app *app, el_app_listener fn, void *user)
{
    for (guint i = 0; i < app->listeners->len; i++) {
        listener *l = &g_array_index(app->listeners, listener, i);
        if (l->fn == fn && l->user == user) {
            g_array_remove_index(app->listeners, i);
            return;
        }
    }
}
