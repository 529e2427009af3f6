/* msg.c - peer messages, plaintexts and file chunks (see msg.h and
 * docs/PROTOCOL.md §9.3, §11). */
#include "proto/msg.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "base/clock.h"
#include "base/enc.h"
#include "base/err.h"
#include "base/log.h"
#include "proto/json.h"

/* jansson flags for a body el_json_validate has already accepted:
 * - duplicate keys are refused (the validator does not look for them, and
 *   jansson compares the decoded keys, as JSON.parse would see them);
 * - every number is read as a double, which is what a JS receiver sees: 1,
 *   1.0 and 1e0 are the same integer, 2^53+1 is 2^53, and an integer too big
 *   for long long in an unknown member does not fail the whole message;
 * - U+0000 is allowed in string values (JSON.parse allows it); lengths are
 *   taken from json_string_length, never strlen. */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/* A parsed message and the bytes its el_msg_str fields point at: one
 * allocation per message, whatever the type. */
typedef struct {
    el_msg m;
    char arena[];
} owned_msg;

static const char *const type_names[] = {
    [EL_MSG_T_CHAT] = "CHAT",
    [EL_MSG_T_TYPING_STATUS] = "TYPING_STATUS",
    [EL_MSG_T_REACTION] = "REACTION",
    [EL_MSG_T_DELIVERY_RECEIPT] = "DELIVERY_RECEIPT",
    [EL_MSG_T_READ_RECEIPT] = "READ_RECEIPT",
    [EL_MSG_T_EDIT_MESSAGE] = "EDIT_MESSAGE",
    [EL_MSG_T_DELETE_MESSAGE] = "DELETE_MESSAGE",
    [EL_MSG_T_FILE_META] = "FILE_META",
    [EL_MSG_T_FILE_ACCEPT] = "FILE_ACCEPT",
    [EL_MSG_T_FILE_CANCEL] = "FILE_CANCEL",
    [EL_MSG_T_FILE_COMPLETE] = "FILE_COMPLETE",
    [EL_MSG_T_GROUP_CREATED] = "GROUP_CREATED",
    [EL_MSG_T_GROUP_UPDATE] = "GROUP_UPDATE",
    [EL_MSG_T_GROUP_LEAVE] = "GROUP_LEAVE",
};
#define N_TYPES ((int)(sizeof type_names / sizeof type_names[0]))

static const char *const change_names[] = {
    [EL_GROUP_CHANGE_ADD] = "add",
    [EL_GROUP_CHANGE_REMOVE] = "remove",
    [EL_GROUP_CHANGE_RENAME] = "rename",
    [EL_GROUP_CHANGE_ADMINS] = "admins",
};
#define N_CHANGES ((int)(sizeof change_names / sizeof change_names[0]))

const char *el_msg_type_name(el_msg_type t)
{
    if ((int)t <= EL_MSG_T_UNKNOWN || (int)t >= N_TYPES)
        return NULL;
    return type_names[t];
}

/* ---- plaintext ------------------------------------------------------------- */

int el_msg_plain_split(const uint8_t *pt, size_t len, el_msg_plain *out, char *err, size_t errlen)
{
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    memset(out, 0, sizeof *out);
    if (!pt || len == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "empty plaintext");
    if (len > EL_PT_MAX)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE, "plaintext of %zu bytes, at most %d",
                         len, EL_PT_MAX);
    out->kind = pt[0];
    out->body = pt + 1;
    out->len = len - 1;
    return EL_OK;
}

/* ---- field readers --------------------------------------------------------- */

static int is_lower_hex(const char *s, size_t len, size_t want)
{
    return len == want && el_is_lower_hex(s, len);
}


/* Lowercase hex of exactly `digits` digits (IDs: 32, sha256: 64) into out. */
static int get_hex(const json_t *o, const char *key, size_t digits, char *out,
                   char *err, size_t errlen)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || !is_lower_hex(json_string_value(v), json_string_length(v), digits))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s, must be %zu lowercase hex digits",
                         key, v ? "malformed" : "missing", digits);
    memcpy(out, json_string_value(v), digits + 1);
    return EL_OK;
}

static int get_id(const json_t *o, const char *key, char out[EL_MSG_ID_SIZE], char *err, size_t errlen)
{
    return get_hex(o, key, EL_MSG_ID_HEX, out, err, errlen);
}

/* A string of lo..hi UTF-8 bytes (jansson has checked the UTF-8). The
 * pointer borrows the document until finish() copies it. */
static int get_str(const json_t *o, const char *key, size_t lo, size_t hi, el_msg_str *out,
                   char *err, size_t errlen)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s", key,
                         v ? "not a string" : "missing");
    size_t n = json_string_length(v);
    if (n < lo || n > hi)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %zu bytes, must be %zu..%zu", key, n, lo, hi);
    out->p = json_string_value(v);
    out->len = n;
    return EL_OK;
}

static int get_uint(const json_t *o, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
                    char *err, size_t errlen)
{
    const json_t *v = json_object_get(o, key);
    if (el_json_uint(v, lo, hi, out))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s, must be an integer %llu..%llu", key,
                         v ? "malformed" : "missing", (unsigned long long)lo, (unsigned long long)hi);
    return EL_OK;
}

static int get_bool(const json_t *o, const char *key, int *out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s", key,
                         v ? "not a boolean" : "missing");
    *out = json_is_true(v);
    return EL_OK;
}

/* Base64url (canonical, unpadded) of exactly n bytes. */
static int get_b64(const json_t *o, const char *key, uint8_t *out, size_t n, char *err, size_t errlen)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) != EL_B64URL_LEN(n) ||
        el_b64url_decode(json_string_value(v), json_string_length(v), out, n) != (ssize_t)n)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: %s, must be base64url of %zu bytes", key,
                         v ? "malformed" : "missing", n);
    return EL_OK;
}

/* ---- per-type parsers ------------------------------------------------------ */

typedef int (*parse_fn)(const json_t *o, el_msg *m, char *err, size_t errlen);

static int parse_chat(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    int rc = get_str(o, "text", 1, EL_MSG_TEXT_MAX, &m->u.chat.text, err, errlen);
    if (rc || !json_object_get(o, "reply_to"))
        return rc;
    m->u.chat.has_reply_to = 1;
    return get_id(o, "reply_to", m->u.chat.reply_to, err, errlen);
}

static int parse_typing(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    return get_bool(o, "typing", &m->u.typing.typing, err, errlen);
}

static int parse_reaction(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    int rc = get_id(o, "target", m->u.reaction.target, err, errlen);
    if (!rc)
        rc = get_str(o, "emoji", 1, EL_MSG_EMOJI_MAX, &m->u.reaction.emoji, err, errlen);
    if (rc || !json_object_get(o, "remove"))
        return rc;
    m->u.reaction.has_remove = 1;
    return get_bool(o, "remove", &m->u.reaction.remove, err, errlen);
}

static int parse_receipt(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    const json_t *ids = json_object_get(o, "ids");
    if (!json_is_array(ids))
        return el_seterr(err, errlen, EL_ERR_INVALID, "ids: %s", ids ? "not an array" : "missing");
    size_t n = json_array_size(ids);
    if (n < 1 || n > EL_MSG_MAX_IDS)
        return el_seterr(err, errlen, EL_ERR_INVALID, "ids: %zu entries, must be 1..%d", n, EL_MSG_MAX_IDS);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(ids, i);
        if (!json_is_string(v) || !is_lower_hex(json_string_value(v), json_string_length(v), EL_MSG_ID_HEX))
            return el_seterr(err, errlen, EL_ERR_INVALID, "ids[%zu]: not 32 lowercase hex digits", i);
        memcpy(m->u.receipt.ids[i], json_string_value(v), EL_MSG_ID_SIZE);
    }
    m->u.receipt.n = n;
    return EL_OK;
}

static int parse_edit(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    int rc = get_id(o, "target", m->u.edit.target, err, errlen);
    if (rc)
        return rc;
    return get_str(o, "text", 1, EL_MSG_TEXT_MAX, &m->u.edit.text, err, errlen);
}

static int parse_delete(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    return get_id(o, "target", m->u.edit.target, err, errlen);
}

/* No '/', '\' or Unicode Cc (U+0000-U+001F, U+007F-U+009F): a file name
 * must never climb out of the download directory or hide in a terminal.
 * The text is valid UTF-8, so U+0080-U+009F are exactly C2 80..C2 9F. */
static int file_name_ok(const el_msg_str *s)
{
    const unsigned char *p = (const unsigned char *)s->p;
    for (size_t i = 0; i < s->len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/' || p[i] == '\\')
            return 0;
        if (p[i] == 0xc2 && i + 1 < s->len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
            return 0;
    }
    return 1;
}

static int parse_voice(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    const json_t *voice = json_object_get(o, "voice");
    uint64_t ms;
    if (!voice)
        return EL_OK;
    if (!json_is_object(voice))
        return el_seterr(err, errlen, EL_ERR_INVALID, "voice: not an object");
    int rc = get_uint(voice, "duration_ms", 0, EL_MSG_DURATION_MAX, &ms, err, errlen);
    if (rc)
        return rc;
    if (m->u.file_meta.mime.len < 6 || memcmp(m->u.file_meta.mime.p, "audio/", 6) != 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "voice: mime must be audio/*");
    m->u.file_meta.voice = 1;
    m->u.file_meta.duration_ms = (uint32_t)ms;
    return EL_OK;
}

static int parse_file_meta(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    int rc = get_id(o, "file_id", m->u.file_meta.file_id, err, errlen);
    if (!rc)
        rc = get_str(o, "name", 1, EL_MSG_NAME_MAX, &m->u.file_meta.name, err, errlen);
    if (!rc && !file_name_ok(&m->u.file_meta.name))
        rc = el_seterr(err, errlen, EL_ERR_INVALID, "name: contains '/', '\\' or a control character");
    if (!rc)
        rc = get_uint(o, "size", 0, EL_MSG_UINT_MAX, &m->u.file_meta.size, err, errlen);
    if (!rc)
        rc = get_str(o, "mime", 1, EL_MSG_MIME_MAX, &m->u.file_meta.mime, err, errlen);
    if (!rc)
        rc = get_hex(o, "sha256", 64, m->u.file_meta.sha256, err, errlen);
    if (rc)
        return rc;
    const json_t *ch = json_object_get(o, "channel");
    if (!json_is_string(ch) || json_string_length(ch) != EL_MSG_CHANNEL_SIZE - 1 ||
        memcmp(json_string_value(ch), "f:", 2) != 0 ||
        !is_lower_hex(json_string_value(ch) + 2, EL_MSG_ID_HEX, EL_MSG_ID_HEX))
        return el_seterr(err, errlen, EL_ERR_INVALID, "channel: %s, must be \"f:\" and 32 lowercase hex digits",
                         ch ? "malformed" : "missing");
    memcpy(m->u.file_meta.channel, json_string_value(ch), EL_MSG_CHANNEL_SIZE);
    return parse_voice(o, m, err, errlen);
}

static int parse_file_accept(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    int rc = get_id(o, "file_id", m->u.file_accept.file_id, err, errlen);
    if (rc)
        return rc;
    /* offset <= size needs the FILE_META: the caller's check */
    return get_uint(o, "offset", 0, EL_MSG_UINT_MAX, &m->u.file_accept.offset, err, errlen);
}

static int parse_file_cancel(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    int rc = get_id(o, "file_id", m->u.file_cancel.file_id, err, errlen);
    if (rc || !json_object_get(o, "reason"))
        return rc;
    m->u.file_cancel.has_reason = 1;
    return get_str(o, "reason", 0, EL_MSG_REASON_MAX, &m->u.file_cancel.reason, err, errlen);
}

static int parse_file_complete(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    int rc = get_id(o, "file_id", m->u.file_complete.file_id, err, errlen);
    if (rc)
        return rc;
    return get_hex(o, "sha256", 64, m->u.file_complete.sha256, err, errlen);
}

static int parse_change(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    const json_t *v = json_object_get(o, "change");
    if (json_is_string(v)) {
        for (int i = 1; i < N_CHANGES; i++) {
            if (json_string_length(v) == strlen(change_names[i]) &&
                strcmp(json_string_value(v), change_names[i]) == 0) {
                m->u.group.change = (el_group_change)i;
                return EL_OK;
            }
        }
    }
    return el_seterr(err, errlen, EL_ERR_INVALID, "change: %s, must be add, remove, rename or admins",
                     v ? "unknown" : "missing");
}

/* Syntax first (INVALID), then el_group_check: §11.1 rules (DENIED), the
 * signature (CRYPTO), the signer among the admins of a created group. */
static int parse_group(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    el_group_signed *g = &m->u.group.g;
    int is_update = m->type == EL_MSG_T_GROUP_UPDATE;
    int rc = get_b64(o, "by_ik", g->by_ik, EL_ID_KEY_LEN, err, errlen);
    if (!rc)
        rc = get_b64(o, "sig", g->sig, EL_ID_SIG_LEN, err, errlen);
    if (!rc && is_update)
        rc = parse_change(o, m, err, errlen);
    if (!rc)
        rc = el_group_state_from_json(json_object_get(o, "state"), &g->state, err, errlen);
    if (rc)
        return rc;
    return el_group_check(is_update ? EL_GROUP_OP_UPDATE : EL_GROUP_OP_CREATE, g, err, errlen);
}

static int parse_leave(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    return get_id(o, "group_id", m->u.leave.group_id, err, errlen);
}

static const parse_fn parsers[] = {
    [EL_MSG_T_CHAT] = parse_chat,
    [EL_MSG_T_TYPING_STATUS] = parse_typing,
    [EL_MSG_T_REACTION] = parse_reaction,
    [EL_MSG_T_DELIVERY_RECEIPT] = parse_receipt,
    [EL_MSG_T_READ_RECEIPT] = parse_receipt,
    [EL_MSG_T_EDIT_MESSAGE] = parse_edit,
    [EL_MSG_T_DELETE_MESSAGE] = parse_delete,
    [EL_MSG_T_FILE_META] = parse_file_meta,
    [EL_MSG_T_FILE_ACCEPT] = parse_file_accept,
    [EL_MSG_T_FILE_CANCEL] = parse_file_cancel,
    [EL_MSG_T_FILE_COMPLETE] = parse_file_complete,
    [EL_MSG_T_GROUP_CREATED] = parse_group,
    [EL_MSG_T_GROUP_UPDATE] = parse_group,
    [EL_MSG_T_GROUP_LEAVE] = parse_leave,
};
_Static_assert(sizeof parsers / sizeof parsers[0] == sizeof type_names / sizeof type_names[0],
               "one parser per type");

/* ---- parse ------------------------------------------------------------------ */

static el_msg_type type_of(const json_t *t)
{
    size_t n = json_string_length(t);
    const char *s = json_string_value(t);
    for (int i = 1; i < N_TYPES; i++)
        if (n == strlen(type_names[i]) && memcmp(s, type_names[i], n) == 0)
            return (el_msg_type)i;
    return EL_MSG_T_UNKNOWN;
}

/* t, id, ts and the optional group: checked for every message, also one of
 * an unknown type (the vectors' reading of §11's "common members"). */
static int parse_common(const json_t *o, el_msg *m, char *err, size_t errlen)
{
    const json_t *t = json_object_get(o, "t");
    if (!json_is_string(t))
        return el_seterr(err, errlen, EL_ERR_INVALID, "t: %s", t ? "not a string" : "missing");
    m->type = type_of(t);
    int rc = get_id(o, "id", m->id, err, errlen);
    if (!rc)
        rc = get_uint(o, "ts", 0, EL_MSG_UINT_MAX, &m->ts, err, errlen);
    if (rc || !json_object_get(o, "group"))
        return rc;
    m->has_group = 1;
    return get_id(o, "group", m->group, err, errlen);
}

/* The el_msg_str fields of m's type (at most two). */
static size_t str_fields(el_msg *m, el_msg_str *f[2])
{
    switch (m->type) {
    case EL_MSG_T_CHAT: f[0] = &m->u.chat.text; return 1;
    case EL_MSG_T_REACTION: f[0] = &m->u.reaction.emoji; return 1;
    case EL_MSG_T_EDIT_MESSAGE: f[0] = &m->u.edit.text; return 1;
    case EL_MSG_T_FILE_META: f[0] = &m->u.file_meta.name; f[1] = &m->u.file_meta.mime; return 2;
    case EL_MSG_T_FILE_CANCEL:
        if (!m->u.file_cancel.has_reason)
            return 0;
        f[0] = &m->u.file_cancel.reason;
        return 1;
    default: return 0;
    }
}

/* Moves the strings that still point into the JSON document into the
 * message's own allocation, so the document can go. */
static owned_msg *finish(owned_msg *om)
{
    el_msg_str *f[2];
    size_t n = str_fields(&om->m, f), total = 0;
    for (size_t i = 0; i < n; i++)
        total += f[i]->len + 1;
    if (total == 0)
        return om;
    owned_msg *grown = realloc(om, sizeof *om + total);
    if (!grown)
        return NULL;
    n = str_fields(&grown->m, f);
    char *p = grown->arena;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, f[i]->p, f[i]->len);
        p[f[i]->len] = '\0';
        f[i]->p = p;
        p += f[i]->len + 1;
    }
    return grown;
}

static int load(const uint8_t *body, size_t len, json_t **doc, char *err, size_t errlen)
{
    char why[160] = "";
    json_error_t jerr;
    if (len > EL_MSG_MAX)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE, "message of %zu bytes, at most %d", len, EL_MSG_MAX);
    /* grammar, UTF-8 and depth, with JSON.parse's answer on every text */
    if (el_json_validate((const char *)body, len, EL_MSG_MAX_DEPTH, why, sizeof why) < 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "not strict JSON: %s", why);
    *doc = json_loadb((const char *)body, len, LOAD_FLAGS, &jerr);
    if (!*doc)
        return el_seterr(err, errlen, EL_ERR_INVALID, "not strict JSON: %s", jerr.text);
    if (!json_is_object(*doc)) {
        json_decref(*doc);
        *doc = NULL;
        return el_seterr(err, errlen, EL_ERR_INVALID, "not a JSON object");
    }
    return EL_OK;
}

int el_msg_parse(const uint8_t *body, size_t len, el_msg **out, char *err, size_t errlen)
{
    json_t *doc = NULL;
    owned_msg *om = NULL;
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    *out = NULL;
    if (!body && len)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    int rc = load(body, len, &doc, err, errlen);
    if (rc)
        return rc;
    om = calloc(1, sizeof *om);
    if (!om) {
        rc = el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = parse_common(doc, &om->m, err, errlen);
    if (rc)
        goto fail;
    if (om->m.type == EL_MSG_T_UNKNOWN) {
        rc = EL_MSG_UNKNOWN;
    } else {
        rc = parsers[om->m.type](doc, &om->m, err, errlen);
        if (rc)
            goto fail;
        owned_msg *done = finish(om);
        if (!done) {
            rc = el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
            goto fail;
        }
        om = done;
    }
    json_decref(doc);
    *out = &om->m;
    return rc;
fail:
    json_decref(doc);
    free(om);
    return rc;
}

void el_msg_free(el_msg *m)
{
    /* m is the first member of its owned_msg */
    free(m);
}

void el_msg_init(el_msg *m, el_msg_type type)
{
    if (!m)
        return;
    memset(m, 0, sizeof *m);
    m->type = type;
}

el_msg_str el_msg_cstr(const char *s)
{
    el_msg_str r = {s, s ? strlen(s) : 0};
    return r;
}

/* ---- encode ----------------------------------------------------------------- */

/* jansson's setters take ownership even on failure and refuse NULL values,
 * so a failed json_stringn (bad UTF-8, no memory) surfaces here. */
static int put(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) == 0 ? 0 : -1;
}

static json_t *jstr(const el_msg_str *s)
{
    return s->p ? json_stringn(s->p, s->len) : NULL;
}

static json_t *jfixed(const char *s, size_t max)
{
    return json_stringn(s, strnlen(s, max));
}

#define JID(s) jfixed((s), EL_MSG_ID_HEX)

static json_t *jb64(const uint8_t *in, size_t n)
{
    char buf[EL_B64URL_LEN(EL_ID_SIG_LEN) + 1];
    if (el_b64url_encode(in, n, buf, sizeof buf) < 0)
        return NULL;
    return json_string(buf);
}

static int put_receipt(json_t *o, const el_msg *m)
{
    if (m->u.receipt.n > EL_MSG_MAX_IDS)
        return -1; /* would be cut short silently otherwise */
    json_t *arr = json_array();
    if (put(o, "ids", arr))
        return -1;
    for (size_t i = 0; i < m->u.receipt.n; i++)
        if (json_array_append_new(arr, JID(m->u.receipt.ids[i])))
            return -1;
    return 0;
}

static int put_file_meta(json_t *o, const el_msg *m)
{
    const typeof(m->u.file_meta) *f = &m->u.file_meta;
    if (put(o, "file_id", JID(f->file_id)) || put(o, "name", jstr(&f->name)) ||
        put(o, "size", json_integer((json_int_t)f->size)) || put(o, "mime", jstr(&f->mime)) ||
        put(o, "sha256", jfixed(f->sha256, 64)) ||
        put(o, "channel", jfixed(f->channel, EL_MSG_CHANNEL_SIZE - 1)))
        return -1;
    if (!f->voice)
        return 0;
    json_t *voice = json_object();
    if (put(o, "voice", voice))
        return -1;
    return put(voice, "duration_ms", json_integer((json_int_t)f->duration_ms));
}

static int put_group(json_t *o, const el_msg *m)
{
    const el_group_signed *g = &m->u.group.g;
    if (put(o, "state", el_group_state_to_json(&g->state)) ||
        put(o, "by_ik", jb64(g->by_ik, EL_ID_KEY_LEN)) || put(o, "sig", jb64(g->sig, EL_ID_SIG_LEN)))
        return -1;
    if (m->type != EL_MSG_T_GROUP_UPDATE)
        return 0;
    int c = (int)m->u.group.change;
    if (c < 1 || c >= N_CHANGES)
        return -1;
    return put(o, "change", json_string(change_names[c]));
}

/* The type's own members, in §11's order. */
static int put_body(json_t *o, const el_msg *m)
{
    switch (m->type) {
    case EL_MSG_T_CHAT:
        if (put(o, "text", jstr(&m->u.chat.text)))
            return -1;
        return m->u.chat.has_reply_to ? put(o, "reply_to", JID(m->u.chat.reply_to)) : 0;
    case EL_MSG_T_TYPING_STATUS:
        return put(o, "typing", json_boolean(m->u.typing.typing));
    case EL_MSG_T_REACTION:
        if (put(o, "target", JID(m->u.reaction.target)) || put(o, "emoji", jstr(&m->u.reaction.emoji)))
            return -1;
        return m->u.reaction.has_remove ? put(o, "remove", json_boolean(m->u.reaction.remove)) : 0;
    case EL_MSG_T_DELIVERY_RECEIPT:
    case EL_MSG_T_READ_RECEIPT:
        return put_receipt(o, m);
    case EL_MSG_T_EDIT_MESSAGE:
        return put(o, "target", JID(m->u.edit.target)) || put(o, "text", jstr(&m->u.edit.text));
    case EL_MSG_T_DELETE_MESSAGE:
        return put(o, "target", JID(m->u.edit.target));
    case EL_MSG_T_FILE_META:
        return put_file_meta(o, m);
    case EL_MSG_T_FILE_ACCEPT:
        return put(o, "file_id", JID(m->u.file_accept.file_id)) ||
               put(o, "offset", json_integer((json_int_t)m->u.file_accept.offset));
    case EL_MSG_T_FILE_CANCEL:
        if (put(o, "file_id", JID(m->u.file_cancel.file_id)))
            return -1;
        return m->u.file_cancel.has_reason ? put(o, "reason", jstr(&m->u.file_cancel.reason)) : 0;
    case EL_MSG_T_FILE_COMPLETE:
        return put(o, "file_id", JID(m->u.file_complete.file_id)) ||
               put(o, "sha256", jfixed(m->u.file_complete.sha256, 64));
    case EL_MSG_T_GROUP_CREATED:
    case EL_MSG_T_GROUP_UPDATE:
        return put_group(o, m);
    case EL_MSG_T_GROUP_LEAVE:
        return put(o, "group_id", JID(m->u.leave.group_id));
    default:
        return -1;
    }
}

static json_t *to_json(const el_msg *m)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    /* ts above 2^53-1 (or 2^63) would turn into something else on the way:
     * leave it to the re-parse to refuse it, but never wrap it negative */
    json_int_t ts = m->ts > EL_MSG_UINT_MAX ? -1 : (json_int_t)m->ts;
    if (put(o, "t", json_string(el_msg_type_name(m->type))) || put(o, "id", JID(m->id)) ||
        put(o, "ts", json_integer(ts)) || (m->has_group && put(o, "group", JID(m->group))) ||
        put_body(o, m)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int el_msg_encode(const el_msg *m, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    el_msg *back = NULL;
    if (!out || !outlen)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    *out = NULL;
    *outlen = 0;
    if (!m || !el_msg_type_name(m->type))
        return el_seterr(err, errlen, EL_ERR_INVALID, "no message or unknown type");
    json_t *o = to_json(m);
    if (!o)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "cannot serialize: a string is not UTF-8 or a member is missing or out of bounds");
    size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
    if (n == 0 || n > EL_MSG_MAX) {
        json_decref(o);
        return el_seterr(err, errlen, n ? EL_ERR_TOO_LARGE : EL_ERR_NOMEM,
                         "serialized message of %zu bytes, at most %d", n, EL_MSG_MAX);
    }
    uint8_t *buf = malloc(n + 1);
    if (!buf) {
        json_decref(o);
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    }
    buf[0] = EL_PT_MESSAGE;
    size_t written = json_dumpb(o, (char *)buf + 1, n, JSON_COMPACT);
    json_decref(o);
    /* What we send must be exactly what a receiver accepts and reads back. */
    int rc = written == n ? el_msg_parse(buf + 1, n, &back, err, errlen) : EL_ERR_NOMEM;
    if (rc == EL_OK && !el_msg_equal(back, m))
        rc = el_seterr(err, errlen, EL_ERR_INVALID, "a field does not survive serialization");
    el_msg_free(back);
    if (rc != EL_OK) {
        free(buf);
        return rc < 0 ? rc : el_seterr(err, errlen, EL_ERR_INVALID, "unexpected parse result");
    }
    *out = buf;
    *outlen = n + 1;
    return EL_OK;
}

int el_msg_new_id(char out[EL_MSG_ID_SIZE])
{
    uint8_t raw[EL_MSG_ID_HEX / 2];
    if (!out)
        return EL_ERR_INVALID;
    out[0] = '\0';
    if (RAND_bytes(raw, sizeof raw) != 1)
        return EL_ERR_CRYPTO;
    el_hex_encode(raw, sizeof raw, out, EL_MSG_ID_SIZE);
    return EL_OK;
}

int el_msg_build(el_msg *m, uint64_t ts_ms, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    if (!m)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    if (el_msg_new_id(m->id) != EL_OK)
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "RAND_bytes failed");
    m->ts = ts_ms;
    return el_msg_encode(m, out, outlen, err, errlen);
}

uint64_t el_msg_now_ms(void)
{
    int64_t now = el_clock_wall_ms();
    return now > 0 ? (uint64_t)now : 0;
}

/* ---- equality --------------------------------------------------------------- */

static int str_eq(const el_msg_str *a, const el_msg_str *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

#define ID_EQ(a, b) (strncmp((a), (b), EL_MSG_ID_SIZE) == 0)

static int state_eq(const el_group_state *a, const el_group_state *b)
{
    if (!ID_EQ(a->group_id, b->group_id) || a->version != b->version || a->name_len != b->name_len ||
        a->name_len > EL_GROUP_NAME_MAX || memcmp(a->name, b->name, a->name_len) != 0 ||
        a->n_admins != b->n_admins || a->n_members != b->n_members ||
        a->n_admins > EL_GROUP_MAX_ADMINS || a->n_members > EL_GROUP_MAX_MEMBERS)
        return 0;
    for (size_t i = 0; i < a->n_admins; i++)
        if (strncmp(a->admins[i], b->admins[i], EL_PEER_ID_LEN + 1) != 0)
            return 0;
    for (size_t i = 0; i < a->n_members; i++)
        if (strncmp(a->members[i], b->members[i], EL_PEER_ID_LEN + 1) != 0)
            return 0;
    return 1;
}

static int file_meta_eq(const el_msg *a, const el_msg *b)
{
    const typeof(a->u.file_meta) *x = &a->u.file_meta, *y = &b->u.file_meta;
    return ID_EQ(x->file_id, y->file_id) && str_eq(&x->name, &y->name) && x->size == y->size &&
           str_eq(&x->mime, &y->mime) && strncmp(x->sha256, y->sha256, EL_MSG_SHA256_SIZE) == 0 &&
           strncmp(x->channel, y->channel, EL_MSG_CHANNEL_SIZE) == 0 && !x->voice == !y->voice &&
           (!x->voice || x->duration_ms == y->duration_ms);
}

static int body_eq(const el_msg *a, const el_msg *b)
{
    switch (a->type) {
    case EL_MSG_T_CHAT:
        return str_eq(&a->u.chat.text, &b->u.chat.text) &&
               !a->u.chat.has_reply_to == !b->u.chat.has_reply_to &&
               (!a->u.chat.has_reply_to || ID_EQ(a->u.chat.reply_to, b->u.chat.reply_to));
    case EL_MSG_T_TYPING_STATUS:
        return !a->u.typing.typing == !b->u.typing.typing;
    case EL_MSG_T_REACTION:
        return ID_EQ(a->u.reaction.target, b->u.reaction.target) &&
               str_eq(&a->u.reaction.emoji, &b->u.reaction.emoji) &&
               !a->u.reaction.has_remove == !b->u.reaction.has_remove &&
               (!a->u.reaction.has_remove || !a->u.reaction.remove == !b->u.reaction.remove);
    case EL_MSG_T_DELIVERY_RECEIPT:
    case EL_MSG_T_READ_RECEIPT:
        if (a->u.receipt.n != b->u.receipt.n || a->u.receipt.n > EL_MSG_MAX_IDS)
            return 0;
        for (size_t i = 0; i < a->u.receipt.n; i++)
            if (!ID_EQ(a->u.receipt.ids[i], b->u.receipt.ids[i]))
                return 0;
        return 1;
    case EL_MSG_T_EDIT_MESSAGE:
        return ID_EQ(a->u.edit.target, b->u.edit.target) && str_eq(&a->u.edit.text, &b->u.edit.text);
    case EL_MSG_T_DELETE_MESSAGE:
        return ID_EQ(a->u.edit.target, b->u.edit.target);
    case EL_MSG_T_FILE_META:
        return file_meta_eq(a, b);
    case EL_MSG_T_FILE_ACCEPT:
        return ID_EQ(a->u.file_accept.file_id, b->u.file_accept.file_id) &&
               a->u.file_accept.offset == b->u.file_accept.offset;
    case EL_MSG_T_FILE_CANCEL:
        return ID_EQ(a->u.file_cancel.file_id, b->u.file_cancel.file_id) &&
               !a->u.file_cancel.has_reason == !b->u.file_cancel.has_reason &&
               (!a->u.file_cancel.has_reason || str_eq(&a->u.file_cancel.reason, &b->u.file_cancel.reason));
    case EL_MSG_T_FILE_COMPLETE:
        return ID_EQ(a->u.file_complete.file_id, b->u.file_complete.file_id) &&
               strncmp(a->u.file_complete.sha256, b->u.file_complete.sha256, EL_MSG_SHA256_SIZE) == 0;
    case EL_MSG_T_GROUP_CREATED:
    case EL_MSG_T_GROUP_UPDATE:
        return state_eq(&a->u.group.g.state, &b->u.group.g.state) &&
               memcmp(a->u.group.g.by_ik, b->u.group.g.by_ik, EL_ID_KEY_LEN) == 0 &&
               memcmp(a->u.group.g.sig, b->u.group.g.sig, EL_ID_SIG_LEN) == 0 &&
               (a->type == EL_MSG_T_GROUP_CREATED || a->u.group.change == b->u.group.change);
    case EL_MSG_T_GROUP_LEAVE:
        return ID_EQ(a->u.leave.group_id, b->u.leave.group_id);
    default:
        return 1; /* unknown: only the common members are known */
    }
}

int el_msg_equal(const el_msg *a, const el_msg *b)
{
    if (!a || !b)
        return 0;
    if (a->type != b->type || !ID_EQ(a->id, b->id) || a->ts != b->ts || !a->has_group != !b->has_group ||
        (a->has_group && !ID_EQ(a->group, b->group)))
        return 0;
    return body_eq(a, b);
}

/* ---- chunks ----------------------------------------------------------------- */

int el_msg_chunk_decode(const uint8_t *body, size_t len, el_msg_chunk *out, char *err, size_t errlen)
{
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    memset(out, 0, sizeof *out);
    if (!body || len < EL_CHUNK_HDR || len > EL_CHUNK_HDR - 1 + EL_CHUNK_DATA_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "chunk body of %zu bytes, must be %d..%d",
                         body ? len : 0, EL_CHUNK_HDR, EL_CHUNK_HDR - 1 + EL_CHUNK_DATA_MAX);
    memcpy(out->file_id, body, EL_CHUNK_ID_LEN);
    uint64_t off = 0;
    for (int i = 0; i < 8; i++)
        off = off << 8 | body[EL_CHUNK_ID_LEN + i];
    out->offset = off;
    out->data = body + EL_CHUNK_HDR - 1;
    out->len = len - (EL_CHUNK_HDR - 1);
    return EL_OK;
}

void el_msg_chunk_header(uint8_t out[EL_CHUNK_HDR], const uint8_t file_id[EL_CHUNK_ID_LEN],
                         uint64_t offset)
{
    out[0] = EL_PT_CHUNK;
    memcpy(out + 1, file_id, EL_CHUNK_ID_LEN);
    for (int i = 0; i < 8; i++)
        out[1 + EL_CHUNK_ID_LEN + i] = (uint8_t)(offset >> (56 - 8 * i));
}

int el_msg_chunk_encode(const uint8_t file_id[EL_CHUNK_ID_LEN], uint64_t offset,
                        const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    if (outlen)
        *outlen = 0;
    if (!file_id || !data || !out || !outlen || len < 1 || len > EL_CHUNK_DATA_MAX)
        return EL_ERR_INVALID;
    if (cap < EL_CHUNK_HDR + len)
        return EL_ERR_TOO_LARGE;
    el_msg_chunk_header(out, file_id, offset);
    memmove(out + EL_CHUNK_HDR, data, len); /* data may already sit in out */
    *outlen = EL_CHUNK_HDR + len;
    return EL_OK;
}

/* ---- the receiving end ---------------------------------------------------- */

static void dropped(el_msg_stats *st, int rc, const char *from, const char *why)
{
    /* the stages of the vectors: §11.1 rules refuse with DENIED, a bad
     * signature with CRYPTO, everything else is syntax */
    if (rc == EL_ERR_DENIED)
        st->group++;
    else if (rc == EL_ERR_CRYPTO)
        st->signature++;
    else
        st->syntax++;
    EL_WARN("message from %s dropped: %s", from ? from : "?", why);
}

int el_msg_receive(const uint8_t *pt, size_t len, const char *from, el_msg_stats *stats,
                   el_msg **msg, el_msg_chunk *chunk)
{
    char err[160] = "";
    el_msg_plain p;
    *msg = NULL;
    int rc = el_msg_plain_split(pt, len, &p, err, sizeof err);
    if (rc != EL_OK) {
        dropped(stats, rc, from, err);
        return 0;
    }
    if (p.kind == EL_PT_CHUNK) {
        rc = el_msg_chunk_decode(p.body, p.len, chunk, err, sizeof err);
        if (rc != EL_OK) {
            dropped(stats, rc, from, err);
            return 0;
        }
        stats->chunks++;
        return EL_PT_CHUNK;
    }
    if (p.kind != EL_PT_MESSAGE) {
        stats->unknown++;
        return 0;
    }
    rc = el_msg_parse(p.body, p.len, msg, err, sizeof err);
    if (rc == EL_MSG_UNKNOWN) {
        el_msg_free(*msg);
        *msg = NULL;
        stats->unknown++;
        return 0;
    }
    if (rc != EL_OK) {
        dropped(stats, rc, from, err);
        return 0;
    }
    stats->messages++;
    return EL_PT_MESSAGE;
}
