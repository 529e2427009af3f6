/* json.c - see json.h. */
/* The jsmn implementation lives here, strict mode; json.h's own include of
 * jsmn.h is then a no-op thanks to jsmn's include guard. */
#define JSMN_STRICT
#include <jsmn.h>

#include "proto/json.h"

#include "base/err.h"

#include <stdint.h>
#include <string.h>

#define JSON_MAX_DEPTH_HARD 128

typedef struct {
    const char *p;
    const char *end;
    char *err;
    size_t errlen;
} scanner;

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* One UTF-8 sequence at s->p (first byte >= 0x80): rejects overlong forms,
 * surrogates and code points above U+10FFFF (RFC 3629). */
static int scan_utf8(scanner *s)
{
    const unsigned char *u = (const unsigned char *)s->p;
    size_t left = (size_t)(s->end - s->p);
    unsigned c = u[0];
    int n;
    unsigned cp, min;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; min = 0x10000; }
    else return -1;
    if (left < (size_t)n + 1)
        return -1;
    for (int i = 1; i <= n; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (u[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    s->p += n + 1;
    return 0;
}

/* Bytes of a uint64 that are < 0x20, '"', '\\' or >= 0x80: the ones a
 * string scan must look at. Nonzero when there is any (the classic
 * "has a byte less than n" bit tricks, applied per lane). */
static uint64_t special_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t ctl = (w - ones * 0x20) & ~w;
    uint64_t quote = w ^ (ones * '"'), bslash = w ^ (ones * '\\');
    quote = (quote - ones) & ~quote;
    bslash = (bslash - ones) & ~bslash;
    return (ctl | quote | bslash | w) & high;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int scan_string(scanner *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        /* plain ASCII runs (an SDP is ~1 KB of them) go 8 bytes at a time */
        while (s->end - s->p >= 8) {
            uint64_t w;
            memcpy(&w, s->p, 8);
            if (special_bytes(w))
                break;
            s->p += 8;
        }
        if (s->p >= s->end)
            break;
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return el_seterr(s->err, s->errlen, -1, "control character in string");
        if (c == '\\') {
            if (s->end - s->p < 2)
                break;
            char e = s->p[1];
            if (e == 'u') {
                if (s->end - s->p < 6 || !is_hex(s->p[2]) || !is_hex(s->p[3]) ||
                    !is_hex(s->p[4]) || !is_hex(s->p[5]))
                    return el_seterr(s->err, s->errlen, -1, "bad \\u escape");
                s->p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                s->p += 2;
            } else {
                return el_seterr(s->err, s->errlen, -1, "bad escape");
            }
        } else if (c >= 0x80) {
            if (scan_utf8(s) < 0)
                return el_seterr(s->err, s->errlen, -1, "invalid UTF-8");
        } else {
            s->p++;
        }
    }
    return el_seterr(s->err, s->errlen, -1, "unterminated string");
}

static int scan_digits(scanner *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -1;
}

static int scan_number(scanner *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (scan_digits(s) < 0)
        return el_seterr(s->err, s->errlen, -1, "bad number");
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (scan_digits(s) < 0)
            return el_seterr(s->err, s->errlen, -1, "bad number");
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits(s) < 0)
            return el_seterr(s->err, s->errlen, -1, "bad number");
    }
    return 0;
}

static int scan_literal(scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return el_seterr(s->err, s->errlen, -1, "unexpected character");
    s->p += n;
    return 0;
}

static int scan_scalar(scanner *s)
{
    switch (*s->p) {
    case '"': return scan_string(s);
    case 't': return scan_literal(s, "true");
    case 'f': return scan_literal(s, "false");
    case 'n': return scan_literal(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return scan_number(s);
        return el_seterr(s->err, s->errlen, -1, "unexpected character");
    }
}

/* Tokens as jsmn (strict mode) would make them, written while validating,
 * so that the relay's hot path reads each byte once (jsmn's second pass was
 * 7 % of echolinkd's CPU per relayed event). Strings span their content
 * (quotes excluded), primitives their text, containers their brackets; an
 * object's size counts its keys, a key's size is 1, an array's size counts
 * its elements. Beyond `max` tokens, counting goes on without writing. */
typedef struct {
    jsmntok_t *tok;
    int max, n;
    int key; /* the key whose value comes next; -1 none */
} tokens;

static int tok_add(tokens *t, jsmntype_t type, const char *base, const char *start,
                   const char *end)
{
    int i = t->n++;
    if (i < t->max)
        t->tok[i] = (jsmntok_t){type, (int)(start - base), end ? (int)(end - base) : -1, 0};
    return i;
}

/* A value token just added at index v: its parent counts it. */
static void tok_parented(tokens *t, const int *tstack, const char *stack, int depth)
{
    if (depth == 0)
        return;
    if (stack[depth - 1] == '[') {
        if (tstack[depth - 1] < t->max)
            t->tok[tstack[depth - 1]].size++;
    } else if (t->key >= 0 && t->key < t->max) {
        t->tok[t->key].size = 1;
    }
    t->key = -1;
}

/* Validates (and, with t, tokenizes) in one pass. Iterative, so hostile
 * nesting cannot exhaust the C stack: `stack` holds the open containers
 * (and `tstack` their tokens), and the state says what may come next. */
static int scan_json(const char *js, size_t len, int max_depth, tokens *t, char *err,
                     size_t errlen)
{
    scanner s = {js, js + len, err, errlen};
    char stack[JSON_MAX_DEPTH_HARD];
    int tstack[JSON_MAX_DEPTH_HARD];
    int depth = 0;
    if (max_depth > JSON_MAX_DEPTH_HARD)
        max_depth = JSON_MAX_DEPTH_HARD;

    skip_ws(&s);
    for (;;) {
        /* expecting a value */
        if (s.p >= s.end)
            return el_seterr(err, errlen, -1, "unexpected end");
        if (*s.p == '[' || *s.p == '{') {
            if (depth >= max_depth)
                return el_seterr(err, errlen, -1, "nested deeper than %d", max_depth);
            char open = *s.p;
            if (t) {
                int v = tok_add(t, open == '[' ? JSMN_ARRAY : JSMN_OBJECT, js, s.p, NULL);
                tok_parented(t, tstack, stack, depth);
                tstack[depth] = v;
            }
            s.p++;
            stack[depth++] = open;
            skip_ws(&s);
            if (s.p < s.end && *s.p == (open == '[' ? ']' : '}')) {
                s.p++;
                depth--;
                goto closed;
            }
            if (open == '{')
                goto expect_key;
            continue;
        }
        {
            const char *v0 = s.p;
            if (scan_scalar(&s) < 0)
                return -1;
            if (t) {
                int quoted = *v0 == '"';
                tok_add(t, quoted ? JSMN_STRING : JSMN_PRIMITIVE, js, v0 + quoted,
                        s.p - quoted);
                tok_parented(t, tstack, stack, depth);
            }
            goto after_value;
        }
    closed:
        if (t && tstack[depth] < t->max)
            t->tok[tstack[depth]].end = (int)(s.p - js);
    after_value:
        skip_ws(&s);
        if (depth == 0) {
            if (s.p != s.end)
                return el_seterr(err, errlen, -1, "trailing characters");
            return 0;
        }
        if (s.p >= s.end)
            return el_seterr(err, errlen, -1, "unexpected end");
        if (*s.p == ',') {
            s.p++;
            skip_ws(&s);
            if (stack[depth - 1] == '{')
                goto expect_key;
            continue;
        }
        if (*s.p == (stack[depth - 1] == '[' ? ']' : '}')) {
            s.p++;
            depth--;
            goto closed;
        }
        return el_seterr(err, errlen, -1, "expected ',' or closing bracket");
    expect_key:
        if (s.p >= s.end || *s.p != '"')
            return el_seterr(err, errlen, -1, "expected a string key");
        {
            const char *k0 = s.p;
            if (scan_string(&s) < 0)
                return -1;
            if (t) {
                int k = tok_add(t, JSMN_STRING, js, k0 + 1, s.p - 1);
                if (tstack[depth - 1] < t->max)
                    t->tok[tstack[depth - 1]].size++;
                t->key = k;
            }
        }
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return el_seterr(err, errlen, -1, "expected ':'");
        s.p++;
        skip_ws(&s);
    }
}

int el_json_validate(const char *js, size_t len, int max_depth, char *err, size_t errlen)
{
    return scan_json(js, len, max_depth, NULL, err, errlen);
}

int el_json_scan(el_json *j, const char *js, size_t len, jsmntok_t *tok, int maxtok,
                 int max_depth, char *err, size_t errlen)
{
    tokens t = {tok, maxtok < 0 ? 0 : maxtok, 0, -1};
    if (scan_json(js, len, max_depth, &t, err, errlen) < 0)
        return -1;
    if (t.n > t.max)
        return el_seterr(err, errlen, -2, "more than %d JSON values", maxtok);
    j->js = js;
    j->len = len;
    j->tok = tok;
    j->n = t.n;
    return 0;
}

int el_json_next(const el_json *j, int i)
{
    int end = j->tok[i].end;
    int k = i + 1;
    while (k < j->n && j->tok[k].start < end)
        k++;
    return k;
}

int el_json_str_is(const el_json *j, int i, const char *s)
{
    if (i < 0 || i >= j->n || j->tok[i].type != JSMN_STRING)
        return 0;
    size_t n = (size_t)(j->tok[i].end - j->tok[i].start);
    return strlen(s) == n && memcmp(j->js + j->tok[i].start, s, n) == 0;
}

int el_json_get(const el_json *j, int obj, const char *key)
{
    if (obj < 0 || obj >= j->n || j->tok[obj].type != JSMN_OBJECT)
        return -1;
    int k = obj + 1;
    for (int pair = 0; pair < j->tok[obj].size; pair++) {
        int v = k + 1;
        if (el_json_str_is(j, k, key))
            return v;
        k = el_json_next(j, v);
    }
    return -1;
}

int el_json_at(const el_json *j, int arr, int idx)
{
    if (arr < 0 || arr >= j->n || j->tok[arr].type != JSMN_ARRAY || idx < 0 ||
        idx >= j->tok[arr].size)
        return -1;
    int k = arr + 1;
    for (int i = 0; i < idx; i++)
        k = el_json_next(j, k);
    return k;
}

void el_json_span(const el_json *j, int i, size_t *start, size_t *end)
{
    int quoted = j->tok[i].type == JSMN_STRING;
    *start = (size_t)j->tok[i].start - (quoted ? 1 : 0);
    *end = (size_t)j->tok[i].end + (quoted ? 1 : 0);
}

int el_json_uint(const json_t *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(d >= (double)lo && d <= (double)hi)) /* also false for NaN */
        return -1;
    uint64_t u = (uint64_t)d;
    if ((double)u != d)
        return -1;
    *out = u;
    return 0;
}
