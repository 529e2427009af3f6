/* group.h - the signed group state of docs/PROTOCOL.md §11.1 and the rules a
 * receiver applies to GROUP_CREATED / GROUP_UPDATE, group membership and
 * authorship (vectors: tests/vectors/e2ee.json "group" and "messages").
 *
 * state = {"group_id", "version" (1..2^53-1), "name" (1..128 bytes),
 *          "admins": [peer_id] (1..16), "members": [peer_id] (1..256)}
 * every admin is a member, no duplicates in either list. The signature is
 * Ed25519 by the signer's ik over the canonical encoding:
 *
 *   | bytes    | field                                             |
 *   |----------|---------------------------------------------------|
 *   | 18       | "echolink-v1-group" 0x00                          |
 *   | 16       | group_id (the 32 hex digits as raw bytes)         |
 *   | 8        | u64 version, big-endian                           |
 *   | 1 + n    | u8 name length in UTF-8 bytes, then the name      |
 *   | 2 + 32 a | u16 #admins, admins sorted by their ASCII bytes   |
 *   | 2 + 32 m | u16 #members, members sorted by their ASCII bytes |
 *
 * The order of the lists in a state does not matter to the signature (the
 * encoding sorts them), so a state is compared and checked as a set.
 *
 * Error codes, matching the vectors' "stage" of an invalid message:
 *   EL_ERR_INVALID  a field is out of its bounds or malformed      (syntax)
 *   EL_ERR_DENIED   a rule of §11.1 or of the current state fails  (group)
 *   EL_ERR_CRYPTO   the signature does not verify                  (signature)
 *   EL_ERR_STATE    the operation does not fit the receiver's state (a
 *                   GROUP_UPDATE for an unknown group, a GROUP_CREATED
 *                   for a known one)
 * Everything here is pure (no I/O, no globals) and thread-safe. */
#ifndef EL_PROTO_GROUP_H
#define EL_PROTO_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "crypto/identity.h"

#define EL_GROUP_ID_HEX 32                    /* group_id, hex digits */
#define EL_GROUP_ID_LEN 16                    /* group_id, bytes */
#define EL_GROUP_NAME_MAX 128                 /* bytes of UTF-8 */
#define EL_GROUP_MAX_ADMINS 16
#define EL_GROUP_MAX_MEMBERS 256
#define EL_GROUP_VERSION_MAX 9007199254740991ULL /* 2^53 - 1 */
/* Largest canonical encoding: every field at its bound. */
#define EL_GROUP_CANONICAL_MAX                                                          \
    (18 + EL_GROUP_ID_LEN + 8 + 1 + EL_GROUP_NAME_MAX + 2 +                             \
     EL_GROUP_MAX_ADMINS * EL_PEER_ID_LEN + 2 + EL_GROUP_MAX_MEMBERS * EL_PEER_ID_LEN)

/* A group state. Plain data (about 9 KiB): copy it freely. Strings are
 * NUL-terminated; `name` may contain U+0000 (JSON allows it), so name_len is
 * authoritative. Peer IDs are as in §2 (32 characters of [a-z2-7]). */
typedef struct {
    char group_id[EL_GROUP_ID_HEX + 1];   /* lowercase hex */
    uint64_t version;
    size_t name_len;
    char name[EL_GROUP_NAME_MAX + 1];     /* UTF-8 */
    size_t n_admins;
    char admins[EL_GROUP_MAX_ADMINS][EL_PEER_ID_LEN + 1];
    size_t n_members;
    char members[EL_GROUP_MAX_MEMBERS][EL_PEER_ID_LEN + 1];
} el_group_state;

/* A state with its signer and signature, as carried by GROUP_CREATED and
 * GROUP_UPDATE (by_ik and sig travel as base64url). */
typedef struct {
    el_group_state state;
    uint8_t by_ik[EL_ID_KEY_LEN];
    uint8_t sig[EL_ID_SIG_LEN];
} el_group_signed;

typedef enum {
    EL_GROUP_OP_CREATE = 1, /* GROUP_CREATED */
    EL_GROUP_OP_UPDATE = 2, /* GROUP_UPDATE */
} el_group_op;

/* Bounds and syntax of every field (EL_ERR_INVALID), then the §11.1 rules:
 * no duplicate admin or member, every admin a member (EL_ERR_DENIED). */
int el_group_state_check(const el_group_state *s, char *err, size_t errlen);

/* The canonical encoding into out[EL_GROUP_CANONICAL_MAX]; *outlen gets its
 * length. Runs el_group_state_check first and returns its error, if any. */
int el_group_canonical(const el_group_state *s, uint8_t out[EL_GROUP_CANONICAL_MAX],
                       size_t *outlen, char *err, size_t errlen);

/* Signs `s` with the identity's ik into *out (state copied, by_ik = the
 * identity's ik). Refuses a state that fails el_group_state_check. Whether
 * the signer is an admin is not checked here: el_group_check says so. */
int el_group_sign(const el_identity *id, const el_group_state *s, el_group_signed *out,
                  char *err, size_t errlen);

/* The signature alone: EL_OK, EL_ERR_CRYPTO (does not verify, or by_ik or
 * the signature's R is a small-order point, as in §2), or the state's own
 * error from el_group_state_check. */
int el_group_verify(const el_group_signed *g, char *err, size_t errlen);

/* Everything a receiver can check without knowing the group, in the order
 * the vectors fix: state syntax (INVALID) and rules (DENIED), signature
 * (CRYPTO), peer_id(by_ik) among state.admins (DENIED), and for
 * EL_GROUP_OP_CREATE state.version = 1 (DENIED). This is the verdict of
 * e2ee.json "messages" for the two group messages. */
int el_group_check(el_group_op op, const el_group_signed *g, char *err, size_t errlen);

/* "May this GROUP_CREATED / GROUP_UPDATE be applied on top of `current`?"
 * current is the receiver's state of g->state.group_id, or NULL when it has
 * none. EL_OK means: apply it (replace current by g->state). Beyond
 * el_group_check:
 *   CREATE: current must be NULL (EL_ERR_STATE: the group exists; its
 *           version 1 is not "the next one");
 *   UPDATE: current must exist (EL_ERR_STATE) with the same group_id
 *           (EL_ERR_INVALID), state.version = current.version + 1 and the
 *           signer an admin of *current* (EL_ERR_DENIED). The signer need not
 *           stay an admin in the new state (an admin may step down). */
int el_group_may_apply(const el_group_state *current, el_group_op op, const el_group_signed *g,
                       char *err, size_t errlen);

/* 1 when peer_id (NUL-terminated) is in the list, else 0 (also for NULL).
 * Group messages are accepted only from current members (§11.1). */
int el_group_is_member(const el_group_state *s, const char *peer_id);
int el_group_is_admin(const el_group_state *s, const char *peer_id);

/* EDIT_MESSAGE / DELETE_MESSAGE rule: EL_OK when `sender` is the author of
 * the target message, EL_ERR_DENIED otherwise; EL_ERR_INVALID when either is
 * not a syntactically valid peer ID (an unknown author is never a match). */
int el_group_may_edit(const char *sender, const char *author);

/* JSON form of a state (the `state` member of §11). from_json checks the
 * types and bounds only (EL_ERR_INVALID), so that the §11.1 rules keep their
 * own error code; it reads numbers as JSON numbers with an integral value
 * (1 and 1.0 alike, as JSON.parse does) and ignores unknown members.
 * to_json returns a new reference (NULL on allocation failure or a name that
 * is not UTF-8); its members come out in the order of §11.1. */
int el_group_state_from_json(const json_t *v, el_group_state *out, char *err, size_t errlen);
json_t *el_group_state_to_json(const el_group_state *s);

#endif
