/* tui_cmd.c - the slash commands of `echolink chat`: one table row per
 * command, each turning its words into one app request.
 *
 * Peers may be named by peer ID, by the name of a contact or of someone
 * asking to be one, or by the start of their ID; messages by the number
 * the view shows in front of them or by the start of their id. */
#include "tui_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *name;
    int words;         /* arguments; the last one takes the rest of the line */
    int min;           /* required arguments */
    const char *usage;
    void (*fn)(el_tui *t, char **argv);
} tui_cmd;

/* Up to `max` words of s; the last one is the rest of the line. */
static char **split(const char *s, int max)
{
    GPtrArray *out = g_ptr_array_new();
    while (*s && max > 0) {
        while (*s && isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        const char *end = s;
        if (max == 1)
            end = s + strlen(s);
        else
            while (*end && !isspace((unsigned char)*end))
                end++;
        g_ptr_array_add(out, g_strstrip(g_strndup(s, (gsize)(end - s))));
        s = end;
        max--;
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

/* ---- resolving what the user typed ------------------------------------------------------ */

static int peer_matches(el_tui *t, const char *peer, const char *arg, const char *folded)
{
    if (!strcmp(peer, arg))
        return 2;
    const char *name = g_hash_table_lookup(t->names, peer);
    int hit = 0;
    if (name) {
        char *f = g_utf8_casefold(name, -1);
        hit = !strcmp(f, folded);
        g_free(f);
    }
    return hit || (strlen(arg) >= 4 && g_str_has_prefix(peer, arg));
}

static void add_candidate(GPtrArray *c, const char *peer)
{
    for (guint i = 0; i < c->len; i++)
        if (!strcmp(c->pdata[i], peer))
            return;
    g_ptr_array_add(c, (gpointer)peer);
}

/* The peer ID meant by arg (g_free it). What matches nothing goes to the
 * app as it is, which says what is wrong with it; NULL when ambiguous. */
static char *resolve_peer(el_tui *t, const char *arg)
{
    if (g_str_has_prefix(arg, "p:"))
        arg += 2;
    char *folded = g_utf8_casefold(arg, -1);
    GPtrArray *cand = g_ptr_array_new();
    for (guint i = 0; i < t->convs->len; i++) {
        tui_conv *c = t->convs->pdata[i];
        int m = c->group ? 0 : peer_matches(t, c->conv + 2, arg, folded);
        if (m == 2) {
            g_ptr_array_set_size(cand, 0);
            add_candidate(cand, c->conv + 2);
            break;
        }
        if (m)
            add_candidate(cand, c->conv + 2);
    }
    for (guint i = 0; i < t->requests->len; i++) {
        tui_req *r = t->requests->pdata[i];
        if (peer_matches(t, r->peer, arg, folded))
            add_candidate(cand, r->peer);
    }
    char *out = NULL;
    if (cand->len == 1)
        out = g_strdup(cand->pdata[0]);
    else if (cand->len == 0)
        out = g_strdup(arg);
    else
        el_tui_notice(t, 1, "\"%s\" could be %u peers: give more of the peer ID", arg, cand->len);
    g_ptr_array_free(cand, TRUE);
    g_free(folded);
    return out;
}

json_t *el_tui_msg_ref(el_tui *t, const char *ref)
{
    if (!ref || !*ref)
        return NULL;
    size_t n = strspn(ref, "0123456789");
    if (n == strlen(ref) && n < 9) {
        long i = strtol(ref, NULL, 10);
        if (i >= 1 && i <= (long)t->msgs->len)
            return t->msgs->pdata[i - 1];
    }
    json_t *hit = NULL;
    for (guint i = 0; strlen(ref) >= 4 && i < t->msgs->len; i++) {
        const char *id = json_string_value(json_object_get(t->msgs->pdata[i], "id"));
        if (id && g_str_has_prefix(id, ref)) {
            if (hit)
                return NULL; /* ambiguous */
            hit = t->msgs->pdata[i];
        }
    }
    return hit;
}

/* The message the user means, or NULL after saying why. */
static json_t *need_msg(el_tui *t, const char *ref)
{
    if (!t->sel) {
        el_tui_notice(t, 1, "no conversation open");
        return NULL;
    }
    json_t *m = el_tui_msg_ref(t, ref);
    if (!m)
        el_tui_notice(t, 1, "no message %s here (use the number shown before it)", ref);
    return m;
}

static const char *msg_id(json_t *m)
{
    return json_string_value(json_object_get(m, "id"));
}

static const char *need_group(el_tui *t)
{
    if (t->sel && t->sel[0] == 'g')
        return t->sel + 2;
    el_tui_notice(t, 1, "open a group first (Tab, or /open g:GROUP_ID)");
    return NULL;
}

static const char *need_peer_conv(el_tui *t)
{
    if (t->sel && t->sel[0] == 'p')
        return t->sel + 2;
    el_tui_notice(t, 1, "open a conversation with the peer first");
    return NULL;
}

/* ---- replies --------------------------------------------------------------------------- */

/* data: the notice to show on success (owned). */
static void said(el_tui *t, json_t *reply, void *data)
{
    if (el_tui_reply_ok(t, reply) && data)
        el_tui_notice(t, 0, "%s", (char *)data);
}

/* Contacts changed: say so and read the lists again. */
static void contacts_changed(el_tui *t, json_t *reply, void *data)
{
    if (el_tui_reply_ok(t, reply)) {
        el_tui_notice(t, 0, "%s", (char *)data);
        el_tui_want(t, TUI_WANT_ALL);
    }
}

static void ask(el_tui *t, json_t *req, const char *ok_notice)
{
    el_tui_request(t, req, said, g_strdup(ok_notice), g_free);
}

static void ask_contacts(el_tui *t, json_t *req, const char *ok_notice)
{
    el_tui_request(t, req, contacts_changed, g_strdup(ok_notice), g_free);
}

/* ---- contacts ----------------------------------------------------------------------------- */

static void cmd_add(el_tui *t, char **argv)
{
    char *peer = resolve_peer(t, argv[0]);
    if (!peer)
        return;
    json_t *req = json_pack("{s:s, s:s}", "cmd", "add", "peer", peer);
    if (req && argv[1] && *argv[1])
        json_object_set_new(req, "message", json_string(argv[1]));
    ask_contacts(t, req, "contact request sent");
    g_free(peer);
}

/* /accept and /refuse: without an argument, the only pending request. */
static char *requester(el_tui *t, const char *arg)
{
    if (arg)
        return resolve_peer(t, arg);
    if (t->requests->len == 1)
        return g_strdup(((tui_req *)t->requests->pdata[0])->peer);
    el_tui_notice(t, 1, t->requests->len ? "whose request? /accept NAME" : "no contact request is waiting");
    return NULL;
}

static void respond(el_tui *t, const char *arg, const char *cmd, const char *done)
{
    char *peer = requester(t, arg);
    if (!peer)
        return;
    ask_contacts(t, json_pack("{s:s, s:s}", "cmd", cmd, "peer", peer), done);
    g_free(peer);
}

static void cmd_accept(el_tui *t, char **argv) { respond(t, argv[0], "accept", "request accepted"); }
static void cmd_refuse(el_tui *t, char **argv) { respond(t, argv[0], "refuse", "request refused"); }

static void peer_cmd(el_tui *t, const char *arg, const char *cmd, const char *done)
{
    char *peer = resolve_peer(t, arg);
    if (!peer)
        return;
    ask_contacts(t, json_pack("{s:s, s:s}", "cmd", cmd, "peer", peer), done);
    g_free(peer);
}

static void cmd_block(el_tui *t, char **argv) { peer_cmd(t, argv[0], "block", "blocked"); }
static void cmd_unblock(el_tui *t, char **argv) { peer_cmd(t, argv[0], "unblock", "unblocked"); }
static void cmd_remove(el_tui *t, char **argv) { peer_cmd(t, argv[0], "remove", "contact removed"); }

static void cmd_peers(el_tui *t, char **argv)
{
    (void)argv;
    el_tui_refresh_peers(t);
}

static void cmd_open(el_tui *t, char **argv)
{
    if (g_str_has_prefix(argv[0], "g:")) {
        el_tui_select(t, argv[0]);
        return;
    }
    char *peer = resolve_peer(t, argv[0]);
    if (!peer)
        return;
    char *conv = g_strdup_printf("p:%s", peer);
    if (!el_tui_conv(t, conv, 0) && strlen(peer) != 32)
        el_tui_notice(t, 1, "no contact \"%s\" (a peer ID has 32 characters)", peer);
    else
        el_tui_select(t, conv);
    g_free(conv);
    g_free(peer);
}

/* ---- messages ----------------------------------------------------------------------------- */

static void sent(el_tui *t, json_t *reply, void *data)
{
    (void)data;
    if (el_tui_reply_ok(t, reply))
        el_tui_want(t, TUI_WANT_NEW | TUI_WANT_CONVS);
}

static void cmd_reply(el_tui *t, char **argv)
{
    json_t *m = need_msg(t, argv[0]);
    if (!m)
        return;
    if (!argv[1] || !*argv[1]) {
        el_tui_notice(t, 1, "usage: /reply N TEXT");
        return;
    }
    t->scroll = 0;
    el_tui_request(t, json_pack("{s:s, s:s, s:s, s:s}", "cmd", "send", "to", t->sel, "text", argv[1],
                                "reply_to", msg_id(m)),
                   sent, NULL, NULL);
}

typedef struct {
    char *id, *emoji;
    int remove;
} react_ask;

static void react_ask_free(gpointer p)
{
    react_ask *r = p;
    g_free(r->id);
    g_free(r->emoji);
    g_free(r);
}

static void reacted(el_tui *t, json_t *reply, void *data)
{
    react_ask *r = data;
    if (el_tui_reply_ok(t, reply) && t->me_id)
        el_tui_apply_reaction(t, r->id, t->me_id, r->emoji, r->remove);
}

static int reacted_already(el_tui *t, json_t *m, const char *emoji)
{
    json_t *r;
    size_t i;
    json_array_foreach(json_object_get(m, "reactions"), i, r) {
        const char *f = json_string_value(json_object_get(r, "from"));
        const char *e = json_string_value(json_object_get(r, "emoji"));
        if (f && e && t->me_id && !strcmp(f, t->me_id) && !strcmp(e, emoji))
            return 1;
    }
    return 0;
}

/* The same reaction again takes it back, as in every messenger. */
static void cmd_react(el_tui *t, char **argv)
{
    json_t *m = need_msg(t, argv[0]);
    if (!m)
        return;
    react_ask *r = g_new0(react_ask, 1);
    r->id = g_strdup(msg_id(m));
    r->emoji = g_strdup(argv[1]);
    r->remove = reacted_already(t, m, argv[1]);
    el_tui_request(t, json_pack("{s:s, s:s, s:s, s:s, s:b}", "cmd", "react", "conv", t->sel, "target", r->id,
                                "emoji", r->emoji, "remove", r->remove),
                   reacted, r, react_ask_free);
}

typedef struct {
    char *id, *text; /* text NULL: a delete */
} change_ask;

static void change_ask_free(gpointer p)
{
    change_ask *c = p;
    g_free(c->id);
    g_free(c->text);
    g_free(c);
}

static void changed(el_tui *t, json_t *reply, void *data)
{
    change_ask *c = data;
    if (!el_tui_reply_ok(t, reply))
        return;
    if (c->text)
        el_tui_apply_edit(t, c->id, c->text);
    else
        el_tui_apply_delete(t, c->id);
}

static void change(el_tui *t, const char *ref, const char *text)
{
    json_t *m = need_msg(t, ref);
    if (!m)
        return;
    change_ask *c = g_new0(change_ask, 1);
    c->id = g_strdup(msg_id(m));
    c->text = g_strdup(text);
    json_t *req = text ? json_pack("{s:s, s:s, s:s, s:s}", "cmd", "edit", "conv", t->sel, "target", c->id,
                                   "text", text)
                       : json_pack("{s:s, s:s, s:s}", "cmd", "delete", "conv", t->sel, "target", c->id);
    el_tui_request(t, req, changed, c, change_ask_free);
}

static void cmd_edit(el_tui *t, char **argv)
{
    if (!argv[1] || !*argv[1]) {
        el_tui_notice(t, 1, "usage: /edit N TEXT");
        return;
    }
    change(t, argv[0], argv[1]);
}

static void cmd_delete(el_tui *t, char **argv) { change(t, argv[0], NULL); }

/* ---- files ---------------------------------------------------------------------------------- */

/* The app wants absolute paths; users type ~/x and x. */
static char *absolute(const char *path)
{
    if (path[0] == '~' && (path[1] == '/' || !path[1]))
        return g_build_filename(g_get_home_dir(), path + 1, NULL);
    return g_canonicalize_filename(path, NULL);
}

static void offer(el_tui *t, const char *path, long voice_ms)
{
    if (!t->sel) {
        el_tui_notice(t, 1, "no conversation open");
        return;
    }
    char *abs = absolute(path);
    json_t *req = json_pack("{s:s, s:s, s:s}", "cmd", "send_file", "to", t->sel, "path", abs);
    if (req && voice_ms > 0)
        json_object_set_new(req, "voice_ms", json_integer(voice_ms));
    char *base = g_path_get_basename(abs);
    char *done = g_strdup_printf("offered %s", base);
    el_tui_request(t, req, sent, NULL, NULL);
    el_tui_notice(t, 0, "%s", done);
    g_free(done);
    g_free(base);
    g_free(abs);
}

static void cmd_file(el_tui *t, char **argv) { offer(t, argv[0], 0); }

/* /voice PATH SECONDS: the path may hold spaces, the seconds are last. */
static void cmd_voice(el_tui *t, char **argv)
{
    char *sp = strrchr(argv[0], ' ');
    double secs = sp ? g_ascii_strtod(sp + 1, NULL) : 0;
    if (!sp || secs <= 0 || secs > 86400) {
        el_tui_notice(t, 1, "usage: /voice PATH SECONDS");
        return;
    }
    char *path = g_strstrip(g_strndup(argv[0], (gsize)(sp - argv[0])));
    offer(t, path, (long)(secs * 1000));
    g_free(path);
}

static const char *need_file(el_tui *t, const char *ref)
{
    json_t *m = need_msg(t, ref);
    const char *fid = json_string_value(json_object_get(json_object_get(m, "file"), "file_id"));
    if (m && !fid)
        el_tui_notice(t, 1, "message %s is not a file", ref);
    return fid;
}

static void cmd_accept_file(el_tui *t, char **argv)
{
    const char *fid = need_file(t, argv[0]);
    if (fid)
        ask(t, json_pack("{s:s, s:s}", "cmd", "accept_file", "file_id", fid), "receiving the file");
}

static void cmd_cancel_file(el_tui *t, char **argv)
{
    const char *fid = need_file(t, argv[0]);
    if (fid)
        ask(t, json_pack("{s:s, s:s, s:s}", "cmd", "cancel_file", "file_id", fid, "reason", "cancelled by the user"),
            "transfer cancelled");
}

/* ---- search ---------------------------------------------------------------------------------- */

static void found(el_tui *t, json_t *reply, void *data)
{
    if (!el_tui_reply_ok(t, reply))
        return;
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(reply, "messages"), i, m) {
        char buf[16], cbuf[16], when[32] = "";
        time_t ts = (time_t)(json_integer_value(json_object_get(m, "ts")) / 1000);
        struct tm tm;
        if (localtime_r(&ts, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        tui_conv *c = el_tui_conv(t, json_string_value(json_object_get(m, "conv")), 0);
        const char *text = json_string_value(json_object_get(m, "text"));
        g_ptr_array_add(lines, g_strdup_printf("%s [%s] %s: %s", when, c ? el_tui_conv_title(t, c, cbuf) : "?",
                                               el_tui_name(t, json_string_value(json_object_get(m, "from")), buf),
                                               text ? text : ""));
    }
    if (lines->len == 0)
        g_ptr_array_add(lines, g_strdup("nothing found"));
    char *title = g_strdup_printf("search \"%s\": %u found", (char *)data,
                                  (unsigned)json_array_size(json_object_get(reply, "messages")));
    el_tui_show_overlay(t, title, lines);
    g_free(title);
}

static void cmd_search(el_tui *t, char **argv)
{
    el_tui_request(t, json_pack("{s:s, s:s, s:i}", "cmd", "search", "query", argv[0], "limit", 100), found,
                   g_strdup(argv[0]), g_free);
}

/* ---- groups ---------------------------------------------------------------------------------- */

static void group_create(el_tui *t, const char *name, const char *peers)
{
    json_t *members = json_array();
    char **words = g_strsplit_set(peers ? peers : "", " \t", -1);
    for (char **w = words; *w; w++) {
        if (!**w)
            continue;
        char *peer = resolve_peer(t, *w);
        if (!peer) {
            g_strfreev(words);
            json_decref(members);
            return;
        }
        json_array_append_new(members, json_string(peer));
        g_free(peer);
    }
    g_strfreev(words);
    ask_contacts(t, json_pack("{s:s, s:s, s:o}", "cmd", "group_create", "name", name, "members", members),
                 "group created");
}

static void group_member_cmd(el_tui *t, const char *cmd, const char *arg, const char *done)
{
    const char *gid = need_group(t);
    char *peer = gid ? resolve_peer(t, arg) : NULL;
    if (!peer)
        return;
    ask_contacts(t, json_pack("{s:s, s:s, s:s}", "cmd", cmd, "group_id", gid, "peer", peer), done);
    g_free(peer);
}

static void cmd_group(el_tui *t, char **argv)
{
    const char *sub = argv[0], *a1 = argv[1], *rest = a1 ? argv[2] : NULL;
    const char *gid;
    if (!strcmp(sub, "create") && a1)
        group_create(t, a1, rest);
    else if (!strcmp(sub, "add") && a1)
        group_member_cmd(t, "group_add", a1, "member added");
    else if (!strcmp(sub, "remove") && a1)
        group_member_cmd(t, "group_remove", a1, "member removed");
    else if (!strcmp(sub, "admin") && a1)
        group_member_cmd(t, "group_admin", a1, "admin handed over");
    else if (!strcmp(sub, "rename") && a1) {
        char *name = rest ? g_strdup_printf("%s %s", a1, rest) : g_strdup(a1);
        if ((gid = need_group(t)))
            ask_contacts(t, json_pack("{s:s, s:s, s:s}", "cmd", "group_rename", "group_id", gid, "name", name),
                         "group renamed");
        g_free(name);
    } else if (!strcmp(sub, "leave")) {
        if ((gid = need_group(t)))
            ask_contacts(t, json_pack("{s:s, s:s}", "cmd", "group_leave", "group_id", gid), "you left the group");
    } else {
        el_tui_notice(t, 1, "usage: /group create NAME PEER... | add|remove|admin PEER | rename NAME | leave");
    }
}

/* ---- trust ------------------------------------------------------------------------------------ */

static void verified(el_tui *t, json_t *reply, void *data)
{
    if (!el_tui_reply_ok(t, reply))
        return;
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    const char *num = json_string_value(json_object_get(reply, "safety"));
    g_ptr_array_add(lines, g_strdup("Compare this number with the one your contact sees, in person or on a call:"));
    g_ptr_array_add(lines, g_strdup(""));
    g_ptr_array_add(lines, g_strdup(num ? num : "?"));
    g_ptr_array_add(lines, g_strdup(""));
    g_ptr_array_add(lines, g_strdup(json_is_true(json_object_get(reply, "verified"))
                                        ? "Marked as verified."
                                        : "When they match: /verify confirm"));
    el_tui_show_overlay(t, (char *)data, lines);
}

static void cmd_verify(el_tui *t, char **argv)
{
    const char *peer = need_peer_conv(t);
    if (!peer)
        return;
    int confirm = argv[0] && !strcmp(argv[0], "confirm");
    char buf[16];
    char *title = g_strdup_printf("safety number with %s", el_tui_name(t, peer, buf));
    el_tui_request(t, json_pack("{s:s, s:s, s:b}", "cmd", "verify", "peer", peer, "confirm", confirm), verified,
                   title, g_free);
}

static void cmd_accept_key(el_tui *t, char **argv)
{
    (void)argv;
    const char *peer = need_peer_conv(t);
    if (peer)
        ask(t, json_pack("{s:s, s:s}", "cmd", "accept_key", "peer", peer), "new key accepted");
}

/* ---- the table ---------------------------------------------------------------------------------- */

static void cmd_help(el_tui *t, char **argv);

static void cmd_quit(el_tui *t, char **argv)
{
    (void)argv;
    t->quit = 1;
}

static const tui_cmd commands[] = {
    {"help", 0, 0, "/help  this list", cmd_help},
    {"quit", 0, 0, "/quit  leave (also Ctrl-C, or Ctrl-D on an empty line)", cmd_quit},
    {"open", 1, 1, "/open PEER|g:GROUP_ID  start or switch to a conversation", cmd_open},
    {"add", 2, 1, "/add PEER_ID [MESSAGE]  ask someone to be a contact", cmd_add},
    {"accept", 1, 0, "/accept [PEER]  accept a contact request", cmd_accept},
    {"refuse", 1, 0, "/refuse [PEER]  refuse a contact request", cmd_refuse},
    {"remove", 1, 1, "/remove PEER  remove a contact", cmd_remove},
    {"block", 1, 1, "/block PEER  block a peer", cmd_block},
    {"unblock", 1, 1, "/unblock PEER  unblock a peer", cmd_unblock},
    {"peers", 0, 0, "/peers  read contacts and requests from the server again", cmd_peers},
    {"reply", 2, 2, "/reply N TEXT  answer message N (the number before it)", cmd_reply},
    {"react", 2, 2, "/react N EMOJI  react to message N (again: take it back)", cmd_react},
    {"edit", 2, 2, "/edit N TEXT  change your message N", cmd_edit},
    {"delete", 1, 1, "/delete N  delete your message N", cmd_delete},
    {"file", 1, 1, "/file PATH  send a file", cmd_file},
    {"voice", 1, 1, "/voice PATH SECONDS  send a voice message (an audio file)", cmd_voice},
    {"accept-file", 1, 1, "/accept-file N  receive the file of message N", cmd_accept_file},
    {"cancel-file", 1, 1, "/cancel-file N  stop the transfer of message N", cmd_cancel_file},
    {"search", 1, 1, "/search WORDS  search all conversations (Esc returns)", cmd_search},
    {"group", 3, 1, "/group create NAME PEER... | add|remove|admin PEER | rename NAME | leave", cmd_group},
    {"verify", 1, 0, "/verify [confirm]  the safety number with this peer", cmd_verify},
    {"accept-key", 0, 0, "/accept-key  trust this peer's new key", cmd_accept_key},
};

static void cmd_help(el_tui *t, char **argv)
{
    (void)argv;
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        g_ptr_array_add(lines, g_strdup(commands[i].usage));
    g_ptr_array_add(lines, g_strdup(""));
    g_ptr_array_add(lines, g_strdup("Keys: Tab/Shift-Tab, Ctrl-N/Ctrl-P or Alt-Up/Down switch conversations; "
                                    "PageUp/PageDown scroll; Up/Down recall sent lines; Ctrl-A/E, Ctrl-U/K/W edit; "
                                    "Esc closes this. A line starting with // sends one starting with /."));
    el_tui_show_overlay(t, "commands", lines);
}

void el_tui_command(el_tui *t, const char *line)
{
    const char *p = line + 1;
    size_t n = strcspn(p, " \t");
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        const tui_cmd *c = &commands[i];
        if (strlen(c->name) != n || strncmp(c->name, p, n))
            continue;
        char **argv = split(p + n, c->words);
        if ((int)g_strv_length(argv) < c->min)
            el_tui_notice(t, 1, "usage: %s", c->usage);
        else
            c->fn(t, argv);
        g_strfreev(argv);
        return;
    }
    el_tui_notice(t, 1, "unknown command /%.*s (/help lists them)", (int)n, p);
}
