/* msg.h - the peer messages of docs/PROTOCOL.md §11, the plaintext wrapper
 * and the file chunk of §9.3 (vectors: tests/vectors/e2ee.json "messages").
 *
 * Plaintext (what a DATA frame or a sealed envelope decrypts to):
 *
 *   | offset | bytes  | field                                          |
 *   |--------|--------|------------------------------------------------|
 *   | 0      | 1      | kind: 0x01 message, 0x02 file chunk, else      |
 *   |        |        | unknown (ignored, counted)                     |
 *   | 1      | 0..    | body                                           |
 *
 * Message body (kind 0x01): one strict JSON object of at most 65536 bytes
 * (UTF-8, depth <= 8 with the object itself at depth 1, no duplicate keys),
 * with t, id (32 lowercase hex), ts (integer 0..2^53-1), group (optional ID)
 * and the members of its type (§11's table). Unknown members are ignored.
 *
 * Chunk body (kind 0x02):
 *
 *   | offset | bytes    | field                 |
 *   |--------|----------|-----------------------|
 *   | 0      | 16       | file_id               |
 *   | 16     | 8        | offset (u64, BE)      |
 *   | 24     | 1..65536 | data                  |
 *
 * Results: EL_OK; EL_MSG_UNKNOWN (> 0) for a well-formed message whose `t`
 * this version does not know, which the caller ignores (§11); or a negative
 * el_err with a reason in err/errlen, which the caller counts and drops:
 *   EL_ERR_TOO_LARGE  body over 65536 bytes
 *   EL_ERR_INVALID    not strict JSON, a member missing, of the wrong type or
 *                     out of bounds
 *   EL_ERR_DENIED     a §11.1 rule of a GROUP_CREATED/GROUP_UPDATE state
 *   EL_ERR_CRYPTO     a group state signature that does not verify
 *   EL_ERR_NOMEM
 * Rules that need the receiver's context (dedupe by (from, id), edit by the
 * author, FILE_ACCEPT offset <= size, group version = current + 1, sender a
 * member) are the caller's: see group.h. Nothing here keeps global state. */
#ifndef EL_PROTO_MSG_H
#define EL_PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/group.h"

#define EL_MSG_UNKNOWN 1                /* result: unknown `t`, ignore it */

#define EL_PT_MESSAGE 0x01              /* plaintext kinds */
#define EL_PT_CHUNK 0x02
#define EL_PT_MAX 262119                /* largest plaintext (§9.3) */

#define EL_MSG_MAX 65536                /* JSON body, bytes */
#define EL_MSG_MAX_DEPTH 8
#define EL_MSG_ID_HEX 32                /* id, target, reply_to, file_id, group... */
#define EL_MSG_ID_SIZE (EL_MSG_ID_HEX + 1)
#define EL_MSG_SHA256_SIZE (64 + 1)
#define EL_MSG_CHANNEL_SIZE (2 + EL_MSG_ID_HEX + 1)   /* "f:" + 32 hex */
#define EL_MSG_TEXT_MAX 32768
#define EL_MSG_EMOJI_MAX 64
#define EL_MSG_MAX_IDS 256
#define EL_MSG_NAME_MAX 255
#define EL_MSG_MIME_MAX 127
#define EL_MSG_REASON_MAX 256
#define EL_MSG_DURATION_MAX 86400000u
#define EL_MSG_UINT_MAX 9007199254740991ULL /* 2^53 - 1: ts, size, offset */

#define EL_CHUNK_ID_LEN 16
#define EL_CHUNK_HDR 25                 /* kind + file_id + offset */
#define EL_CHUNK_DATA_MAX 65536

typedef enum {
    EL_MSG_T_UNKNOWN = 0,
    EL_MSG_T_CHAT,
    EL_MSG_T_TYPING_STATUS,
    EL_MSG_T_REACTION,
    EL_MSG_T_DELIVERY_RECEIPT,
    EL_MSG_T_READ_RECEIPT,
    EL_MSG_T_EDIT_MESSAGE,
    EL_MSG_T_DELETE_MESSAGE,
    EL_MSG_T_FILE_META,
    EL_MSG_T_FILE_ACCEPT,
    EL_MSG_T_FILE_CANCEL,
    EL_MSG_T_FILE_COMPLETE,
    EL_MSG_T_GROUP_CREATED,
    EL_MSG_T_GROUP_UPDATE,
    EL_MSG_T_GROUP_LEAVE,
} el_msg_type;

/* GROUP_UPDATE's `change`; NONE for GROUP_CREATED. */
typedef enum {
    EL_GROUP_CHANGE_NONE = 0,
    EL_GROUP_CHANGE_ADD,
    EL_GROUP_CHANGE_REMOVE,
    EL_GROUP_CHANGE_RENAME,
    EL_GROUP_CHANGE_ADMINS,
} el_group_change;

/* A UTF-8 string: len bytes at p, followed by a NUL. It may contain U+0000
 * (JSON can carry it), so len is authoritative. */
typedef struct {
    const char *p;
    size_t len;
} el_msg_str;

/* A message. Plain data: after el_msg_parse, every el_msg_str points into
 * the same allocation and stays valid until el_msg_free. To build a message,
 * fill one (e.g. on the stack, after el_msg_init) with strings the caller
 * owns, and pass it to el_msg_build / el_msg_encode. has_* flags say whether
 * an optional member is present. */
typedef struct el_msg {
    el_msg_type type;
    char id[EL_MSG_ID_SIZE];
    uint64_t ts;
    int has_group;
    char group[EL_MSG_ID_SIZE];
    union {
        struct { el_msg_str text; int has_reply_to; char reply_to[EL_MSG_ID_SIZE]; } chat;
        struct { int typing; } typing;
        struct { char target[EL_MSG_ID_SIZE]; el_msg_str emoji; int has_remove; int remove; } reaction;
        /* DELIVERY_RECEIPT and READ_RECEIPT */
        struct { size_t n; char ids[EL_MSG_MAX_IDS][EL_MSG_ID_SIZE]; } receipt;
        /* EDIT_MESSAGE; DELETE_MESSAGE uses only target */
        struct { char target[EL_MSG_ID_SIZE]; el_msg_str text; } edit;
        struct {
            char file_id[EL_MSG_ID_SIZE];
            el_msg_str name;
            uint64_t size;
            el_msg_str mime;
            char sha256[EL_MSG_SHA256_SIZE];
            char channel[EL_MSG_CHANNEL_SIZE];
            int voice;              /* a voice message: mime is audio/... */
            uint32_t duration_ms;   /* only with voice */
        } file_meta;
        struct { char file_id[EL_MSG_ID_SIZE]; uint64_t offset; } file_accept;
        struct { char file_id[EL_MSG_ID_SIZE]; int has_reason; el_msg_str reason; } file_cancel;
        struct { char file_id[EL_MSG_ID_SIZE]; char sha256[EL_MSG_SHA256_SIZE]; } file_complete;
        /* GROUP_CREATED and GROUP_UPDATE */
        struct { el_group_signed g; el_group_change change; } group;
        struct { char group_id[EL_MSG_ID_SIZE]; } leave;
    } u;
} el_msg;

/* ---- plaintext ------------------------------------------------------------- */

typedef struct {
    uint8_t kind;
    const uint8_t *body; /* points into the plaintext */
    size_t len;
} el_msg_plain;

/* Splits a plaintext into kind and body, without copying. EL_ERR_INVALID for
 * an empty plaintext, EL_ERR_TOO_LARGE over EL_PT_MAX. Any kind is returned:
 * the caller ignores (and counts) kinds other than 0x01 and 0x02. */
int el_msg_plain_split(const uint8_t *pt, size_t len, el_msg_plain *out, char *err, size_t errlen);

/* ---- messages -------------------------------------------------------------- */

/* Parses and checks a message body (the JSON text, without the kind byte).
 * On EL_OK and on EL_MSG_UNKNOWN, *out is a new message for el_msg_free (for
 * EL_MSG_UNKNOWN only type, id, ts and group are set); on error *out is NULL.
 * For GROUP_CREATED/GROUP_UPDATE this includes el_group_check (signature,
 * signer an admin of a created group), so a parsed state is authentic. The
 * body is only read during the call. */
int el_msg_parse(const uint8_t *body, size_t len, el_msg **out, char *err, size_t errlen);

/* Frees a parsed message; NULL is a no-op. */
void el_msg_free(el_msg *m);

/* Zeroes *m and sets its type. */
void el_msg_init(el_msg *m, el_msg_type type);

/* Wraps a NUL-terminated C string (NULL gives {NULL, 0}). */
el_msg_str el_msg_cstr(const char *s);

/* Serializes `m` as it is (its id and ts included) into a new plaintext:
 * kind 0x01 followed by compact JSON; *out (for free()) and *outlen. The
 * result is parsed back before it is returned, so a builder never emits what
 * a receiver would drop: a field out of bounds fails with the parser's error
 * (and EL_ERR_TOO_LARGE for a body over 65536 bytes). */
int el_msg_encode(const el_msg *m, uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* The builder: gives m a fresh random 128-bit id (RAND_bytes, written back
 * into m->id so the caller can record it) and the timestamp `ts_ms`, then
 * el_msg_encode. */
int el_msg_build(el_msg *m, uint64_t ts_ms, uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* Milliseconds since the Unix epoch, for `ts`: el_clock_wall_ms (base/clock.h),
 * which tests can shift (ECHOLINK_CLOCK_FILE). */
uint64_t el_msg_now_ms(void);

/* A fresh random ID (32 lowercase hex digits + NUL), for id, file_id,
 * group_id. EL_OK or EL_ERR_CRYPTO. */
int el_msg_new_id(char out[EL_MSG_ID_SIZE]);

/* 1 when a and b carry the same message (every field the type defines),
 * else 0. */
int el_msg_equal(const el_msg *a, const el_msg *b);

/* The wire name of a type ("CHAT", ...); NULL for EL_MSG_T_UNKNOWN. */
const char *el_msg_type_name(el_msg_type t);

/* ---- file chunks ------------------------------------------------------------ */

typedef struct {
    uint8_t file_id[EL_CHUNK_ID_LEN];
    uint64_t offset;
    const uint8_t *data; /* points into the body: no copy */
    size_t len;          /* 1..65536 */
} el_msg_chunk;

/* Decodes a kind-0x02 body (without the kind byte). EL_ERR_INVALID when it
 * is shorter than 25 or longer than 24 + 65536 bytes. Whether the offset is
 * the next one expected is the caller's check. */
int el_msg_chunk_decode(const uint8_t *body, size_t len, el_msg_chunk *out, char *err, size_t errlen);

/* Writes the first 25 plaintext bytes of a chunk (kind 0x02, file_id,
 * offset); the caller puts the data right after them, e.g. reading the file
 * straight into its frame buffer. */
void el_msg_chunk_header(uint8_t out[EL_CHUNK_HDR], const uint8_t file_id[EL_CHUNK_ID_LEN],
                         uint64_t offset);

/* Writes a whole chunk plaintext (header + data) into out[cap]. EL_OK;
 * EL_ERR_INVALID for len outside 1..65536 or a NULL argument;
 * EL_ERR_TOO_LARGE when cap < 25 + len. */
int el_msg_chunk_encode(const uint8_t file_id[EL_CHUNK_ID_LEN], uint64_t offset,
                        const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* ---- the receiving end ---------------------------------------------------- */

/* What a receiver did with the plaintexts of one session. */
typedef struct {
    uint64_t messages, chunks;        /* delivered */
    uint64_t unknown;                 /* unknown kind or `t`: ignored (§11) */
    uint64_t syntax, group, signature; /* malformed: dropped, by stage */
} el_msg_stats;

/* One decrypted plaintext as a receiver takes it: split, parsed, counted in
 * *stats, and a malformed one logged (EL_WARN, with the reason `from` sent
 * it; `from` may be NULL) and dropped. Returns EL_PT_MESSAGE with *msg set (a message
 * for el_msg_free), EL_PT_CHUNK with *chunk set (pointing into pt), or 0 for
 * nothing to deliver (ignored or dropped). Never fails otherwise. */
int el_msg_receive(const uint8_t *pt, size_t len, const char *from, el_msg_stats *stats,
                   el_msg **msg, el_msg_chunk *chunk);

#endif
