/* fuzz_checks.h - the invariants the fuzz targets check, shared with
 * tests/unit/test_fuzz_corpus.c so that the seed corpora also run in the
 * ordinary ASan test build.
 *
 * Each el_fuzz_check_*() takes arbitrary bytes and returns NULL when every
 * invariant holds, or a static description of the first violated one. The
 * libFuzzer targets abort() on a non-NULL result; the unit test fails.
 * Everything is static inline: include this header from one .c file. */
#ifndef EL_FUZZ_CHECKS_H
#define EL_FUZZ_CHECKS_H

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/enc.h"
#include "proto/eio.h"
#include "proto/json.h"
#include "proto/sio.h"

/* The validator's own hard limit (JSON_MAX_DEPTH_HARD in json.c). */
#define EL_FUZZ_JSON_DEPTH 128

/* ---- helpers ------------------------------------------------------------- */

static inline int el_fuzz_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline int el_fuzz_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* Facts about a document the validator accepted, found by an independent
 * walk over its text: a \u escape that is an unpaired surrogate (JSON.parse
 * accepts those, jansson does not), a number jansson cannot hold (integer
 * outside long long, real that overflows double), an object key with a
 * \u0000 escape (jansson refuses NUL in keys even with JSON_ALLOW_NUL), the
 * nesting depth. */
typedef struct {
    int lone_surrogate;
    int number_overflow;
    int has_nul;
    int nul_key;
    int depth;
} el_fuzz_json_facts;

static inline void el_fuzz_json_scan_facts(const char *js, size_t len, el_fuzz_json_facts *f)
{
    memset(f, 0, sizeof *f);
    f->has_nul = memchr(js, '\0', len) != NULL;
    int depth = 0;
    size_t i = 0;
    while (i < len) {
        char c = js[i];
        if (c == '"') {
            i++;
            int pending_high = 0, esc_nul = 0;
            while (i < len && js[i] != '"') {
                if (js[i] == '\\' && i + 1 < len) {
                    unsigned u;
                    if (js[i + 1] == 'u' && i + 5 < len && el_fuzz_hex4(js + i + 2, &u) == 0) {
                        if (u == 0)
                            esc_nul = 1;
                        if (u >= 0xd800 && u <= 0xdbff) {
                            if (pending_high)
                                f->lone_surrogate = 1;
                            pending_high = 1;
                        } else if (u >= 0xdc00 && u <= 0xdfff) {
                            if (!pending_high)
                                f->lone_surrogate = 1;
                            pending_high = 0;
                        } else {
                            if (pending_high)
                                f->lone_surrogate = 1;
                            pending_high = 0;
                        }
                        i += 6;
                        continue;
                    }
                    if (pending_high)
                        f->lone_surrogate = 1;
                    pending_high = 0;
                    i += 2;
                    continue;
                }
                if (pending_high)
                    f->lone_surrogate = 1;
                pending_high = 0;
                i++;
            }
            if (pending_high)
                f->lone_surrogate = 1;
            i++; /* closing quote */
            if (esc_nul) { /* a key if a ':' follows */
                size_t k = i;
                while (k < len && (js[k] == ' ' || js[k] == '\t' || js[k] == '\n' || js[k] == '\r'))
                    k++;
                if (k < len && js[k] == ':')
                    f->nul_key = 1;
            }
            continue;
        }
        if (c == '[' || c == '{') {
            if (++depth > f->depth)
                f->depth = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t s = i;
            int real = 0;
            while (i < len && (js[i] == '-' || js[i] == '+' || js[i] == '.' || js[i] == 'e' ||
                               js[i] == 'E' || (js[i] >= '0' && js[i] <= '9'))) {
                if (js[i] == '.' || js[i] == 'e' || js[i] == 'E')
                    real = 1;
                i++;
            }
            char num[512];
            size_t n = i - s;
            if (n >= sizeof num) {
                f->number_overflow = 1; /* long literals: let jansson decide */
                continue;
            }
            memcpy(num, js + s, n);
            num[n] = '\0';
            errno = 0;
            if (real) {
                double d = strtod(num, NULL);
                if (isinf(d))
                    f->number_overflow = 1;
            } else {
                (void)strtoll(num, NULL, 10);
                if (errno == ERANGE)
                    f->number_overflow = 1;
            }
            continue;
        }
        i++;
    }
}

/* Subtree size of the value token at i, from jsmn's size fields alone. */
static inline int el_fuzz_subtree(const el_json *j, int i, int budget)
{
    int k = i + 1;
    for (int c = 0; c < j->tok[i].size && k < j->n && budget > 0; c++)
        k += el_fuzz_subtree(j, k, budget - 1);
    return k - i;
}

static inline int el_fuzz_tok_has_backslash(const el_json *j, int i)
{
    return memchr(j->js + j->tok[i].start, '\\',
                  (size_t)(j->tok[i].end - j->tok[i].start)) != NULL;
}

/* Walks the jsmn tree at i together with jansson's value v (v may be NULL
 * when jansson refused the document). Returns NULL or a violation. */
static inline const char *el_fuzz_check_tree(const el_json *j, int i, json_t *v, int depth)
{
    const jsmntok_t *t = &j->tok[i];
    if (depth > EL_FUZZ_JSON_DEPTH + 1)
        return "jsmn tree deeper than the validator allows";
    if (t->start < 0 || t->end < t->start || (size_t)t->end > j->len)
        return "token span outside the document";
    if (el_json_next(j, i) != i + el_fuzz_subtree(j, i, EL_FUZZ_JSON_DEPTH + 2))
        return "el_json_next disagrees with the token sizes";
    size_t s, e;
    el_json_span(j, i, &s, &e);
    if (s > e || e > j->len)
        return "el_json_span outside the document";

    switch (t->type) {
    case JSMN_STRING: {
        if (v && !json_is_string(v))
            return "jsmn string, jansson not a string";
        if (j->js[s] != '"' || j->js[e - 1] != '"')
            return "string span without its quotes";
        size_t n = (size_t)(t->end - t->start);
        char *copy = malloc(n + 1);
        if (!copy)
            return NULL;
        memcpy(copy, j->js + t->start, n);
        copy[n] = '\0';
        int is = el_json_str_is(j, i, copy);
        int same = !v || el_fuzz_tok_has_backslash(j, i) ||
                   (json_string_length(v) == n && memcmp(json_string_value(v), copy, n) == 0);
        free(copy);
        if (!is)
            return "el_json_str_is false for the token's own text";
        if (!same)
            return "string without escapes differs from jansson's value";
        return NULL;
    }
    case JSMN_PRIMITIVE: {
        char c = j->js[t->start];
        if (v) {
            if (c == 't' && !json_is_true(v)) return "true mismatch";
            if (c == 'f' && !json_is_false(v)) return "false mismatch";
            if (c == 'n' && !json_is_null(v)) return "null mismatch";
            if ((c == '-' || (c >= '0' && c <= '9')) && !json_is_number(v))
                return "number mismatch";
        }
        if (el_json_str_is(j, i, ""))
            return "el_json_str_is true for a primitive";
        return NULL;
    }
    case JSMN_ARRAY: {
        if (v && (!json_is_array(v) || json_array_size(v) != (size_t)t->size))
            return "array differs from jansson's";
        int k = i + 1;
        for (int c = 0; c < t->size; c++) {
            if (el_json_at(j, i, c) != k)
                return "el_json_at disagrees with a sequential walk";
            const char *r = el_fuzz_check_tree(j, k, v ? json_array_get(v, (size_t)c) : NULL,
                                               depth + 1);
            if (r)
                return r;
            k = el_json_next(j, k);
        }
        if (el_json_at(j, i, t->size) != -1)
            return "el_json_at past the end is not -1";
        if (el_json_get(j, i, "") != -1)
            return "el_json_get on an array is not -1";
        return NULL;
    }
    case JSMN_OBJECT: {
        if (v && (!json_is_object(v) || json_object_size(v) > (size_t)t->size))
            return "object differs from jansson's";
        /* an escaped key may decode to the same name as a plain one, and
         * jansson keeps the last: compare member values only without them */
        int k = i + 1;
        for (int c = 0; v && c < t->size; c++) {
            if (el_fuzz_tok_has_backslash(j, k))
                v = NULL;
            k = el_json_next(j, k + 1);
        }
        k = i + 1;
        for (int c = 0; c < t->size; c++) {
            if (j->tok[k].type != JSMN_STRING || j->tok[k].size != 1)
                return "object key is not a string with one value";
            if (el_json_next(j, k) != k + 1)
                return "el_json_next of a key is not its value";
            size_t n = (size_t)(j->tok[k].end - j->tok[k].start);
            char *key = malloc(n + 1);
            if (!key)
                return NULL;
            memcpy(key, j->js + j->tok[k].start, n);
            key[n] = '\0';
            /* el_json_get returns the first pair with this raw key */
            int first = -1, last = -1, kk = i + 1;
            for (int d = 0; d < t->size; d++) {
                if (el_json_str_is(j, kk, key)) {
                    if (first < 0)
                        first = kk + 1;
                    last = kk + 1;
                }
                kk = el_json_next(j, kk + 1);
            }
            int got = el_json_get(j, i, key);
            json_t *jv = NULL;
            int check_value = v != NULL;
            if (check_value) {
                jv = json_object_get(v, key);
                /* duplicates: jansson keeps the last; compare that pair only */
                if (!jv)
                    check_value = 0;
            }
            free(key);
            if (got != first)
                return "el_json_get does not return the first matching member";
            const char *r = el_fuzz_check_tree(j, k + 1, (check_value && k + 1 == last) ? jv : NULL,
                                               depth + 1);
            if (r)
                return r;
            k = el_json_next(j, k + 1);
        }
        if (el_json_at(j, i, 0) != -1)
            return "el_json_at on an object is not -1";
        return NULL;
    }
    default:
        return "unexpected jsmn token type";
    }
}

/* ---- JSON ------------------------------------------------------------------ */

/* el_json_scan writes its tokens in one pass with the validation; they
 * must be exactly jsmn's (strict mode), which the navigation helpers were
 * written against. jsmn wants a container at the top (a lone scalar needs a
 * delimiter after it there), so only those are compared. */
static inline const char *el_fuzz_check_like_jsmn(const el_json *j, const char *js, size_t size)
{
    size_t a = 0;
    while (a < size && el_fuzz_is_ws(js[a]))
        a++;
    if (a == size || (js[a] != '[' && js[a] != '{'))
        return NULL;
    jsmntok_t *ref = malloc(sizeof *ref * (size_t)(j->n + 1));
    if (!ref)
        return NULL;
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, js, size, ref, (unsigned)j->n + 1);
    const char *r = NULL;
    if (n != j->n)
        r = "el_json_scan made a different number of tokens than jsmn";
    for (int i = 0; !r && i < n; i++) {
        const jsmntok_t *x = &j->tok[i], *y = &ref[i];
        if (x->type != y->type || x->start != y->start || x->end != y->end || x->size != y->size)
            r = "an el_json_scan token differs from jsmn's";
    }
    free(ref);
    return r;
}

static inline const char *el_fuzz_check_json(const uint8_t *data, size_t size)
{
    const char *js = (const char *)data;
    char err[160] = "";
    int rc = el_json_validate(js, size, EL_FUZZ_JSON_DEPTH, err, sizeof err);
    int rc8 = el_json_validate(js, size, 8, NULL, 0);
    if (rc != 0 && rc != -1)
        return "el_json_validate returned neither 0 nor -1";
    if (rc == -1 && !err[0])
        return "el_json_validate failed without a reason";
    if (rc8 == 0 && rc != 0)
        return "valid at depth 8 but not at depth 128";

    el_fuzz_json_facts facts;
    json_error_t jerr;
    json_t *doc = json_loadb(js, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

    if (rc != 0) {
        /* jansson accepting what we reject must be explained */
        const char *r = NULL;
        if (doc) {
            el_fuzz_json_scan_facts(js, size, &facts);
            if (!facts.has_nul && facts.depth <= EL_FUZZ_JSON_DEPTH)
                r = "jansson accepts a document el_json_validate rejects";
        }
        json_decref(doc);
        return r;
    }

    el_fuzz_json_facts f;
    el_fuzz_json_scan_facts(js, size, &f);
    if (f.depth > EL_FUZZ_JSON_DEPTH) {
        json_decref(doc);
        return "el_json_validate accepted nesting beyond its limit";
    }
    if ((f.depth <= 8) != (rc8 == 0)) {
        json_decref(doc);
        return "nesting limit 8 applied at the wrong depth";
    }
    if (!doc && !f.lone_surrogate && !f.number_overflow && !f.nul_key)
        return "el_json_validate accepts a document jansson rejects";

    /* tokenize: at most one token per input byte */
    int maxtok = (int)size + 1;
    jsmntok_t *tok = malloc(sizeof *tok * (size_t)maxtok);
    if (!tok) {
        json_decref(doc);
        return NULL;
    }
    el_json j;
    memset(&j, 0, sizeof j);
    const char *r = NULL;
    int src = el_json_scan(&j, js, size, tok, maxtok, EL_FUZZ_JSON_DEPTH, err, sizeof err);
    if (src != 0) {
        r = src == -2 ? "el_json_scan ran out of tokens with one per byte"
                      : "el_json_scan rejects what el_json_validate accepts";
        goto out;
    }
    if (j.n < 1 || j.n > maxtok || j.js != js || j.len != size || j.tok != tok) {
        r = "el_json_scan filled el_json wrongly";
        goto out;
    }
    if (el_json_next(&j, 0) != j.n) {
        r = "the root's next is not the token count";
        goto out;
    }
    {
        size_t s, e, a = 0, b = size;
        while (a < b && el_fuzz_is_ws(js[a]))
            a++;
        while (b > a && el_fuzz_is_ws(js[b - 1]))
            b--;
        el_json_span(&j, 0, &s, &e);
        if (s != a || e != b) {
            r = "the root's span is not the document without whitespace";
            goto out;
        }
    }
    r = el_fuzz_check_tree(&j, 0, doc, 0);
    if (r)
        goto out;
    r = el_fuzz_check_like_jsmn(&j, js, size);
    if (r)
        goto out;
    /* the token limit: exactly n tokens fit, n - 1 do not */
    {
        el_json j2;
        int n = j.n;
        if (el_json_scan(&j2, js, size, tok, n, EL_FUZZ_JSON_DEPTH, NULL, 0) != 0)
            r = "el_json_scan fails with exactly enough tokens";
        else if (n > 1 && el_json_scan(&j2, js, size, tok, n - 1, EL_FUZZ_JSON_DEPTH, NULL, 0) != -2)
            r = "el_json_scan does not report -2 with one token too few";
    }
out:
    free(tok);
    json_decref(doc);
    return r;
}

/* ---- Socket.IO -------------------------------------------------------------- */

static inline int el_fuzz_sio_same(const el_sio_packet *a, const el_sio_packet *b)
{
    return a->type == b->type && a->attachments == b->attachments && a->id == b->id &&
           a->nsp_len == b->nsp_len && memcmp(a->nsp, b->nsp, a->nsp_len) == 0 &&
           a->data_len == b->data_len &&
           (a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0);
}

static inline const char *el_fuzz_check_sio(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    el_sio_packet p;
    char err[160] = "";
    int rc = el_sio_parse(buf, size, &p, err, sizeof err);
    if (rc == -1)
        return err[0] ? NULL : "el_sio_parse failed without a reason";
    if (rc != 0)
        return "el_sio_parse returned neither 0 nor -1";

    /* field invariants */
    int binary = p.type == EL_SIO_BINARY_EVENT || p.type == EL_SIO_BINARY_ACK;
    if (p.type != EL_SIO_CONNECT && p.type != EL_SIO_DISCONNECT && p.type != EL_SIO_EVENT &&
        p.type != EL_SIO_ACK && !binary)
        return "accepted packet type a client may not send";
    if (p.attachments > EL_SIO_MAX_ATTACHMENTS || (!binary && p.attachments))
        return "bad attachment count accepted";
    if (p.nsp >= buf && p.nsp < buf + size) {
        if (p.nsp_len > (size_t)(buf + size - p.nsp))
            return "namespace runs past the buffer";
    } else if (p.nsp_len != 1) {
        return "namespace outside the buffer and not the default";
    }
    if (p.id < EL_SIO_NO_ID || p.id > 999999999999999LL)
        return "ack id out of range";
    if (p.data_len && (p.data < buf || p.data + p.data_len != buf + size))
        return "data is not the tail of the buffer";
    switch (p.type) {
    case EL_SIO_DISCONNECT:
        if (p.data_len) return "DISCONNECT with data";
        break;
    case EL_SIO_CONNECT:
        if (p.data_len && p.data[0] != '{') return "CONNECT data not an object";
        break;
    default:
        if (!p.data_len || p.data[0] != '[') return "event/ack data not an array";
        if ((p.type == EL_SIO_ACK || p.type == EL_SIO_BINARY_ACK) && p.id < 0)
            return "ACK without id";
    }

    if (p.nsp_len < 1 || p.nsp[0] != '/' || memchr(p.nsp, ',', p.nsp_len))
        return "bad namespace";

    /* re-serialize (header via el_sio_header) and re-parse: same packet */
    char nsp[1024];
    int has_nsp = !(p.nsp_len == 1);
    if (p.nsp_len >= sizeof nsp)
        return NULL; /* long namespaces: no round trip */
    memcpy(nsp, p.nsp, p.nsp_len);
    nsp[p.nsp_len] = '\0';
    if (memchr(p.nsp, '\0', p.nsp_len))
        return NULL; /* not representable as a C string for el_sio_header */
    if (!el_sio_nsp_is(&p, nsp))
        return "el_sio_nsp_is false for the packet's own namespace";
    size_t cap = 64 + p.nsp_len + p.data_len;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    const char *r = NULL;
    if (binary) {
        o = (size_t)snprintf(out, cap, "%d%u-%s%s", (int)p.type, p.attachments,
                             has_nsp ? nsp : "", has_nsp ? "," : "");
        if (p.id >= 0)
            o += (size_t)snprintf(out + o, cap - o, "%lld", (long long)p.id);
    } else {
        int n = el_sio_header(out, cap, p.type, has_nsp ? nsp : NULL, p.id);
        if (n < 0) {
            r = "el_sio_header failed with room to spare";
            goto out;
        }
        o = (size_t)n;
        char want[64];
        snprintf(want, sizeof want, "%d", (int)p.type);
        if (out[0] != want[0]) {
            r = "el_sio_header wrote the wrong type";
            goto out;
        }
    }
    if (p.data_len)
        memcpy(out + o, p.data, p.data_len);
    o += p.data_len;
    {
        el_sio_packet q;
        if (el_sio_parse(out, o, &q, err, sizeof err) != 0)
            r = "re-serialized packet does not parse";
        else if (!el_fuzz_sio_same(&p, &q))
            r = "re-serialized packet parses differently";
    }
    /* the payload is the caller's to validate; it must not crash */
    if (!r && p.data_len)
        (void)el_json_validate(p.data, p.data_len, 32, NULL, 0);
out:
    free(out);
    return r;
}

/* ---- Engine.IO + base64 ------------------------------------------------------ */

/* A decoder may only accept the one canonical encoding of what it returns. */
static inline const char *el_fuzz_check_b64(const char *in, size_t n, int url)
{
    size_t cap = n / 4 * 3 + 3;
    uint8_t *out = malloc(cap);
    char *again = malloc(n + 8);
    const char *r = NULL;
    if (!out || !again)
        goto out;
    ssize_t d = url ? el_b64url_decode(in, n, out, cap) : el_b64_decode(in, n, out, cap);
    if (d < -1 || (d >= 0 && (size_t)d > n * 3 / 4)) {
        r = "base64 decoder returned an impossible length";
        goto out;
    }
    if (d < 0)
        goto out;
    ssize_t e = url ? el_b64url_encode(out, (size_t)d, again, n + 8)
                    : el_b64_encode(out, (size_t)d, again, n + 8);
    if (e != (ssize_t)n || memcmp(again, in, n) != 0) {
        r = "base64 decoder accepted a non-canonical encoding";
        goto out;
    }
    /* an output buffer one byte short must be refused */
    if (d > 0) {
        uint8_t *tight = malloc((size_t)d - 1 ? (size_t)d - 1 : 1);
        if (tight) {
            ssize_t t = url ? el_b64url_decode(in, n, tight, (size_t)d - 1)
                            : el_b64_decode(in, n, tight, (size_t)d - 1);
            free(tight);
            if (t != -1)
                r = "base64 decoder wrote into a too-small buffer";
        }
    }
out:
    free(out);
    free(again);
    return r;
}

static inline const char *el_fuzz_check_eio(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    el_eio_packet p;
    const char *r;

    /* one packet */
    int rc = el_eio_parse(body, size, &p);
    if (rc == 0) {
        if (size == 0 || p.data != body + 1 || p.len != size - 1)
            return "el_eio_parse data is not the rest of the packet";
        if (p.binary != (body[0] == 'b'))
            return "el_eio_parse binary flag wrong";
        if ((unsigned)p.type > EL_EIO_NOOP || (p.binary && p.type != EL_EIO_MESSAGE))
            return "el_eio_parse type out of range";
        if (!p.binary && p.type != (el_eio_type)(body[0] - '0'))
            return "el_eio_parse type differs from the digit";
    } else if (rc != -1) {
        return "el_eio_parse returned neither 0 nor -1";
    } else if (size && ((body[0] >= '0' && body[0] <= '6') || body[0] == 'b')) {
        return "el_eio_parse rejected a valid type";
    }

    /* a polling payload */
    size_t pos = 0, prev = 0, joined = 0;
    int packets = 0;
    for (;;) {
        rc = el_eio_payload_next(body, size, &pos, &p);
        if (rc == 0) {
            if (joined != size)
                return "accepted payload is not its records joined by 0x1e";
            break;
        }
        if (rc == -1)
            break;
        if (rc != 1)
            return "el_eio_payload_next returned an unexpected value";
        if (packets > 0 && pos <= prev)
            return "el_eio_payload_next did not advance";
        prev = pos;
        if (packets++ > (int)size)
            return "el_eio_payload_next returned more packets than bytes";
        if (p.data < body + 1 || p.data + p.len > body + size)
            return "record outside the body";
        if (memchr(p.data, EL_EIO_RS, p.len))
            return "record contains the separator";
        joined += p.len + 1 + (packets > 1 ? 1 : 0);
        if (p.binary) {
            r = el_fuzz_check_b64(p.data, p.len, 0);
            if (r)
                return r;
        } else if (p.type == EL_EIO_MESSAGE && p.len) {
            r = el_fuzz_check_sio((const uint8_t *)p.data, p.len);
            if (r)
                return r;
        }
    }
    if (pos == 0 && size > 0)
        return "el_eio_payload_next did not move";

    /* the whole input as base64 and base64url */
    r = el_fuzz_check_b64(body, size, 0);
    if (!r)
        r = el_fuzz_check_b64(body, size, 1);
    return r;
}

#endif
