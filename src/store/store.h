/* store.h - echolinkd's persistent state behind one backend-neutral interface.
 *
 * What the signaling server keeps across restarts (PROTOCOL.md §4 and §6):
 * users with their key bundles and profiles, contacts, pending contact
 * requests, blocks, the group directory, and offline envelopes. Nothing here
 * ever holds message content in the clear: envelopes are opaque blobs sealed
 * by the sender.
 *
 * A backend is chosen by URL when the store is opened:
 *
 *   "sqlite:PATH"       SQLite file; created if missing, but its parent
 *                       directory must already exist (the caller makes it)
 *   "sqlite::memory:"   a private in-memory SQLite database (tests); every
 *                       open gives a new, empty database
 *   "postgres://USER@HOST:PORT/DB" (also postgresql://, any libpq URI)
 *                       PostgreSQL; the database must exist and be UTF8,
 *                       and the role may create tables (migrations)
 *
 * Conventions shared by every function below (read these once):
 *
 * - Results. A function returns EL_OK (0), a non-negative value documented
 *   with it, or a negative el_err (base/err.h). When `err` is not NULL, a
 *   failing call writes a NUL-terminated description of at most errlen bytes
 *   into it; `err` may be NULL. Unexpected database failures are EL_ERR_DB and
 *   are also logged with EL_WARN; expected outcomes (not found, exists, quota)
 *   are not logged.
 * - Inputs. Every string is NUL-terminated UTF-8 and is only borrowed for the
 *   duration of the call. Malformed input is EL_ERR_INVALID and text longer
 *   than its limit is EL_ERR_TOO_LARGE; nothing is written in either case.
 *     peer ID   exactly EL_STORE_PEER_ID_LEN characters of [a-z2-7]
 *     key       base64url without padding, 1..EL_STORE_KEY_MAX characters
 *     id        group and envelope ids, chosen by the caller (random and
 *               unique): 1..EL_STORE_ID_MAX characters of [A-Za-z0-9_-]
 *     text      valid UTF-8, length limits in bytes as named below
 * - Time. Every time is unix milliseconds passed in by the caller; the store
 *   never reads a clock. An envelope is expired when expires_at <= now.
 * - Predicates (_is_*, _exists) return 1 (true) or 0 (false).
 * - Adding to a set (contacts, blocks, group members) is idempotent: it
 *   returns 1 when a row was added and 0 when it was already there.
 * - Removing returns EL_OK, or EL_ERR_NOT_FOUND when there was nothing to
 *   remove. Operations on a row that does not exist are EL_ERR_NOT_FOUND,
 *   and so is an insert that names a peer who never logged in (no user row)
 *   or a group that does not exist.
 * - Lists call a callback once per row, in the order stated per function.
 *   Pointers handed to a callback are valid only during that call; copy what
 *   you keep. The callback returns 0 to go on; any other value stops the
 *   iteration, and a negative value is returned by the list function as its
 *   result (so a callback can pass an el_err back). Otherwise the list
 *   function returns the number of rows delivered. A callback may call
 *   read-only functions on the same store (for instance el_store_user_get for
 *   each listed peer, or another list); a call that modifies the store from
 *   inside a callback fails with EL_ERR_DENIED. When a list function fails
 *   before its first row the callback never fires; a database failure in the
 *   middle of an iteration is returned after the rows already delivered.
 * - Atomicity. Every function is atomic: it takes effect completely or not at
 *   all, also against other processes sharing the database.
 * - Threads. One el_store is used by one thread at a time. Several handles,
 *   in one process or several, may share one database file.
 */
#ifndef EL_STORE_H
#define EL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EL_STORE_PEER_ID_LEN 32       /* peer IDs are exactly this long */
#define EL_STORE_KEY_MAX 128          /* base64url key or signature, characters */
#define EL_STORE_ID_MAX 64            /* caller-chosen group / envelope id */
#define EL_STORE_NAME_MAX 64          /* user display name, bytes */
#define EL_STORE_GROUP_NAME_MAX 128   /* group name, bytes */
#define EL_STORE_AVATAR_MAX 32768     /* avatar (a data URL), bytes */
#define EL_STORE_REQUEST_MSG_MAX 512  /* contact request message, bytes */
#define EL_STORE_BLOB_MAX 65536       /* offline envelope, bytes */

typedef struct el_store el_store;

/* ---- Lifetime ----------------------------------------------------------- */

/* Opens (creating if needed) the database named by `url` and brings its
 * schema up to date. Returns NULL, with the reason in err, when the URL names
 * no supported backend, the database cannot be opened, it is not a database,
 * or its schema version is newer than this build knows (never downgraded).
 * `url` is not kept. Free the result with el_store_free. */
el_store *el_store_open(const char *url, char *err, size_t errlen);

/* Closes the database and frees the handle. NULL is a no-op. Must not be
 * called from inside a list callback of the same store. */
void el_store_free(el_store *st);

/* Static name of the backend: "sqlite" or "postgres". Never NULL. */
const char *el_store_backend_name(const el_store *st);

/* Health check for /healthz: EL_OK when the database answers a trivial query,
 * EL_ERR_DB otherwise (the reason is logged). */
int el_store_ping(el_store *st);

/* The schema version the database is at after el_store_open (>= 1), or a
 * negative el_err. */
int el_store_schema_version(el_store *st, char *err, size_t errlen);

/* ---- Users -------------------------------------------------------------- */

/* A user row as filled in by el_store_user_get. All strings NUL-terminated. */
typedef struct el_store_user {
    char peer_id[EL_STORE_PEER_ID_LEN + 1];
    char ik[EL_STORE_KEY_MAX + 1];        /* Ed25519 identity key */
    char sk[EL_STORE_KEY_MAX + 1];        /* X25519 static key */
    char sk_sig[EL_STORE_KEY_MAX + 1];    /* ik's signature over sk */
    bool has_name;                        /* false: name erased / never set */
    char name[EL_STORE_NAME_MAX + 1];     /* "" when !has_name */
    bool has_avatar;
    size_t avatar_len;                    /* bytes without NUL; 0 when none */
    int64_t created_at;                   /* first login */
    int64_t last_seen;
} el_store_user;

/* Records a login: creates the user (created_at = last_seen = now_ms, no
 * avatar) or, for a known peer ID, replaces the key bundle with this latest
 * one and sets last_seen. `name` NULL keeps the stored name (none for a new
 * user); a non-NULL name (<= EL_STORE_NAME_MAX bytes) replaces it.
 * Returns 1 when the user was created, 0 when it already existed. */
int el_store_user_login(el_store *st, const char *peer_id, const char *ik,
                        const char *sk, const char *sk_sig, const char *name,
                        int64_t now_ms, char *err, size_t errlen);

/* Fills *out. When `avatar` is not NULL it receives the avatar as a
 * NUL-terminated string ("" when there is none) and must hold
 * out->avatar_len + 1 bytes, else EL_ERR_TOO_LARGE (*out is still filled);
 * EL_STORE_AVATAR_MAX + 1 always suffices. Pass avatar NULL to skip it.
 * EL_ERR_NOT_FOUND for an unknown peer. */
int el_store_user_get(el_store *st, const char *peer_id, el_store_user *out,
                      char *avatar, size_t avatar_cap, char *err, size_t errlen);

/* Which profile fields el_store_user_set_profile writes. */
#define EL_STORE_PROFILE_NAME 1u
#define EL_STORE_PROFILE_AVATAR 2u

/* Writes the profile fields selected in `fields`; fields not selected keep
 * their value. For a selected field, NULL erases it. name <=
 * EL_STORE_NAME_MAX bytes, avatar <= EL_STORE_AVATAR_MAX bytes.
 * EL_ERR_NOT_FOUND for an unknown peer. */
int el_store_user_set_profile(el_store *st, const char *peer_id, unsigned fields,
                              const char *name, const char *avatar, char *err,
                              size_t errlen);

/* Erases name and avatar (profile_delete); keys and times stay. */
int el_store_user_delete_profile(el_store *st, const char *peer_id, char *err,
                                 size_t errlen);

/* Sets last_seen. EL_ERR_NOT_FOUND for an unknown peer. */
int el_store_user_touch(el_store *st, const char *peer_id, int64_t now_ms,
                        char *err, size_t errlen);

/* 1 when a user with this peer ID has ever logged in, else 0. */
int el_store_user_exists(el_store *st, const char *peer_id, char *err, size_t errlen);

/* ---- Contacts (symmetric) ----------------------------------------------- */

typedef int (*el_store_peer_cb)(const char *peer_id, void *user);

/* Makes a and b contacts of each other (a != b, both known users).
 * Returns 1 when added, 0 when they already were contacts. */
int el_store_contact_add(el_store *st, const char *a, const char *b, int64_t now_ms,
                         char *err, size_t errlen);
int el_store_contact_remove(el_store *st, const char *a, const char *b, char *err,
                            size_t errlen);
/* Symmetric: is_contact(a, b) == is_contact(b, a); 0 for a == b. */
int el_store_contact_is(el_store *st, const char *a, const char *b, char *err,
                        size_t errlen);
/* Every contact of `peer`, by peer ID. */
int el_store_contact_list(el_store *st, const char *peer, el_store_peer_cb cb,
                          void *user, char *err, size_t errlen);

/* ---- Contact requests (directed, at most one pending per from->to) ------- */

typedef struct el_store_request {
    char from[EL_STORE_PEER_ID_LEN + 1];
    char to[EL_STORE_PEER_ID_LEN + 1];
    char message[EL_STORE_REQUEST_MSG_MAX + 1];  /* "" when none was given */
    int64_t at;
} el_store_request;

typedef int (*el_store_request_cb)(const el_store_request *req, void *user);

/* Records a pending request from -> to (from != to, both known users).
 * `message` NULL means "". A request that is already pending is updated in
 * place with the new message and time (the sender asked again).
 * Returns 1 when the request is new, 0 when an existing one was updated.
 * Policy (blocks, existing contacts, crossing requests) is the caller's. */
int el_store_request_add(el_store *st, const char *from, const char *to,
                         const char *message, int64_t now_ms, char *err,
                         size_t errlen);
int el_store_request_remove(el_store *st, const char *from, const char *to,
                            char *err, size_t errlen);
int el_store_request_exists(el_store *st, const char *from, const char *to,
                            char *err, size_t errlen);
/* Accepts the pending request from -> to: removes it (and a crossing request
 * to -> from, if any) and makes the two contacts, in one step.
 * EL_ERR_NOT_FOUND, with nothing changed, when no request from -> to is
 * pending. */
int el_store_request_accept(el_store *st, const char *from, const char *to,
                            int64_t now_ms, char *err, size_t errlen);
/* Requests to `peer` / from `peer`, oldest first. */
int el_store_request_list_incoming(el_store *st, const char *peer,
                                   el_store_request_cb cb, void *user, char *err,
                                   size_t errlen);
int el_store_request_list_outgoing(el_store *st, const char *peer,
                                   el_store_request_cb cb, void *user, char *err,
                                   size_t errlen);

/* ---- Blocks (directed) -------------------------------------------------- */

/* `blocker` blocks `blocked` (different, both known users). In the same step
 * the two stop being contacts and pending requests in both directions are
 * dropped (PROTOCOL.md §4). Returns 1 when the block is new, 0 when it
 * already existed (the clean-up is done either way). */
int el_store_block_add(el_store *st, const char *blocker, const char *blocked,
                       int64_t now_ms, char *err, size_t errlen);
int el_store_block_remove(el_store *st, const char *blocker, const char *blocked,
                          char *err, size_t errlen);
/* Directed: 1 when `blocker` has blocked `blocked`. */
int el_store_block_is(el_store *st, const char *blocker, const char *blocked,
                      char *err, size_t errlen);
/* Everyone `blocker` has blocked, oldest block first. */
int el_store_block_list(el_store *st, const char *blocker, el_store_peer_cb cb,
                        void *user, char *err, size_t errlen);

/* ---- Group directory ---------------------------------------------------- */

typedef struct el_store_group {
    char group_id[EL_STORE_ID_MAX + 1];
    char name[EL_STORE_GROUP_NAME_MAX + 1];
    char admin[EL_STORE_PEER_ID_LEN + 1];
    int64_t created_at;
} el_store_group;

typedef int (*el_store_group_cb)(const el_store_group *group, void *user);
typedef int (*el_store_member_cb)(const char *peer_id, int64_t joined_at, void *user);

/* Creates group `group_id` administered by `admin`, with the admin and the
 * n_members peers in `members` as members (joined_at = now_ms; duplicates and
 * the admin appearing in `members` are fine). `members` may be NULL when
 * n_members is 0. All or nothing: EL_ERR_EXISTS for a taken group_id,
 * EL_ERR_NOT_FOUND when the admin or any member is not a known user. */
int el_store_group_create(el_store *st, const char *group_id, const char *name,
                          const char *admin, const char *const *members,
                          size_t n_members, int64_t now_ms, char *err,
                          size_t errlen);
/* EL_ERR_NOT_FOUND for an unknown group. */
int el_store_group_get(el_store *st, const char *group_id, el_store_group *out,
                       char *err, size_t errlen);
/* Deletes the group and all its memberships, whoever is still in it. */
int el_store_group_delete(el_store *st, const char *group_id, char *err,
                          size_t errlen);
int el_store_group_set_name(el_store *st, const char *group_id, const char *name,
                            char *err, size_t errlen);
/* The new admin must already be a member (else EL_ERR_NOT_FOUND). */
int el_store_group_set_admin(el_store *st, const char *group_id, const char *admin,
                             char *err, size_t errlen);
/* Returns 1 when added, 0 when already a member. */
int el_store_group_member_add(el_store *st, const char *group_id, const char *peer,
                              int64_t now_ms, char *err, size_t errlen);

/* What el_store_group_member_remove did to the group besides the removal. */
#define EL_STORE_GROUP_KEPT 0           /* group and admin unchanged */
#define EL_STORE_GROUP_ADMIN_CHANGED 1  /* the admin left; the oldest member is admin */
#define EL_STORE_GROUP_DELETED 2        /* the last member left; group deleted */

/* Removes `peer` from the group. A group whose last member leaves is deleted;
 * when the admin leaves, admin passes to the member who joined first (ties
 * broken by peer ID), as PROTOCOL.md §6 group_leave says. Returns one of
 * EL_STORE_GROUP_*, or EL_ERR_NOT_FOUND when peer is not a member. */
int el_store_group_member_remove(el_store *st, const char *group_id,
                                 const char *peer, char *err, size_t errlen);
int el_store_group_is_member(el_store *st, const char *group_id, const char *peer,
                             char *err, size_t errlen);
/* Groups `peer` belongs to, oldest group first. */
int el_store_group_list_for_peer(el_store *st, const char *peer, el_store_group_cb cb,
                                 void *user, char *err, size_t errlen);
/* Members of a group in joining order (ties by peer ID). An unknown group has
 * no members (returns 0). */
int el_store_group_list_members(el_store *st, const char *group_id,
                                el_store_member_cb cb, void *user, char *err,
                                size_t errlen);
/* 1 when a and b share at least one group (for a == b: when a is in any). */
int el_store_group_is_co_member(el_store *st, const char *a, const char *b,
                                char *err, size_t errlen);
/* Every distinct peer other than `peer` sharing a group with it, by peer ID
 * (presence scoping). */
int el_store_group_list_co_members(el_store *st, const char *peer,
                                   el_store_peer_cb cb, void *user, char *err,
                                   size_t errlen);

/* ---- Offline envelopes -------------------------------------------------- */

typedef struct el_store_envelope {
    char id[EL_STORE_ID_MAX + 1];
    char to[EL_STORE_PEER_ID_LEN + 1];
    char from[EL_STORE_PEER_ID_LEN + 1];
    const char *blob;     /* NUL-terminated; owned by the store, valid only
                             during the callback */
    size_t blob_len;      /* bytes without NUL */
    int64_t created_at;
    int64_t expires_at;
} el_store_envelope;

typedef int (*el_store_envelope_cb)(const el_store_envelope *env, void *user);

/* Queues an envelope for `to`. created_at is "now": envelopes of `to` that
 * are expired at created_at do not count against the quota. When `to`
 * already has max_count unexpired envelopes the call fails with
 * EL_ERR_QUOTA (max_count 0: no limit). expires_at must be > created_at.
 * blob <= EL_STORE_BLOB_MAX bytes. EL_ERR_EXISTS for a used id,
 * EL_ERR_NOT_FOUND when `to` or `from` is not a known user. */
int el_store_envelope_put(el_store *st, const char *id, const char *to,
                          const char *from, const char *blob, int64_t created_at,
                          int64_t expires_at, unsigned max_count, char *err,
                          size_t errlen);
/* Unexpired envelopes for `to` at now_ms in the order they were put; at most
 * `limit` of them (0: all). */
int el_store_envelope_list(el_store *st, const char *to, int64_t now_ms,
                           unsigned limit, el_store_envelope_cb cb, void *user,
                           char *err, size_t errlen);
/* Deletes the envelopes among ids[0..n_ids) that are addressed to `to`
 * (acknowledged by their recipient); ids of other recipients' envelopes and
 * unknown ids are ignored. Returns the number deleted. */
int el_store_envelope_delete(el_store *st, const char *to, const char *const *ids,
                             size_t n_ids, char *err, size_t errlen);
/* Deletes every envelope expired at now_ms; returns how many. */
int el_store_envelope_purge(el_store *st, int64_t now_ms, char *err, size_t errlen);
/* Number of unexpired envelopes for `to` at now_ms. */
int el_store_envelope_count(el_store *st, const char *to, int64_t now_ms, char *err,
                            size_t errlen);

#endif
