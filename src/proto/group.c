/* group.c - signed group state (see group.h and docs/PROTOCOL.md §11.1). */
#include "proto/group.h"
#include "proto/json.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/enc.h"
#include "base/err.h"

/* sizeof counts the NUL, which is the 0x00 the protocol puts after the label. */
static const char dom_group[] = "echolink-v1-group";

_Static_assert(sizeof dom_group == 18, "group domain length");
_Static_assert(EL_GROUP_NAME_MAX <= 255, "the name length is a u8");
_Static_assert(EL_GROUP_MAX_MEMBERS <= 65535, "the list lengths are u16");

/* ---- small checks --------------------------------------------------------- */

static int is_lower_hex(const char *s, size_t len, size_t want)
{
    return len == want && el_is_lower_hex(s, len);
}

static int in_list(const char (*list)[EL_PEER_ID_LEN + 1], size_t n, const char *peer_id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], peer_id) == 0)
            return 1;
    return 0;
}

static int cmp_peer(const void *a, const void *b)
{
    return memcmp(a, b, EL_PEER_ID_LEN);
}

/* Sorted copy of a peer list (into `out`, same shape): the canonical
 * encoding needs the order and the duplicate check is cheap on it. */
static void sorted_copy(const char (*list)[EL_PEER_ID_LEN + 1], size_t n,
                        char (*out)[EL_PEER_ID_LEN + 1])
{
    memcpy(out, list, n * sizeof *list);
    qsort(out, n, sizeof *out, cmp_peer);
}

static int has_duplicate(const char (*list)[EL_PEER_ID_LEN + 1], size_t n)
{
    char sorted[EL_GROUP_MAX_MEMBERS][EL_PEER_ID_LEN + 1];
    sorted_copy(list, n, sorted);
    for (size_t i = 1; i < n; i++)
        if (memcmp(sorted[i - 1], sorted[i], EL_PEER_ID_LEN) == 0)
            return 1;
    return 0;
}

static int check_list(const char *what, const char (*list)[EL_PEER_ID_LEN + 1], size_t n,
                      size_t max, char *err, size_t errlen)
{
    if (n < 1 || n > max)
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.%s: %zu entries, must be 1..%zu",
                         what, n, max);
    for (size_t i = 0; i < n; i++)
        if (!el_id_valid_peer_id(list[i]))
            return el_seterr(err, errlen, EL_ERR_INVALID, "state.%s[%zu]: not a peer ID", what, i);
    return EL_OK;
}

int el_group_state_check(const el_group_state *s, char *err, size_t errlen)
{
    if (!s)
        return el_seterr(err, errlen, EL_ERR_INVALID, "no state");
    if (!is_lower_hex(s->group_id, strnlen(s->group_id, sizeof s->group_id), EL_GROUP_ID_HEX))
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.group_id: not 32 lowercase hex digits");
    if (s->version < 1 || s->version > EL_GROUP_VERSION_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.version: must be 1..2^53-1");
    if (s->name_len < 1 || s->name_len > EL_GROUP_NAME_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.name: %zu bytes, must be 1..%d",
                         s->name_len, EL_GROUP_NAME_MAX);
    int rc = check_list("admins", s->admins, s->n_admins, EL_GROUP_MAX_ADMINS, err, errlen);
    if (rc)
        return rc;
    rc = check_list("members", s->members, s->n_members, EL_GROUP_MAX_MEMBERS, err, errlen);
    if (rc)
        return rc;
    if (has_duplicate(s->admins, s->n_admins))
        return el_seterr(err, errlen, EL_ERR_DENIED, "state.admins: duplicate peer ID");
    if (has_duplicate(s->members, s->n_members))
        return el_seterr(err, errlen, EL_ERR_DENIED, "state.members: duplicate peer ID");
    for (size_t i = 0; i < s->n_admins; i++)
        if (!in_list(s->members, s->n_members, s->admins[i]))
            return el_seterr(err, errlen, EL_ERR_DENIED, "state.admins[%zu] is not a member", i);
    return EL_OK;
}

/* ---- canonical encoding --------------------------------------------------- */

static uint8_t *put_u16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put_list(uint8_t *p, const char (*list)[EL_PEER_ID_LEN + 1], size_t n)
{
    char sorted[EL_GROUP_MAX_MEMBERS][EL_PEER_ID_LEN + 1];
    sorted_copy(list, n, sorted);
    p = put_u16(p, n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, sorted[i], EL_PEER_ID_LEN);
        p += EL_PEER_ID_LEN;
    }
    return p;
}

int el_group_canonical(const el_group_state *s, uint8_t out[EL_GROUP_CANONICAL_MAX],
                       size_t *outlen, char *err, size_t errlen)
{
    if (!out || !outlen)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    *outlen = 0;
    int rc = el_group_state_check(s, err, errlen);
    if (rc)
        return rc;
    uint8_t *p = out;
    memcpy(p, dom_group, sizeof dom_group);
    p += sizeof dom_group;
    /* checked above: exactly 32 lowercase hex digits, so this cannot fail */
    if (el_hex_decode(s->group_id, EL_GROUP_ID_HEX, p, EL_GROUP_ID_LEN) != EL_GROUP_ID_LEN)
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.group_id: not hex");
    p += EL_GROUP_ID_LEN;
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(s->version >> (8 * i));
    *p++ = (uint8_t)s->name_len;
    memcpy(p, s->name, s->name_len);
    p += s->name_len;
    p = put_list(p, s->admins, s->n_admins);
    p = put_list(p, s->members, s->n_members);
    *outlen = (size_t)(p - out);
    return EL_OK;
}

/* ---- Ed25519 -------------------------------------------------------------- */


/* ---- sign, verify, rules -------------------------------------------------- */

int el_group_sign(const el_identity *id, const el_group_state *s, el_group_signed *out,
                  char *err, size_t errlen)
{
    uint8_t msg[EL_GROUP_CANONICAL_MAX];
    size_t len;
    if (!id || !out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    int rc = el_group_canonical(s, msg, &len, err, errlen);
    if (rc)
        return rc;
    if (&out->state != s) /* signing in place is fine */
        out->state = *s;
    memcpy(out->by_ik, el_identity_bundle(id)->ik, EL_ID_KEY_LEN);
    rc = el_identity_sign(id, msg, len, out->sig);
    if (rc)
        return el_seterr(err, errlen, rc, "cannot sign the group state");
    return EL_OK;
}

int el_group_verify(const el_group_signed *g, char *err, size_t errlen)
{
    uint8_t msg[EL_GROUP_CANONICAL_MAX];
    size_t len;
    if (!g)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    int rc = el_group_canonical(&g->state, msg, &len, err, errlen);
    if (rc)
        return rc;
    if (el_id_verify(g->by_ik, msg, len, g->sig) != EL_OK)
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "sig: does not verify by by_ik over the state");
    return EL_OK;
}

/* peer_id(by_ik) into pid. */
static int signer_of(const el_group_signed *g, char pid[EL_PEER_ID_LEN + 1], char *err, size_t errlen)
{
    int rc = el_id_peer_id(g->by_ik, pid);
    if (rc)
        return el_seterr(err, errlen, rc, "cannot compute the signer's peer ID");
    return EL_OK;
}

int el_group_check(el_group_op op, const el_group_signed *g, char *err, size_t errlen)
{
    char pid[EL_PEER_ID_LEN + 1];
    if (op != EL_GROUP_OP_CREATE && op != EL_GROUP_OP_UPDATE)
        return el_seterr(err, errlen, EL_ERR_INVALID, "unknown group operation");
    int rc = el_group_verify(g, err, errlen);
    if (rc)
        return rc;
    if (op == EL_GROUP_OP_UPDATE)
        return EL_OK; /* the signer must be an admin of the *current* state */
    rc = signer_of(g, pid, err, errlen);
    if (rc)
        return rc;
    if (!el_group_is_admin(&g->state, pid))
        return el_seterr(err, errlen, EL_ERR_DENIED, "signer %s is not among state.admins", pid);
    if (g->state.version != 1)
        return el_seterr(err, errlen, EL_ERR_DENIED, "GROUP_CREATED with version %llu, must be 1",
                         (unsigned long long)g->state.version);
    return EL_OK;
}

static int may_update(const el_group_state *cur, const el_group_signed *g, char *err, size_t errlen)
{
    char pid[EL_PEER_ID_LEN + 1];
    if (strcmp(cur->group_id, g->state.group_id) != 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "update of group %s applied to group %s",
                         g->state.group_id, cur->group_id);
    int rc = signer_of(g, pid, err, errlen);
    if (rc)
        return rc;
    if (!el_group_is_admin(cur, pid))
        return el_seterr(err, errlen, EL_ERR_DENIED, "signer %s is not an admin of version %llu",
                         pid, (unsigned long long)cur->version);
    /* cur->version <= 2^53-1, so the sum cannot wrap */
    if (g->state.version != cur->version + 1)
        return el_seterr(err, errlen, EL_ERR_DENIED, "version %llu is not the next one after %llu",
                         (unsigned long long)g->state.version, (unsigned long long)cur->version);
    return EL_OK;
}

int el_group_may_apply(const el_group_state *current, el_group_op op, const el_group_signed *g,
                       char *err, size_t errlen)
{
    int rc = el_group_check(op, g, err, errlen);
    if (rc)
        return rc;
    if (op == EL_GROUP_OP_CREATE) {
        if (current)
            return el_seterr(err, errlen, EL_ERR_STATE, "group %s already exists (version %llu)",
                             current->group_id, (unsigned long long)current->version);
        return EL_OK;
    }
    if (!current)
        return el_seterr(err, errlen, EL_ERR_STATE, "update of unknown group %s", g->state.group_id);
    return may_update(current, g, err, errlen);
}

int el_group_is_member(const el_group_state *s, const char *peer_id)
{
    if (!s || !peer_id || s->n_members > EL_GROUP_MAX_MEMBERS)
        return 0;
    return in_list(s->members, s->n_members, peer_id);
}

int el_group_is_admin(const el_group_state *s, const char *peer_id)
{
    if (!s || !peer_id || s->n_admins > EL_GROUP_MAX_ADMINS)
        return 0;
    return in_list(s->admins, s->n_admins, peer_id);
}

int el_group_may_edit(const char *sender, const char *author)
{
    if (!el_id_valid_peer_id(sender) || !el_id_valid_peer_id(author))
        return EL_ERR_INVALID;
    return strcmp(sender, author) == 0 ? EL_OK : EL_ERR_DENIED;
}

/* ---- JSON ----------------------------------------------------------------- */


static int list_from_json(const char *what, const json_t *arr, char (*list)[EL_PEER_ID_LEN + 1],
                          size_t max, size_t *n, char *err, size_t errlen)
{
    if (!json_is_array(arr))
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.%s: missing or not an array", what);
    size_t count = json_array_size(arr);
    if (count < 1 || count > max)
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.%s: %zu entries, must be 1..%zu",
                         what, count, max);
    for (size_t i = 0; i < count; i++) {
        const json_t *e = json_array_get(arr, i);
        /* the length test also refuses an embedded NUL */
        if (!json_is_string(e) || json_string_length(e) != EL_PEER_ID_LEN ||
            !el_id_valid_peer_id(json_string_value(e)))
            return el_seterr(err, errlen, EL_ERR_INVALID, "state.%s[%zu]: not a peer ID", what, i);
        memcpy(list[i], json_string_value(e), EL_PEER_ID_LEN + 1);
    }
    *n = count;
    return EL_OK;
}

int el_group_state_from_json(const json_t *v, el_group_state *out, char *err, size_t errlen)
{
    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    memset(out, 0, sizeof *out);
    if (!json_is_object(v))
        return el_seterr(err, errlen, EL_ERR_INVALID, "state: missing or not an object");
    const json_t *gid = json_object_get(v, "group_id");
    if (!json_is_string(gid) ||
        !is_lower_hex(json_string_value(gid), json_string_length(gid), EL_GROUP_ID_HEX))
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.group_id: not 32 lowercase hex digits");
    memcpy(out->group_id, json_string_value(gid), EL_GROUP_ID_HEX + 1);
    if (el_json_uint(json_object_get(v, "version"), 1, EL_GROUP_VERSION_MAX, &out->version))
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.version: not an integer 1..2^53-1");
    const json_t *name = json_object_get(v, "name");
    if (!json_is_string(name) || json_string_length(name) < 1 ||
        json_string_length(name) > EL_GROUP_NAME_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "state.name: not a string of 1..%d bytes",
                         EL_GROUP_NAME_MAX);
    out->name_len = json_string_length(name);
    memcpy(out->name, json_string_value(name), out->name_len);
    int rc = list_from_json("admins", json_object_get(v, "admins"), out->admins,
                            EL_GROUP_MAX_ADMINS, &out->n_admins, err, errlen);
    if (rc)
        return rc;
    return list_from_json("members", json_object_get(v, "members"), out->members,
                          EL_GROUP_MAX_MEMBERS, &out->n_members, err, errlen);
}

static json_t *list_to_json(const char (*list)[EL_PEER_ID_LEN + 1], size_t n)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(arr, json_stringn(list[i], strnlen(list[i], EL_PEER_ID_LEN))) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *el_group_state_to_json(const el_group_state *s)
{
    if (!s || s->name_len > EL_GROUP_NAME_MAX || s->n_admins > EL_GROUP_MAX_ADMINS ||
        s->n_members > EL_GROUP_MAX_MEMBERS || s->version > EL_GROUP_VERSION_MAX)
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    /* json_object_set_new takes ownership even on failure, and refuses NULL
     * values (a name that is not UTF-8 makes json_stringn return NULL). */
    if (json_object_set_new(o, "group_id", json_stringn(s->group_id, strnlen(s->group_id, EL_GROUP_ID_HEX))) ||
        json_object_set_new(o, "version", json_integer((json_int_t)s->version)) ||
        json_object_set_new(o, "name", json_stringn(s->name, s->name_len)) ||
        json_object_set_new(o, "admins", list_to_json(s->admins, s->n_admins)) ||
        json_object_set_new(o, "members", list_to_json(s->members, s->n_members))) {
        json_decref(o);
        return NULL;
    }
    return o;
}
