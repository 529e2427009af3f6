/* fuzz_msg.c - libFuzzer target: arbitrary bytes as a decrypted plaintext
 * (§9.3) into el_msg_plain_split, then el_msg_parse (any kind but 0x02, so
 * that every input exercises the message parser) or el_msg_chunk_decode
 * (kind 0x02). Seeds: tests/fuzz/corpus/msg (the e2ee.json messages).
 *
 * Invariants:
 * - results are one of the documented codes, with *out NULL and a reason on
 *   error;
 * - a parsed message respects every bound of §11 (checked again here);
 * - it re-encodes (or is refused only as too large, when the sender's
 *   spelling was shorter than ours, e.g. 1e12 for a 13-digit ts), the
 *   encoding parses back to an equal message, and encoding that again gives
 *   the same bytes;
 * - a decoded chunk points into the input (no copy) and re-encodes to the
 *   exact input bytes.
 *
 * test_msg.c includes this file with EL_FUZZ_MSG_NO_MAIN to run the seeds
 * through el_fuzz_check_msg() in the ordinary ASan build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/group.h"
#include "proto/msg.h"

static int fz_lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int fz_str_ok(const el_msg_str *s, size_t lo, size_t hi)
{
    return s->p && s->len >= lo && s->len <= hi && s->p[s->len] == '\0';
}

/* The bounds of §11, checked independently of the parser's code. */
static const char *fz_check_fields(const el_msg *m)
{
    if (!fz_lower_hex(m->id, 32) || m->ts > EL_MSG_UINT_MAX)
        return "common members out of bounds";
    if (m->has_group && !fz_lower_hex(m->group, 32))
        return "group not an ID";
    switch (m->type) {
    case EL_MSG_T_CHAT:
        if (!fz_str_ok(&m->u.chat.text, 1, 32768) || (m->u.chat.has_reply_to && !fz_lower_hex(m->u.chat.reply_to, 32)))
            return "CHAT out of bounds";
        break;
    case EL_MSG_T_REACTION:
        if (!fz_str_ok(&m->u.reaction.emoji, 1, 64) || !fz_lower_hex(m->u.reaction.target, 32))
            return "REACTION out of bounds";
        break;
    case EL_MSG_T_DELIVERY_RECEIPT:
    case EL_MSG_T_READ_RECEIPT:
        if (m->u.receipt.n < 1 || m->u.receipt.n > 256)
            return "receipt count out of bounds";
        for (size_t i = 0; i < m->u.receipt.n; i++)
            if (!fz_lower_hex(m->u.receipt.ids[i], 32))
                return "receipt id not an ID";
        break;
    case EL_MSG_T_EDIT_MESSAGE:
        if (!fz_str_ok(&m->u.edit.text, 1, 32768) || !fz_lower_hex(m->u.edit.target, 32))
            return "EDIT_MESSAGE out of bounds";
        break;
    case EL_MSG_T_FILE_META: {
        const el_msg_str *n = &m->u.file_meta.name;
        if (!fz_str_ok(n, 1, 255) || !fz_str_ok(&m->u.file_meta.mime, 1, 127) ||
            m->u.file_meta.size > EL_MSG_UINT_MAX || !fz_lower_hex(m->u.file_meta.sha256, 64) ||
            strncmp(m->u.file_meta.channel, "f:", 2) != 0 || !fz_lower_hex(m->u.file_meta.channel + 2, 32))
            return "FILE_META out of bounds";
        for (size_t i = 0; i < n->len; i++) {
            unsigned char c = (unsigned char)n->p[i];
            if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' ||
                (c == 0xc2 && i + 1 < n->len && (unsigned char)n->p[i + 1] < 0xa0))
                return "FILE_META name has a forbidden character";
        }
        if (m->u.file_meta.voice &&
            (m->u.file_meta.duration_ms > 86400000u || strncmp(m->u.file_meta.mime.p, "audio/", 6) != 0))
            return "FILE_META voice out of bounds";
        break;
    }
    case EL_MSG_T_FILE_CANCEL:
        if (m->u.file_cancel.has_reason && !fz_str_ok(&m->u.file_cancel.reason, 0, 256))
            return "FILE_CANCEL reason out of bounds";
        break;
    case EL_MSG_T_GROUP_CREATED:
    case EL_MSG_T_GROUP_UPDATE:
        if (el_group_check(m->type == EL_MSG_T_GROUP_CREATED ? EL_GROUP_OP_CREATE : EL_GROUP_OP_UPDATE,
                           &m->u.group.g, NULL, 0) != EL_OK)
            return "parsed group message fails el_group_check";
        if (m->type == EL_MSG_T_GROUP_UPDATE && m->u.group.change == EL_GROUP_CHANGE_NONE)
            return "GROUP_UPDATE without change";
        break;
    default:
        break;
    }
    return NULL;
}

static const char *fz_check_roundtrip(const el_msg *m)
{
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    el_msg *back = NULL;
    const char *violation = NULL;
    int rc = el_msg_encode(m, &a, &alen, NULL, 0);
    if (rc == EL_ERR_TOO_LARGE)
        return NULL;
    if (rc != EL_OK)
        return "a parsed message does not encode";
    if (a[0] != EL_PT_MESSAGE || alen - 1 > EL_MSG_MAX)
        violation = "encoding has a wrong kind or size";
    else if (el_msg_parse(a + 1, alen - 1, &back, NULL, 0) != EL_OK)
        violation = "encoding does not parse";
    else if (!el_msg_equal(m, back))
        violation = "encoding parses to a different message";
    else if (el_msg_encode(back, &b, &blen, NULL, 0) != EL_OK)
        violation = "re-parsed message does not encode";
    else if (alen != blen || memcmp(a, b, alen) != 0)
        violation = "encoding is not a fixed point";
    el_msg_free(back);
    free(a);
    free(b);
    return violation;
}

static const char *fz_check_message(const uint8_t *body, size_t len)
{
    char err[256] = "";
    el_msg *m = (el_msg *)&err; /* must be overwritten */
    int rc = el_msg_parse(body, len, &m, err, sizeof err);
    switch (rc) {
    case EL_ERR_INVALID:
    case EL_ERR_TOO_LARGE:
    case EL_ERR_DENIED:
    case EL_ERR_CRYPTO:
        if (m != NULL)
            return "failed parse left *out set";
        if (err[0] == '\0')
            return "failed parse gave no reason";
        if ((rc == EL_ERR_TOO_LARGE) != (len > EL_MSG_MAX))
            return "TOO_LARGE iff over 65536 bytes";
        return NULL;
    case EL_OK:
    case EL_MSG_UNKNOWN:
        break;
    default:
        return "unexpected result code";
    }
    const char *violation = NULL;
    if (!m)
        return "successful parse without a message";
    if (len > EL_MSG_MAX)
        violation = "accepted over 65536 bytes";
    else if ((rc == EL_MSG_UNKNOWN) != (m->type == EL_MSG_T_UNKNOWN))
        violation = "EL_MSG_UNKNOWN iff type unknown";
    else
        violation = fz_check_fields(m);
    if (!violation && rc == EL_OK)
        violation = fz_check_roundtrip(m);
    el_msg_free(m);
    return violation;
}

static const char *fz_check_chunk(const uint8_t *pt, size_t len)
{
    el_msg_chunk c;
    const uint8_t *body = pt + 1;
    size_t blen = len - 1;
    int rc = el_msg_chunk_decode(body, blen, &c, NULL, 0);
    int fits = blen >= EL_CHUNK_HDR - 1 + 1 && blen <= EL_CHUNK_HDR - 1 + EL_CHUNK_DATA_MAX;
    if ((rc == EL_OK) != fits || (rc != EL_OK && rc != EL_ERR_INVALID))
        return "chunk accepted iff 1..65536 data bytes";
    if (rc != EL_OK)
        return NULL;
    if (c.data != body + 24 || c.len != blen - 24)
        return "chunk data is not a pointer into the input";
    uint8_t *out = malloc(len);
    size_t olen = 0;
    if (!out)
        return NULL;
    const char *violation = NULL;
    if (el_msg_chunk_encode(c.file_id, c.offset, c.data, c.len, out, len, &olen) != EL_OK)
        violation = "decoded chunk does not encode";
    else if (olen != len || memcmp(out, pt, len) != 0)
        violation = "chunk does not re-encode to its input";
    free(out);
    return violation;
}

/* NULL when every invariant holds for this input, else the first violated. */
static const char *el_fuzz_check_msg(const uint8_t *data, size_t size)
{
    el_msg_plain p;
    int rc = el_msg_plain_split(data, size, &p, NULL, 0);
    if (size == 0 || size > EL_PT_MAX)
        return rc < 0 ? NULL : "empty or oversized plaintext accepted";
    if (rc != EL_OK || p.kind != data[0] || p.body != data + 1 || p.len != size - 1)
        return "plaintext split wrong";
    if (p.kind == EL_PT_CHUNK)
        return fz_check_chunk(data, size);
    return fz_check_message(p.body, p.len);
}

#ifndef EL_FUZZ_MSG_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_msg(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_msg: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
#endif
