/* session_group.c - groups of a session (PROTOCOL.md §11.1).
 *
 * The members a client trusts are those of the admin-signed state it holds
 * (history.db, table groups, as {"state", "by_ik", "sig", "dir"}); the
 * server's group directory ("dir": its own group id) only makes co-members
 * visible to each other so they can connect. Every change is a new signed
 * state, version + 1, sent to every old and new member through the outbox. */
#include "client/session_int.h"

#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"
#include "proto/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int found;
    el_group_signed g;
    int left;
    char dir[64 + 1];  /* the server directory's group id */
} group_row;

static int parse_row(const el_hist_group *hg, void *user)
{
    group_row *r = user;
    json_error_t je;
    json_t *o = json_loadb(hg->state, hg->state_len, 0, &je);
    const char *ik = json_string_value(json_object_get(o, "by_ik"));
    const char *sig = json_string_value(json_object_get(o, "sig"));
    const char *dir = json_string_value(json_object_get(o, "dir"));
    if (o && ik && sig &&
        el_group_state_from_json(json_object_get(o, "state"), &r->g.state, NULL, 0) == 0 &&
        el_b64url_decode(ik, strlen(ik), r->g.by_ik, sizeof r->g.by_ik) == EL_ID_KEY_LEN &&
        el_b64url_decode(sig, strlen(sig), r->g.sig, sizeof r->g.sig) == EL_ID_SIG_LEN) {
        r->found = 1;
        r->left = hg->left;
        snprintf(r->dir, sizeof r->dir, "%s", dir ? dir : "");
    } else {
        EL_WARN("session: stored state of group %.8s does not parse", hg->group_id);
    }
    json_decref(o);
    return 0;
}

static group_row *load(el_session *s, const char *gid)
{
    group_row *r = calloc(1, sizeof *r);
    if (r)
        el_hist_group_get(s->hist, gid, parse_row, r, NULL, 0);
    if (r && !r->found) {
        free(r);
        return NULL;
    }
    return r;
}

static int store(el_session *s, const el_group_signed *g, const char *dir)
{
    char ik[EL_ID_KEY_B64_SIZE], sig[EL_ID_SIG_B64_SIZE];
    el_b64url_encode(g->by_ik, sizeof g->by_ik, ik, sizeof ik);
    el_b64url_encode(g->sig, sizeof g->sig, sig, sizeof sig);
    json_t *o = json_pack("{s:o, s:s, s:s, s:s?}", "state", el_group_state_to_json(&g->state),
                          "by_ik", ik, "sig", sig, "dir", dir && *dir ? dir : NULL);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    char err[160];
    int rc = text ? el_hist_group_put(s->hist, g->state.group_id, (int64_t)g->state.version, text,
                                      g->state.name, err, sizeof err)
                  : EL_ERR_NOMEM;
    if (rc < 0)
        sess_error(s, "cannot store group %.8s: %s", g->state.group_id, text ? err : "no memory");
    free(text);
    json_decref(o);
    return rc;
}

static json_t *strlist(const char (*v)[EL_PEER_ID_LEN + 1], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static const char *change_name(el_group_change c)
{
    switch (c) {
    case EL_GROUP_CHANGE_ADD: return "add";
    case EL_GROUP_CHANGE_REMOVE: return "remove";
    case EL_GROUP_CHANGE_RENAME: return "rename";
    case EL_GROUP_CHANGE_ADMINS: return "admins";
    default: return NULL;
    }
}

static void emit_group(el_session *s, const el_group_signed *g, el_group_change change)
{
    char by[EL_PEER_ID_LEN + 1] = "";
    el_id_peer_id(g->by_ik, by);
    const el_group_state *st = &g->state;
    sess_emit(s, json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:s, s:s?, s:b}", "event", "group",
                           "group_id", st->group_id, "name", st->name, "version",
                           (json_int_t)st->version, "admins", strlist(st->admins, st->n_admins),
                           "members", strlist(st->members, st->n_members), "by", by, "change",
                           change_name(change), "member",
                           el_group_is_member(st, s->self) ? 1 : 0));
}

char **sess_group_recipients(el_session *s, const char *gid)
{
    group_row *r = load(s, gid);
    if (!r || r->left || !el_group_is_member(&r->g.state, s->self)) {
        free(r);
        return NULL;
    }
    char **v = g_new0(char *, r->g.state.n_members + 1);
    size_t n = 0;
    for (size_t i = 0; i < r->g.state.n_members; i++)
        if (strcmp(r->g.state.members[i], s->self) != 0)
            v[n++] = g_strdup(r->g.state.members[i]);
    free(r);
    return v;
}

int sess_group_is_member(el_session *s, const char *gid, const char *peer_id)
{
    group_row *r = load(s, gid);
    int ok = r && !r->left && el_group_is_member(&r->g.state, peer_id);
    free(r);
    return ok;
}

/* Sends a GROUP_CREATED / GROUP_UPDATE to everyone in `a` and `b` but us. */
static int publish(el_session *s, const el_group_signed *g, el_group_change change,
                   const el_group_state *old, char *err, size_t errlen)
{
    el_msg m;
    el_msg_init(&m, change == EL_GROUP_CHANGE_NONE ? EL_MSG_T_GROUP_CREATED
                                                   : EL_MSG_T_GROUP_UPDATE);
    m.u.group.g = *g;
    m.u.group.change = change;
    uint8_t *pt = NULL;
    size_t len = 0;
    int rc = sess_build(&m, &pt, &len, err, errlen);
    GHashTable *sent = g_hash_table_new(g_str_hash, g_str_equal);
    const el_group_state *lists[] = {&g->state, old};
    for (size_t k = 0; rc == 0 && k < 2; k++) {
        for (size_t i = 0; lists[k] && i < lists[k]->n_members && rc == 0; i++) {
            const char *to = lists[k]->members[i];
            if (!strcmp(to, s->self) || g_hash_table_contains(sent, to))
                continue;
            g_hash_table_add(sent, (gpointer)to);
            rc = sess_queue(s, to, &m, pt, len, err, errlen);
        }
    }
    g_hash_table_destroy(sent);
    free(pt);
    return rc;
}

/* ---- receiving ----------------------------------------------------------------- */

static void admin_removes(el_session *s, const char *gid, const char *leaver);

/* Whether a signed state may be applied; *later when it is ahead of ours
 * (a version in between has not arrived yet). */
static int may_apply(el_session *s, const group_row *cur, el_group_op op, const el_group_signed *g,
                     int *later, char *err, size_t errlen)
{
    *later = 0;
    if (!cur && op == EL_GROUP_OP_UPDATE) {
        /* a member added after the creation learns the group from its first
         * update: signed by an admin of that state (checked by the parser)
         * and naming us */
        if (!el_group_is_member(&g->state, s->self))
            return el_seterr(err, errlen, EL_ERR_DENIED, "an update of a group we are not in");
        return EL_OK;
    }
    if (cur && op == EL_GROUP_OP_UPDATE && g->state.version > cur->g.state.version + 1) {
        *later = 1;
        return el_seterr(err, errlen, EL_ERR_STATE, "version %llu arrived before %llu",
                         (unsigned long long)g->state.version,
                         (unsigned long long)cur->g.state.version + 1);
    }
    int rc = el_group_may_apply(cur ? &cur->g.state : NULL, op, g, err, errlen);
    if (rc == 0 && op == EL_GROUP_OP_CREATE && !el_group_is_member(&g->state, s->self))
        rc = el_seterr(err, errlen, EL_ERR_DENIED, "we are not a member");
    return rc;
}

int sess_group_on_msg(el_session *s, sess_peer *p, const el_msg *m)
{
    if (m->type == EL_MSG_T_GROUP_LEAVE) {
        if (sess_group_is_member(s, m->u.leave.group_id, p->peer_id))
            admin_removes(s, m->u.leave.group_id, p->peer_id);
        return 0;
    }
    const el_group_signed *g = &m->u.group.g;
    el_group_op op = m->type == EL_MSG_T_GROUP_CREATED ? EL_GROUP_OP_CREATE : EL_GROUP_OP_UPDATE;
    group_row *cur = load(s, g->state.group_id);
    char err[200];
    int later = 0;
    int rc = may_apply(s, cur, op, g, &later, err, sizeof err);
    if (rc != 0) {
        EL_WARN("session: %s for group %.8s from %.8s not applied%s: %s",
                el_msg_type_name(m->type), g->state.group_id, p->peer_id,
                later ? " yet" : "", err);
        free(cur);
        return later ? SESS_LATER : 0; /* later: not receipted, so it comes again */
    }
    rc = store(s, g, cur ? cur->dir : NULL);
    if (rc >= 0) {
        /* after our own leave, a state that still lists us (sent before the
         * admin saw the leave) does not take us back; only an add does */
        int left = !el_group_is_member(&g->state, s->self) ||
                   (cur && cur->left && m->u.group.change != EL_GROUP_CHANGE_ADD);
        el_hist_group_set_left(s->hist, g->state.group_id, left, NULL, 0);
        emit_group(s, g, m->u.group.change);
    }
    free(cur);
    return rc < 0 ? rc : 0;
}

/* ---- changes ---------------------------------------------------------------------- */

static void dir_call(el_session *s, const char *op, json_t *arg)
{
    char err[160];
    if (el_session_server_call(s, op, arg, NULL, NULL, err, sizeof err) != 0)
        EL_WARN("session: group directory %s not sent: %s", op, err);
    json_decref(arg);
}

/* Signs `next` (a copy of the current state, changed), stores and sends it. */
static int commit_change(el_session *s, group_row *cur, el_group_state *next,
                         el_group_change change, char *err, size_t errlen)
{
    next->version = cur->g.state.version + 1;
    el_group_signed g;
    int rc = el_group_sign(s->id, next, &g, err, errlen);
    if (rc == 0 && store(s, &g, cur->dir) < 0)
        rc = el_seterr(err, errlen, EL_ERR_DB, "cannot store the new group state");
    if (rc == 0)
        rc = publish(s, &g, change, &cur->g.state, err, errlen);
    if (rc == 0) {
        el_hist_group_set_left(s->hist, next->group_id, !el_group_is_member(next, s->self), NULL,
                               0);
        emit_group(s, &g, change);
    }
    return rc;
}

static group_row *load_admin(el_session *s, const char *gid, char *err, size_t errlen)
{
    group_row *r = gid ? load(s, gid) : NULL;
    if (!r) {
        el_seterr(err, errlen, EL_ERR_NOT_FOUND, "no group %s", gid ? gid : "");
        return NULL;
    }
    if (r->left || !el_group_is_admin(&r->g.state, s->self)) {
        el_seterr(err, errlen, EL_ERR_DENIED, "only an admin of %s may change it", r->g.state.name);
        free(r);
        return NULL;
    }
    return r;
}

static int drop_member(el_group_state *st, const char *peer)
{
    int found = 0;
    for (size_t i = 0; i < st->n_members; i++) {
        if (!strcmp(st->members[i], peer)) {
            memmove(st->members[i], st->members[i + 1],
                    (st->n_members - i - 1) * sizeof st->members[0]);
            st->n_members--;
            found = 1;
            break;
        }
    }
    for (size_t i = 0; i < st->n_admins; i++) {
        if (!strcmp(st->admins[i], peer)) {
            memmove(st->admins[i], st->admins[i + 1], (st->n_admins - i - 1) * sizeof st->admins[0]);
            st->n_admins--;
            break;
        }
    }
    /* the group keeps an admin: the first remaining member takes over */
    if (st->n_admins == 0 && st->n_members > 0) {
        snprintf(st->admins[0], sizeof st->admins[0], "%s", st->members[0]);
        st->n_admins = 1;
    }
    return found;
}

/* A member announced GROUP_LEAVE: an admin publishes the update. */
static void admin_removes(el_session *s, const char *gid, const char *leaver)
{
    group_row *r = load_admin(s, gid, NULL, 0);
    if (!r)
        return;
    el_group_state next = r->g.state;
    char err[200];
    if (drop_member(&next, leaver) && commit_change(s, r, &next, EL_GROUP_CHANGE_REMOVE, err,
                                                    sizeof err) != 0)
        sess_error(s, "cannot remove %.8s from %s: %s", leaver, next.name, err);
    free(r);
}

typedef struct {
    el_session *s;
    char name[EL_GROUP_NAME_MAX + 1];
    char **members;
    el_session_reply_cb cb;
    void *user;
} create_ctx;

static void created(el_session *s, json_t *ack, void *user)
{
    create_ctx *c = user;
    json_t *reply = json_deep_copy(ack);
    const char *dir = json_string_value(json_object_get(json_object_get(ack, "group"), "group_id"));
    if (json_is_true(json_object_get(ack, "ok")) && dir) {
        el_group_state st = {.version = 1};
        el_msg_new_id(st.group_id);
        st.name_len = (size_t)snprintf(st.name, sizeof st.name, "%s", c->name);
        snprintf(st.admins[0], sizeof st.admins[0], "%s", s->self);
        st.n_admins = 1;
        snprintf(st.members[st.n_members++], sizeof st.members[0], "%s", s->self);
        for (size_t i = 0; c->members[i] && st.n_members < EL_GROUP_MAX_MEMBERS; i++)
            snprintf(st.members[st.n_members++], sizeof st.members[0], "%s", c->members[i]);
        el_group_signed g;
        char err[200];
        int rc = el_group_sign(s->id, &st, &g, err, sizeof err);
        if (rc == 0 && store(s, &g, dir) < 0)
            rc = el_seterr(err, sizeof err, EL_ERR_DB, "cannot store the group");
        if (rc == 0)
            rc = publish(s, &g, EL_GROUP_CHANGE_NONE, NULL, err, sizeof err);
        if (rc == 0) {
            emit_group(s, &g, EL_GROUP_CHANGE_NONE);
            json_object_set_new(reply, "group_id", json_string(st.group_id));
        } else {
            json_object_set_new(reply, "ok", json_false());
            json_object_set_new(reply, "error", json_string(err));
        }
    }
    if (c->cb)
        c->cb(s, reply, c->user);
    json_decref(reply);
    g_strfreev(c->members);
    free(c);
}

int el_session_group_create(el_session *s, const char *name, const char *const *members,
                            size_t n, el_session_reply_cb cb, void *user, char *err,
                            size_t errlen)
{
    if (!name || !*name || strlen(name) > EL_GROUP_NAME_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "a group name is 1..128 bytes");
    if (n == 0 || n >= EL_GROUP_MAX_MEMBERS)
        return el_seterr(err, errlen, EL_ERR_INVALID, "a group has 1..255 other members");
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!el_id_valid_peer_id(members[i]) || !strcmp(members[i], s->self)) {
            json_decref(list);
            return el_seterr(err, errlen, EL_ERR_INVALID, "\"%s\" is not another peer's ID",
                             members[i]);
        }
        json_array_append_new(list, json_string(members[i]));
    }
    create_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(list);
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    }
    c->s = s;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->members = g_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++)
        c->members[i] = g_strdup(members[i]);
    c->cb = cb;
    c->user = user;
    json_t *arg = json_pack("{s:s, s:o}", "name", name, "members", list);
    int rc = el_session_server_call(s, "group_create", arg, created, c, err, errlen);
    json_decref(arg);
    if (rc != 0) {
        g_strfreev(c->members);
        free(c);
    }
    return rc;
}

static int add_member(el_group_state *st, const char *peer, char *err, size_t errlen)
{
    if (!el_id_valid_peer_id(peer))
        return el_seterr(err, errlen, EL_ERR_INVALID, "\"%s\" is not a peer ID", peer);
    if (el_group_is_member(st, peer))
        return el_seterr(err, errlen, EL_ERR_EXISTS, "%s is already a member", peer);
    if (st->n_members >= EL_GROUP_MAX_MEMBERS)
        return el_seterr(err, errlen, EL_ERR_QUOTA, "the group is full");
    snprintf(st->members[st->n_members++], sizeof st->members[0], "%s", peer);
    return EL_OK;
}

static int change(el_session *s, const char *gid, el_group_change what, const char *arg,
                  char *err, size_t errlen)
{
    group_row *r = load_admin(s, gid, err, errlen);
    if (!r)
        return EL_ERR_DENIED;
    el_group_state next = r->g.state;
    int rc = EL_OK;
    json_t *dir = json_pack("{s:s}", "group_id", r->dir);
    switch (what) {
    case EL_GROUP_CHANGE_ADD:
        rc = add_member(&next, arg, err, errlen);
        json_object_set_new(dir, "add", json_pack("[s]", arg));
        break;
    case EL_GROUP_CHANGE_REMOVE:
        if (!drop_member(&next, arg))
            rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s is not a member", arg);
        json_object_set_new(dir, "remove", json_pack("[s]", arg));
        break;
    case EL_GROUP_CHANGE_RENAME:
        if (!arg || !*arg || strlen(arg) > EL_GROUP_NAME_MAX)
            rc = el_seterr(err, errlen, EL_ERR_INVALID, "a group name is 1..128 bytes");
        else
            next.name_len = (size_t)snprintf(next.name, sizeof next.name, "%s", arg);
        json_object_set_new(dir, "name", json_string(arg ? arg : ""));
        break;
    case EL_GROUP_CHANGE_ADMINS:
        if (!el_group_is_member(&next, arg)) {
            rc = el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s is not a member", arg);
        } else {
            snprintf(next.admins[0], sizeof next.admins[0], "%s", arg);
            next.n_admins = 1;
        }
        json_object_set_new(dir, "admin", json_string(arg));
        break;
    default:
        rc = el_seterr(err, errlen, EL_ERR_INVALID, "unknown change");
    }
    if (rc == 0)
        rc = commit_change(s, r, &next, what, err, errlen);
    if (rc == 0 && r->dir[0])
        dir_call(s, "group_update", dir);
    else
        json_decref(dir);
    free(r);
    return rc;
}

int el_session_group_add(el_session *s, const char *group_id, const char *peer_id, char *err,
                         size_t errlen)
{
    return change(s, group_id, EL_GROUP_CHANGE_ADD, peer_id, err, errlen);
}

int el_session_group_remove(el_session *s, const char *group_id, const char *peer_id, char *err,
                            size_t errlen)
{
    if (peer_id && !strcmp(peer_id, s->self))
        return el_session_group_leave(s, group_id, err, errlen);
    return change(s, group_id, EL_GROUP_CHANGE_REMOVE, peer_id, err, errlen);
}

int el_session_group_rename(el_session *s, const char *group_id, const char *name, char *err,
                            size_t errlen)
{
    return change(s, group_id, EL_GROUP_CHANGE_RENAME, name, err, errlen);
}

int el_session_group_set_admin(el_session *s, const char *group_id, const char *peer_id,
                               char *err, size_t errlen)
{
    return change(s, group_id, EL_GROUP_CHANGE_ADMINS, peer_id, err, errlen);
}

int el_session_group_leave(el_session *s, const char *group_id, char *err, size_t errlen)
{
    group_row *r = group_id ? load(s, group_id) : NULL;
    if (!r || r->left)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "you are not in group %s",
                         group_id ? group_id : "");
    int rc = EL_OK;
    if (el_group_is_admin(&r->g.state, s->self) && r->g.state.n_members > 1) {
        /* an admin leaves by publishing the state without itself (handing
         * admin over when it was the last one) */
        el_group_state next = r->g.state;
        drop_member(&next, s->self);
        rc = commit_change(s, r, &next, EL_GROUP_CHANGE_REMOVE, err, errlen);
    } else {
        el_msg m;
        el_msg_init(&m, EL_MSG_T_GROUP_LEAVE);
        snprintf(m.u.leave.group_id, sizeof m.u.leave.group_id, "%s", group_id);
        char **to = sess_group_recipients(s, group_id);
        uint8_t *pt = NULL;
        size_t len = 0;
        rc = sess_build(&m, &pt, &len, err, errlen);
        for (size_t i = 0; rc == 0 && to && to[i]; i++)
            rc = sess_queue(s, to[i], &m, pt, len, err, errlen);
        free(pt);
        g_strfreev(to);
    }
    if (rc == 0) {
        el_hist_group_set_left(s->hist, group_id, true, NULL, 0);
        if (r->dir[0])
            dir_call(s, "group_leave", json_pack("{s:s}", "group_id", r->dir));
    }
    free(r);
    return rc;
}
