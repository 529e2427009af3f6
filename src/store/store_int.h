/* store_int.h - what a storage backend implements. Private to src/store.
 *
 * store.c owns everything that is the same for all backends: URL dispatch,
 * argument validation (peer IDs, ids, keys, UTF-8, size limits), and the
 * guard that refuses writes from inside a list callback. A backend therefore
 * receives only validated arguments and implements plain storage semantics,
 * with the results documented in store.h (1/0 for adds and predicates,
 * EL_ERR_NOT_FOUND for missing rows, row counts for lists, ...).
 *
 * A backend's handle embeds `struct el_store` as its first member and is
 * created by its open function; ops->close frees it. Every op runs as one
 * transaction (or a single statement) so that it is atomic. */
#ifndef EL_STORE_INT_H
#define EL_STORE_INT_H

#include "store/store.h"

#include <string.h>

typedef struct el_store_ops {
    const char *name;

    void (*close)(el_store *st);
    int (*ping)(el_store *st);
    int (*schema_version)(el_store *st, char *err, size_t errlen);

    int (*user_login)(el_store *st, const char *peer_id, const char *ik, const char *sk,
                      const char *sk_sig, const char *name, int64_t now_ms, char *err,
                      size_t errlen);
    int (*user_get)(el_store *st, const char *peer_id, el_store_user *out, char *avatar,
                    size_t avatar_cap, char *err, size_t errlen);
    int (*user_set_profile)(el_store *st, const char *peer_id, unsigned fields,
                            const char *name, const char *avatar, char *err, size_t errlen);
    int (*user_touch)(el_store *st, const char *peer_id, int64_t now_ms, char *err,
                      size_t errlen);
    int (*user_exists)(el_store *st, const char *peer_id, char *err, size_t errlen);

    /* a != b, not ordered: the backend decides how it stores the pair. */
    int (*contact_add)(el_store *st, const char *a, const char *b, int64_t now_ms,
                       char *err, size_t errlen);
    int (*contact_remove)(el_store *st, const char *a, const char *b, char *err,
                          size_t errlen);
    int (*contact_is)(el_store *st, const char *a, const char *b, char *err, size_t errlen);
    int (*contact_list)(el_store *st, const char *peer, el_store_peer_cb cb, void *user,
                        char *err, size_t errlen);

    int (*request_add)(el_store *st, const char *from, const char *to, const char *message,
                       int64_t now_ms, char *err, size_t errlen);
    int (*request_remove)(el_store *st, const char *from, const char *to, char *err,
                          size_t errlen);
    int (*request_exists)(el_store *st, const char *from, const char *to, char *err,
                          size_t errlen);
    int (*request_accept)(el_store *st, const char *from, const char *to, int64_t now_ms,
                          char *err, size_t errlen);
    /* incoming: requests to `peer`; otherwise requests from `peer`. */
    int (*request_list)(el_store *st, const char *peer, bool incoming,
                        el_store_request_cb cb, void *user, char *err, size_t errlen);

    int (*block_add)(el_store *st, const char *blocker, const char *blocked,
                     int64_t now_ms, char *err, size_t errlen);
    int (*block_remove)(el_store *st, const char *blocker, const char *blocked, char *err,
                        size_t errlen);
    int (*block_is)(el_store *st, const char *blocker, const char *blocked, char *err,
                    size_t errlen);
    int (*block_list)(el_store *st, const char *blocker, el_store_peer_cb cb, void *user,
                      char *err, size_t errlen);

    int (*group_create)(el_store *st, const char *group_id, const char *name,
                        const char *admin, const char *const *members, size_t n_members,
                        int64_t now_ms, char *err, size_t errlen);
    int (*group_get)(el_store *st, const char *group_id, el_store_group *out, char *err,
                     size_t errlen);
    int (*group_delete)(el_store *st, const char *group_id, char *err, size_t errlen);
    int (*group_set_name)(el_store *st, const char *group_id, const char *name, char *err,
                          size_t errlen);
    int (*group_set_admin)(el_store *st, const char *group_id, const char *admin,
                           char *err, size_t errlen);
    int (*group_member_add)(el_store *st, const char *group_id, const char *peer,
                            int64_t now_ms, char *err, size_t errlen);
    int (*group_member_remove)(el_store *st, const char *group_id, const char *peer,
                               char *err, size_t errlen);
    int (*group_is_member)(el_store *st, const char *group_id, const char *peer,
                           char *err, size_t errlen);
    int (*group_list_for_peer)(el_store *st, const char *peer, el_store_group_cb cb,
                               void *user, char *err, size_t errlen);
    int (*group_list_members)(el_store *st, const char *group_id, el_store_member_cb cb,
                              void *user, char *err, size_t errlen);
    int (*group_is_co_member)(el_store *st, const char *a, const char *b, char *err,
                              size_t errlen);
    int (*group_list_co_members)(el_store *st, const char *peer, el_store_peer_cb cb,
                                 void *user, char *err, size_t errlen);

    /* created_at < expires_at already checked. */
    int (*envelope_put)(el_store *st, const char *id, const char *to, const char *from,
                        const char *blob, size_t blob_len, int64_t created_at,
                        int64_t expires_at, unsigned max_count, char *err, size_t errlen);
    int (*envelope_list)(el_store *st, const char *to, int64_t now_ms, unsigned limit,
                         el_store_envelope_cb cb, void *user, char *err, size_t errlen);
    int (*envelope_delete)(el_store *st, const char *to, const char *const *ids,
                           size_t n_ids, char *err, size_t errlen);
    int (*envelope_purge)(el_store *st, int64_t now_ms, char *err, size_t errlen);
    int (*envelope_count)(el_store *st, const char *to, int64_t now_ms, char *err,
                          size_t errlen);
} el_store_ops;

struct el_store {
    const el_store_ops *ops;
    /* Number of list callbacks currently running (lists may nest); while it is
     * non-zero, modifying calls are refused. */
    unsigned cb_depth;
};

/* Contacts and blocks are stored once per pair, the smaller peer ID first
 * (both backends' schema): puts *a and *b in that order. */
static inline void el_store_pair_order(const char **a, const char **b)
{
    if (strcmp(*a, *b) > 0) {
        const char *t = *a;
        *a = *b;
        *b = t;
    }
}

/* Backend constructors: `spec` is the URL with its "scheme:" prefix removed.
 * They return a handle whose base.ops is set, or NULL with err filled. */
el_store *el_store_sqlite_open(const char *spec, char *err, size_t errlen);

#endif
