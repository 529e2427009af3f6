/* store.c - see store.h. The backend-neutral front: picks a backend by URL,
 * validates every argument once (so that backends, and later the PostgreSQL
 * one, see the same clean input and return the same errors) and keeps
 * writes out of list callbacks. */
#include "store/store.h"
#include "store/store_int.h"
#include "store/store_pg.h"

#include "base/err.h"
#include "base/utf8.h"

#include <string.h>

/* ---- URL dispatch ------------------------------------------------------- */

static const struct {
    const char *scheme; /* with the colon */
    el_store *(*open)(const char *spec, char *err, size_t errlen);
} backends[] = {
    {"sqlite:", el_store_sqlite_open},
    {"postgres://", el_store_pg_open},
    {"postgresql://", el_store_pg_open},
};

#define SUPPORTED_URLS                                                         \
    "\"sqlite:PATH\", \"sqlite::memory:\" or \"postgres://USER@HOST:PORT/DB\""

el_store *el_store_open(const char *url, char *err, size_t errlen)
{
    if (!url || !*url) {
        el_seterr(err, errlen, EL_ERR_INVALID, "no database URL given; supported: %s",
                  SUPPORTED_URLS);
        return NULL;
    }
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        size_t n = strlen(backends[i].scheme);
        if (strncmp(url, backends[i].scheme, n) == 0)
            return backends[i].open(url + n, err, errlen);
    }
    el_seterr(err, errlen, EL_ERR_INVALID,
              "unsupported database URL \"%.64s\"; supported: %s", url, SUPPORTED_URLS);
    return NULL;
}

void el_store_free(el_store *st)
{
    if (st)
        st->ops->close(st);
}

const char *el_store_backend_name(const el_store *st)
{
    return st ? st->ops->name : "none";
}

int el_store_ping(el_store *st)
{
    return st ? st->ops->ping(st) : EL_ERR_INVALID;
}

int el_store_schema_version(el_store *st, char *err, size_t errlen)
{
    if (!st)
        return el_seterr(err, errlen, EL_ERR_INVALID, "schema_version: no store");
    return st->ops->schema_version(st, err, errlen);
}

/* ---- Validation --------------------------------------------------------- */

static int check_peer(const char *what, const char *field, const char *p, char *err,
                      size_t errlen)
{
    size_t n = 0;
    if (p) {
        for (; p[n] && n <= EL_STORE_PEER_ID_LEN; n++) {
            if (!((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '2' && p[n] <= '7')))
                break;
        }
    }
    if (!p || n != EL_STORE_PEER_ID_LEN || p[n] != '\0')
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "%s: %s is not a peer ID (%d characters of a-z2-7)", what, field,
                         EL_STORE_PEER_ID_LEN);
    return EL_OK;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* Keys and ids share the base64url alphabet; they differ in length. */
static int check_token(const char *what, const char *field, const char *s, size_t max,
                       const char *kind, char *err, size_t errlen)
{
    size_t n = 0;
    if (s) {
        while (s[n] && n <= max && b64url_char(s[n]))
            n++;
    }
    if (!s || n == 0 || n > max || s[n] != '\0')
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "%s: %s is not %s (1..%zu characters of A-Za-z0-9_-)", what, field,
                         kind, max);
    return EL_OK;
}

static int check_key(const char *what, const char *field, const char *s, char *err,
                     size_t errlen)
{
    return check_token(what, field, s, EL_STORE_KEY_MAX, "a base64url key", err, errlen);
}

static int check_id(const char *what, const char *field, const char *s, char *err,
                    size_t errlen)
{
    return check_token(what, field, s, EL_STORE_ID_MAX, "an id", err, errlen);
}

/* Text: NULL allowed only when `nullable`; at most `max` bytes of UTF-8.
 * Stores the length in *len_out when asked. */
static int check_text(const char *what, const char *field, const char *s, size_t max,
                      bool nullable, size_t *len_out, char *err, size_t errlen)
{
    if (!s) {
        if (nullable)
            return EL_OK;
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s is missing", what, field);
    }
    /* strnlen bounds the scan of an oversized or unterminated-by-mistake input. */
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE, "%s: %s is longer than %zu bytes",
                         what, field, max);
    if (!el_utf8_valid(s, n))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s is not valid UTF-8", what,
                         field);
    if (len_out)
        *len_out = n;
    return EL_OK;
}

static int check_store(const char *what, el_store *st, bool writes, char *err,
                       size_t errlen)
{
    if (!st)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: no store", what);
    /* A list holds a read cursor while its callback runs; writing under it
     * would change the rows being walked (and PostgreSQL cannot even issue a
     * second query on a connection that is streaming one). */
    if (writes && st->cb_depth)
        return el_seterr(err, errlen, EL_ERR_DENIED,
                         "%s: the store cannot be modified from inside a list callback",
                         what);
    return EL_OK;
}

static int check_cb(const char *what, const void *cb, char *err, size_t errlen)
{
    if (!cb)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: no callback", what);
    return EL_OK;
}

static int check_two_peers(const char *what, const char *fa, const char *a,
                           const char *fb, const char *b, bool distinct, char *err,
                           size_t errlen)
{
    int rc = check_peer(what, fa, a, err, errlen);
    if (rc)
        return rc;
    rc = check_peer(what, fb, b, err, errlen);
    if (rc)
        return rc;
    if (distinct && strcmp(a, b) == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s and %s are the same peer",
                         what, fa, fb);
    return EL_OK;
}

/* Shorthand for the validation chains below: return on the first failure. */
#define TRY(expr)                                                              \
    do {                                                                       \
        int try_rc_ = (expr);                                                  \
        if (try_rc_)                                                           \
            return try_rc_;                                                    \
    } while (0)

/* ---- Users -------------------------------------------------------------- */

int el_store_user_login(el_store *st, const char *peer_id, const char *ik,
                        const char *sk, const char *sk_sig, const char *name,
                        int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "user_login";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_peer(what, "peer_id", peer_id, err, errlen));
    TRY(check_key(what, "ik", ik, err, errlen));
    TRY(check_key(what, "sk", sk, err, errlen));
    TRY(check_key(what, "sk_sig", sk_sig, err, errlen));
    TRY(check_text(what, "name", name, EL_STORE_NAME_MAX, true, NULL, err, errlen));
    return st->ops->user_login(st, peer_id, ik, sk, sk_sig, name, now_ms, err, errlen);
}

int el_store_user_get(el_store *st, const char *peer_id, el_store_user *out,
                      char *avatar, size_t avatar_cap, char *err, size_t errlen)
{
    static const char what[] = "user_get";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "peer_id", peer_id, err, errlen));
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: no output", what);
    return st->ops->user_get(st, peer_id, out, avatar, avatar_cap, err, errlen);
}

int el_store_user_set_profile(el_store *st, const char *peer_id, unsigned fields,
                              const char *name, const char *avatar, char *err,
                              size_t errlen)
{
    static const char what[] = "user_set_profile";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_peer(what, "peer_id", peer_id, err, errlen));
    if (fields & ~(EL_STORE_PROFILE_NAME | EL_STORE_PROFILE_AVATAR))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: unknown field bits 0x%x", what,
                         fields);
    /* Unselected fields are ignored, so their values are not checked. */
    if (fields & EL_STORE_PROFILE_NAME)
        TRY(check_text(what, "name", name, EL_STORE_NAME_MAX, true, NULL, err, errlen));
    if (fields & EL_STORE_PROFILE_AVATAR)
        TRY(check_text(what, "avatar", avatar, EL_STORE_AVATAR_MAX, true, NULL, err,
                       errlen));
    return st->ops->user_set_profile(st, peer_id, fields,
                                     (fields & EL_STORE_PROFILE_NAME) ? name : NULL,
                                     (fields & EL_STORE_PROFILE_AVATAR) ? avatar : NULL, err,
                                     errlen);
}

int el_store_user_delete_profile(el_store *st, const char *peer_id, char *err,
                                 size_t errlen)
{
    return el_store_user_set_profile(st, peer_id,
                                     EL_STORE_PROFILE_NAME | EL_STORE_PROFILE_AVATAR, NULL,
                                     NULL, err, errlen);
}

int el_store_user_touch(el_store *st, const char *peer_id, int64_t now_ms, char *err,
                        size_t errlen)
{
    static const char what[] = "user_touch";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_peer(what, "peer_id", peer_id, err, errlen));
    return st->ops->user_touch(st, peer_id, now_ms, err, errlen);
}

int el_store_user_exists(el_store *st, const char *peer_id, char *err, size_t errlen)
{
    static const char what[] = "user_exists";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "peer_id", peer_id, err, errlen));
    return st->ops->user_exists(st, peer_id, err, errlen);
}

/* ---- Contacts ----------------------------------------------------------- */

int el_store_contact_add(el_store *st, const char *a, const char *b, int64_t now_ms,
                         char *err, size_t errlen)
{
    static const char what[] = "contact_add";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_two_peers(what, "a", a, "b", b, true, err, errlen));
    return st->ops->contact_add(st, a, b, now_ms, err, errlen);
}

int el_store_contact_remove(el_store *st, const char *a, const char *b, char *err,
                            size_t errlen)
{
    static const char what[] = "contact_remove";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_two_peers(what, "a", a, "b", b, false, err, errlen));
    if (strcmp(a, b) == 0)
        return el_seterr(err, errlen, EL_ERR_NOT_FOUND, "%s: no such contact", what);
    return st->ops->contact_remove(st, a, b, err, errlen);
}

int el_store_contact_is(el_store *st, const char *a, const char *b, char *err,
                        size_t errlen)
{
    static const char what[] = "contact_is";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_two_peers(what, "a", a, "b", b, false, err, errlen));
    if (strcmp(a, b) == 0)
        return 0;
    return st->ops->contact_is(st, a, b, err, errlen);
}

/* Runs a backend list op with the callback guard raised. */
#define RUN_LIST(st, call)                                                     \
    do {                                                                       \
        (st)->cb_depth++;                                                      \
        int list_rc_ = (call);                                                 \
        (st)->cb_depth--;                                                      \
        return list_rc_;                                                       \
    } while (0)

int el_store_contact_list(el_store *st, const char *peer, el_store_peer_cb cb,
                          void *user, char *err, size_t errlen)
{
    static const char what[] = "contact_list";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "peer", peer, err, errlen));
    TRY(check_cb(what, (const void *)cb, err, errlen));
    RUN_LIST(st, st->ops->contact_list(st, peer, cb, user, err, errlen));
}

/* ---- Contact requests --------------------------------------------------- */

int el_store_request_add(el_store *st, const char *from, const char *to,
                         const char *message, int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "request_add";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_two_peers(what, "from", from, "to", to, true, err, errlen));
    TRY(check_text(what, "message", message, EL_STORE_REQUEST_MSG_MAX, true, NULL, err,
                   errlen));
    return st->ops->request_add(st, from, to, message ? message : "", now_ms, err, errlen);
}

int el_store_request_remove(el_store *st, const char *from, const char *to, char *err,
                            size_t errlen)
{
    static const char what[] = "request_remove";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_two_peers(what, "from", from, "to", to, false, err, errlen));
    return st->ops->request_remove(st, from, to, err, errlen);
}

int el_store_request_exists(el_store *st, const char *from, const char *to, char *err,
                            size_t errlen)
{
    static const char what[] = "request_exists";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_two_peers(what, "from", from, "to", to, false, err, errlen));
    return st->ops->request_exists(st, from, to, err, errlen);
}

int el_store_request_accept(el_store *st, const char *from, const char *to,
                            int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "request_accept";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_two_peers(what, "from", from, "to", to, true, err, errlen));
    return st->ops->request_accept(st, from, to, now_ms, err, errlen);
}

static int request_list(const char *what, el_store *st, const char *peer, bool incoming,
                        el_store_request_cb cb, void *user, char *err, size_t errlen)
{
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "peer", peer, err, errlen));
    TRY(check_cb(what, (const void *)cb, err, errlen));
    RUN_LIST(st, st->ops->request_list(st, peer, incoming, cb, user, err, errlen));
}

int el_store_request_list_incoming(el_store *st, const char *peer,
                                   el_store_request_cb cb, void *user, char *err,
                                   size_t errlen)
{
    return request_list("request_list_incoming", st, peer, true, cb, user, err, errlen);
}

int el_store_request_list_outgoing(el_store *st, const char *peer,
                                   el_store_request_cb cb, void *user, char *err,
                                   size_t errlen)
{
    return request_list("request_list_outgoing", st, peer, false, cb, user, err, errlen);
}

/* ---- Blocks ------------------------------------------------------------- */

int el_store_block_add(el_store *st, const char *blocker, const char *blocked,
                       int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "block_add";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_two_peers(what, "blocker", blocker, "blocked", blocked, true, err, errlen));
    return st->ops->block_add(st, blocker, blocked, now_ms, err, errlen);
}

int el_store_block_remove(el_store *st, const char *blocker, const char *blocked,
                          char *err, size_t errlen)
{
    static const char what[] = "block_remove";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_two_peers(what, "blocker", blocker, "blocked", blocked, false, err, errlen));
    return st->ops->block_remove(st, blocker, blocked, err, errlen);
}

int el_store_block_is(el_store *st, const char *blocker, const char *blocked, char *err,
                      size_t errlen)
{
    static const char what[] = "block_is";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_two_peers(what, "blocker", blocker, "blocked", blocked, false, err, errlen));
    return st->ops->block_is(st, blocker, blocked, err, errlen);
}

int el_store_block_list(el_store *st, const char *blocker, el_store_peer_cb cb,
                        void *user, char *err, size_t errlen)
{
    static const char what[] = "block_list";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "blocker", blocker, err, errlen));
    TRY(check_cb(what, (const void *)cb, err, errlen));
    RUN_LIST(st, st->ops->block_list(st, blocker, cb, user, err, errlen));
}

/* ---- Groups ------------------------------------------------------------- */

int el_store_group_create(el_store *st, const char *group_id, const char *name,
                          const char *admin, const char *const *members,
                          size_t n_members, int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "group_create";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    TRY(check_text(what, "name", name, EL_STORE_GROUP_NAME_MAX, false, NULL, err, errlen));
    TRY(check_peer(what, "admin", admin, err, errlen));
    if (n_members && !members)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: members is NULL", what);
    for (size_t i = 0; i < n_members; i++)
        TRY(check_peer(what, "a member", members[i], err, errlen));
    return st->ops->group_create(st, group_id, name, admin, members, n_members, now_ms, err,
                                 errlen);
}

int el_store_group_get(el_store *st, const char *group_id, el_store_group *out, char *err,
                       size_t errlen)
{
    static const char what[] = "group_get";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: no output", what);
    return st->ops->group_get(st, group_id, out, err, errlen);
}

int el_store_group_delete(el_store *st, const char *group_id, char *err, size_t errlen)
{
    static const char what[] = "group_delete";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    return st->ops->group_delete(st, group_id, err, errlen);
}

int el_store_group_set_name(el_store *st, const char *group_id, const char *name,
                            char *err, size_t errlen)
{
    static const char what[] = "group_set_name";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    TRY(check_text(what, "name", name, EL_STORE_GROUP_NAME_MAX, false, NULL, err, errlen));
    return st->ops->group_set_name(st, group_id, name, err, errlen);
}

int el_store_group_set_admin(el_store *st, const char *group_id, const char *admin,
                             char *err, size_t errlen)
{
    static const char what[] = "group_set_admin";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    TRY(check_peer(what, "admin", admin, err, errlen));
    return st->ops->group_set_admin(st, group_id, admin, err, errlen);
}

int el_store_group_member_add(el_store *st, const char *group_id, const char *peer,
                              int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "group_member_add";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    TRY(check_peer(what, "peer", peer, err, errlen));
    return st->ops->group_member_add(st, group_id, peer, now_ms, err, errlen);
}

int el_store_group_member_remove(el_store *st, const char *group_id, const char *peer,
                                 char *err, size_t errlen)
{
    static const char what[] = "group_member_remove";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    TRY(check_peer(what, "peer", peer, err, errlen));
    return st->ops->group_member_remove(st, group_id, peer, err, errlen);
}

int el_store_group_is_member(el_store *st, const char *group_id, const char *peer,
                             char *err, size_t errlen)
{
    static const char what[] = "group_is_member";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    TRY(check_peer(what, "peer", peer, err, errlen));
    return st->ops->group_is_member(st, group_id, peer, err, errlen);
}

int el_store_group_list_for_peer(el_store *st, const char *peer, el_store_group_cb cb,
                                 void *user, char *err, size_t errlen)
{
    static const char what[] = "group_list_for_peer";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "peer", peer, err, errlen));
    TRY(check_cb(what, (const void *)cb, err, errlen));
    RUN_LIST(st, st->ops->group_list_for_peer(st, peer, cb, user, err, errlen));
}

int el_store_group_list_members(el_store *st, const char *group_id,
                                el_store_member_cb cb, void *user, char *err,
                                size_t errlen)
{
    static const char what[] = "group_list_members";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_id(what, "group_id", group_id, err, errlen));
    TRY(check_cb(what, (const void *)cb, err, errlen));
    RUN_LIST(st, st->ops->group_list_members(st, group_id, cb, user, err, errlen));
}

int el_store_group_is_co_member(el_store *st, const char *a, const char *b, char *err,
                                size_t errlen)
{
    static const char what[] = "group_is_co_member";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_two_peers(what, "a", a, "b", b, false, err, errlen));
    return st->ops->group_is_co_member(st, a, b, err, errlen);
}

int el_store_group_list_co_members(el_store *st, const char *peer, el_store_peer_cb cb,
                                   void *user, char *err, size_t errlen)
{
    static const char what[] = "group_list_co_members";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "peer", peer, err, errlen));
    TRY(check_cb(what, (const void *)cb, err, errlen));
    RUN_LIST(st, st->ops->group_list_co_members(st, peer, cb, user, err, errlen));
}

/* ---- Envelopes ---------------------------------------------------------- */

int el_store_envelope_put(el_store *st, const char *id, const char *to,
                          const char *from, const char *blob, int64_t created_at,
                          int64_t expires_at, unsigned max_count, char *err,
                          size_t errlen)
{
    static const char what[] = "envelope_put";
    size_t blob_len = 0;
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_id(what, "id", id, err, errlen));
    TRY(check_peer(what, "to", to, err, errlen));
    TRY(check_peer(what, "from", from, err, errlen));
    TRY(check_text(what, "blob", blob, EL_STORE_BLOB_MAX, false, &blob_len, err, errlen));
    if (expires_at <= created_at)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "%s: expires_at must be later than created_at", what);
    return st->ops->envelope_put(st, id, to, from, blob, blob_len, created_at, expires_at,
                                 max_count, err, errlen);
}

int el_store_envelope_list(el_store *st, const char *to, int64_t now_ms, unsigned limit,
                           el_store_envelope_cb cb, void *user, char *err, size_t errlen)
{
    static const char what[] = "envelope_list";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "to", to, err, errlen));
    TRY(check_cb(what, (const void *)cb, err, errlen));
    RUN_LIST(st, st->ops->envelope_list(st, to, now_ms, limit, cb, user, err, errlen));
}

int el_store_envelope_delete(el_store *st, const char *to, const char *const *ids,
                             size_t n_ids, char *err, size_t errlen)
{
    static const char what[] = "envelope_delete";
    TRY(check_store(what, st, true, err, errlen));
    TRY(check_peer(what, "to", to, err, errlen));
    if (n_ids && !ids)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: ids is NULL", what);
    for (size_t i = 0; i < n_ids; i++)
        TRY(check_id(what, "an id", ids[i], err, errlen));
    if (n_ids == 0)
        return 0;
    return st->ops->envelope_delete(st, to, ids, n_ids, err, errlen);
}

int el_store_envelope_purge(el_store *st, int64_t now_ms, char *err, size_t errlen)
{
    static const char what[] = "envelope_purge";
    TRY(check_store(what, st, true, err, errlen));
    return st->ops->envelope_purge(st, now_ms, err, errlen);
}

int el_store_envelope_count(el_store *st, const char *to, int64_t now_ms, char *err,
                            size_t errlen)
{
    static const char what[] = "envelope_count";
    TRY(check_store(what, st, false, err, errlen));
    TRY(check_peer(what, "to", to, err, errlen));
    return st->ops->envelope_count(st, to, now_ms, err, errlen);
}
