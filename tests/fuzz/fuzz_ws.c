/* fuzz_ws.c - libFuzzer target: the RFC 6455 server-side codec
 * (src/proto/ws.h).
 *
 * Input: byte 0 sets max_message (byte * 4: 0..1020, small so that 1009 is
 * reached), byte 1 seeds the split points, the rest is a stream of client
 * frames. The whole input is also parsed as a request head.
 *
 * Invariants:
 *  - the stream fed whole, and fed in chunks whose sizes come from the seed
 *    and the stream (each chunk an exact-size heap copy, so ASan sees any
 *    over-read), delivers the same messages and returns the same code as a
 *    plain reference decoder restated here (whole-stream, byte by byte);
 *  - delivered data messages are <= max_message, control payloads <= 125,
 *    ops are TEXT/BINARY/CLOSE/PING/PONG, data is never NULL, at most one
 *    callback per 6 bytes of stream; a close code comes with a reason;
 *  - a callback that returns non-zero at the k-th message stops the feed
 *    there with its value;
 *  - nothing is held after a complete stream (rx->buf NULL), nothing leaks
 *    after el_ws_rx_reset (LeakSanitizer);
 *  - the stream as one server frame (el_ws_frame_header), masked as a client
 *    would, decodes to itself; el_ws_close_frame fits its buffer, writes a
 *    prefix of the reason and never cuts a UTF-8 character;
 *  - el_ws_head_parse: the result is <= min(size, EL_WS_HEAD_MAX), 0 only
 *    below EL_WS_HEAD_MAX; a head ends in CRLFCRLF, its pointers lie inside
 *    it, the head alone parses to the same length, one byte less wants more,
 *    el_ws_head_line agrees on the request line; an accepted key gives 28
 *    base64 characters.
 * tests/unit/test_fuzz_corpus.c can include this file with EL_FUZZ_NO_MAIN. */
#ifndef EL_FUZZ_WS_C
#define EL_FUZZ_WS_C

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ws.h"

typedef struct {
    uint8_t op;
    size_t len;
    uint64_t hash;
} el_fuzz_ws_ev;

typedef struct {
    el_fuzz_ws_ev *ev;
    size_t n, cap;
    size_t limit;
    size_t stop_at; /* return stop_rc at this event (1-based); 0: never */
    const char *bad; /* first invariant the callback saw violated */
} el_fuzz_ws_rec;

#define EL_FUZZ_WS_STOP 4242

static uint64_t el_fuzz_ws_fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int el_fuzz_ws_push(el_fuzz_ws_rec *r, uint8_t op, const uint8_t *d, size_t n)
{
    if (r->n == r->cap) {
        r->bad = "more callbacks than the stream has frames";
        return -1;
    }
    r->ev[r->n++] = (el_fuzz_ws_ev){op, n, el_fuzz_ws_fnv(d, n)};
    return 0;
}

static int el_fuzz_ws_on(void *user, el_ws_op op, uint8_t *data, size_t len)
{
    el_fuzz_ws_rec *r = user;
    if (!data)
        r->bad = "NULL data";
    else if (op == EL_WS_TEXT || op == EL_WS_BINARY) {
        if (len > r->limit)
            r->bad = "message over max_message";
    } else if (op == EL_WS_CLOSE || op == EL_WS_PING || op == EL_WS_PONG) {
        if (len > 125)
            r->bad = "control payload over 125 bytes";
    } else {
        r->bad = "unexpected op";
    }
    if (r->bad || el_fuzz_ws_push(r, (uint8_t)op, data, len))
        return -7;
    if (len)
        data[len - 1] ^= 0x5a; /* writable, and scribbling must not matter */
    return r->stop_at && r->n == r->stop_at ? EL_FUZZ_WS_STOP : 0;
}

/* ---- the reference: whole stream, no state carried between calls ---- */

static int el_fuzz_ws_close_ok(unsigned c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

/* Decodes s[0..n) into r; returns 0 (stream ends, maybe mid-frame) or the
 * close code. msg/tmp: scratch of n bytes each. */
static int el_fuzz_ws_ref(const uint8_t *s, size_t n, size_t limit, el_fuzz_ws_rec *r, uint8_t *msg,
                          uint8_t *tmp)
{
    size_t p = 0, mlen = 0;
    unsigned mop = 0;
    while (n - p >= 2) {
        unsigned b0 = s[p], b1 = s[p + 1], op = b0 & 15, fin = b0 >> 7, ctl = op >= 8;
        if ((b0 & 0x70) || (op > 2 && op < 8) || op > 10)
            return 1002;
        if ((op == 0 && !mop) || ((op == 1 || op == 2) && mop))
            return 1002;
        if (ctl && (!fin || (b1 & 127) > 125))
            return 1002;
        if (!(b1 & 128))
            return 1002;
        size_t ext = (b1 & 127) == 126 ? 2 : (b1 & 127) == 127 ? 8 : 0;
        if (n - p < 2 + ext + 4)
            return 0;
        uint64_t plen = b1 & 127;
        if (ext) {
            plen = 0;
            for (size_t i = 0; i < ext; i++)
                plen = plen << 8 | s[p + 2 + i];
            if (plen >> 63)
                return 1002;
        }
        if (op == 8 && plen == 1)
            return 1002;
        if (!ctl && plen > limit - (op == 0 ? mlen : 0))
            return 1009;
        const uint8_t *key = s + p + 2 + ext;
        p += 2 + ext + 4;
        if (n - p < plen)
            return 0;
        for (size_t i = 0; i < plen; i++)
            tmp[i] = s[p + i] ^ key[i % 4];
        p += (size_t)plen;
        if (ctl) {
            if (op == 8 && plen >= 2 && !el_fuzz_ws_close_ok((unsigned)tmp[0] << 8 | tmp[1]))
                return 1002;
            if (el_fuzz_ws_push(r, (uint8_t)op, tmp, plen))
                return -1;
            continue;
        }
        if (op != 0)
            mlen = 0;
        memcpy(msg + mlen, tmp, plen);
        mlen += plen;
        if (op != 0)
            mop = op;
        if (fin) {
            if (el_fuzz_ws_push(r, (uint8_t)mop, msg, mlen))
                return -1;
            mop = 0;
            mlen = 0;
        }
    }
    return 0;
}

/* ---- the codec, fed in chunks ---- */

static uint32_t el_fuzz_ws_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Feeds s[0..n) to a fresh decoder: whole when seed is 0, else in chunks
 * drawn from seed. Returns the feed's result; *held: rx->buf at the end. */
static int el_fuzz_ws_run(const uint8_t *s, size_t n, uint32_t seed, el_fuzz_ws_rec *r,
                          const char **why, int *held)
{
    el_ws_rx rx;
    memset(&rx, 0, sizeof rx);
    size_t pos = 0;
    int rc = 0;
    *why = NULL;
    while (rc == 0 && pos < n) {
        size_t k = n - pos;
        if (seed) {
            uint32_t v = el_fuzz_ws_rand(&seed);
            size_t c = v & 0x100 ? 1 + v % 300 : 1 + v % 9;
            k = c < k ? c : k;
        }
        uint8_t *c = malloc(k);
        if (!c)
            abort();
        memcpy(c, s + pos, k);
        rc = el_ws_rx_feed(&rx, c, k, r->limit, el_fuzz_ws_on, r, why);
        free(c);
        pos += k;
    }
    *held = rx.buf != NULL;
    el_ws_rx_reset(&rx);
    return rc;
}

static const char *el_fuzz_ws_same(const el_fuzz_ws_rec *a, const el_fuzz_ws_rec *b, size_t upto)
{
    if (a->n < upto || b->n < upto)
        return "fewer messages than the reference";
    for (size_t i = 0; i < upto; i++)
        if (a->ev[i].op != b->ev[i].op || a->ev[i].len != b->ev[i].len || a->ev[i].hash != b->ev[i].hash)
            return "a message differs from the reference";
    return NULL;
}

static const char *el_fuzz_ws_frames(const uint8_t *data, size_t size)
{
    if (size < 2)
        return NULL;
    size_t limit = (size_t)data[0] * 4;
    uint32_t seed = (uint32_t)data[1] << 16 ^ (uint32_t)size ^ 0x9e3779b9u;
    const uint8_t *s = data + 2;
    size_t n = size - 2;
    size_t cap = n / 6 + 1;
    el_fuzz_ws_rec ref = {0}, got = {0};
    uint8_t *msg = malloc(n + 1), *tmp = malloc(n + 1);
    ref.ev = malloc(cap * sizeof *ref.ev);
    got.ev = malloc(cap * sizeof *got.ev);
    if (!msg || !tmp || !ref.ev || !got.ev)
        abort();
    ref.cap = got.cap = cap;
    ref.limit = got.limit = limit;
    const char *bad = NULL;
    int want = el_fuzz_ws_ref(s, n, limit, &ref, msg, tmp);
    if (want < 0)
        bad = "reference: more messages than frames";
    for (int pass = 0; pass < 3 && !bad; pass++) {
        got.n = 0;
        got.bad = NULL;
        got.stop_at = 0;
        /* pass 2 stops at a message chosen by the seed, when there is one */
        if (pass == 2) {
            if (!ref.n)
                break;
            got.stop_at = 1 + data[1] % ref.n;
        }
        const char *why;
        int held;
        int rc = el_fuzz_ws_run(s, n, pass ? seed : 0, &got, &why, &held);
        if (got.bad)
            bad = got.bad;
        else if (pass == 2)
            bad = rc != EL_FUZZ_WS_STOP || got.n != got.stop_at ? "the callback's stop was not honoured"
                                                                  : el_fuzz_ws_same(&got, &ref, got.n);
        else if (rc != want)
            bad = "result differs from the reference";
        else if (rc >= 1000 && !why)
            bad = "close code without a reason";
        else if (got.n != ref.n)
            bad = "message count differs from the reference";
        else
            bad = el_fuzz_ws_same(&got, &ref, ref.n);
        (void)held;
    }
    free(msg);
    free(tmp);
    free(ref.ev);
    free(got.ev);
    return bad;
}

/* The stream as one server frame, masked as a client would: itself again. */
static const char *el_fuzz_ws_roundtrip(const uint8_t *data, size_t size)
{
    uint8_t *f = malloc(size + 14);
    if (!f)
        abort();
    size_t h = el_ws_frame_header(f, EL_WS_BINARY, size);
    if (h != (size < 126 ? 2u : size <= 0xffff ? 4u : 10u) || f[0] != 0x82) {
        free(f);
        return "el_ws_frame_header: wrong header";
    }
    f[1] |= 0x80;
    static const uint8_t key[4] = {0xa5, 0x01, 0x7e, 0xc3};
    memcpy(f + h, key, 4);
    for (size_t i = 0; i < size; i++)
        f[h + 4 + i] = data[i] ^ key[i & 3];
    el_fuzz_ws_ev ev;
    el_fuzz_ws_rec r = {&ev, 0, 1, size, 0, NULL};
    const char *why;
    int held;
    int rc = el_fuzz_ws_run(f, h + 4 + size, (uint32_t)size | 1, &r, &why, &held);
    free(f);
    if (rc || r.bad || r.n != 1 || ev.op != EL_WS_BINARY || ev.len != size ||
        ev.hash != el_fuzz_ws_fnv(data, size))
        return "a frame of our own did not decode to its payload";
    if (held)
        return "the decoder held a buffer after a complete message";
    return NULL;
}

static const char *el_fuzz_ws_close(const uint8_t *data, size_t size)
{
    if (size < 3)
        return NULL;
    uint16_t code = (uint16_t)(data[0] << 8 | data[1]);
    size_t outlen = data[2] % 140;
    char *reason = malloc(size - 2);
    uint8_t *out = malloc(outlen ? outlen : 1);
    if (!reason || !out)
        abort();
    memcpy(reason, data + 3, size - 3);
    reason[size - 3] = '\0';
    size_t rlen = strlen(reason);
    size_t n = el_ws_close_frame(out, outlen, code, reason);
    const char *bad = NULL;
    if (n > outlen || n > 127)
        bad = "close frame past its buffer";
    else if (n == 0 && outlen >= (code ? 4u : 2u))
        bad = "close frame not written";
    else if (n && (out[0] != 0x88 || out[1] != n - 2))
        bad = "close frame header wrong";
    else if (n && !code && n != 2)
        bad = "close frame with code 0 has a payload";
    else if (n >= 4) {
        size_t k = n - 4;
        if ((out[2] << 8 | out[3]) != code || memcmp(out + 4, reason, k))
            bad = "close frame payload is not code + reason prefix";
        else if (k > 0 && k < rlen && ((unsigned char)reason[k] & 0xc0) == 0x80)
            bad = "close reason cut inside a UTF-8 character";
        /* and no shorter than it must be */
        size_t want = rlen < 123 ? rlen : 123;
        want = want < outlen - 4 ? want : outlen - 4;
        while (want > 0 && want < rlen && ((unsigned char)reason[want] & 0xc0) == 0x80)
            want--;
        if (!bad && k != want)
            bad = "close reason cut shorter than needed";
    }
    free(reason);
    free(out);
    return bad;
}

static const char *el_fuzz_ws_head(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    el_ws_head h, h2;
    int r = el_ws_head_parse(b, size, &h);
    if (r < -1 || (r > 0 && ((size_t)r > size || r > EL_WS_HEAD_MAX)))
        return "el_ws_head_parse: result out of range";
    if (r == 0 && size >= EL_WS_HEAD_MAX)
        return "el_ws_head_parse: wants more past EL_WS_HEAD_MAX";
    int l = el_ws_head_line(b, size, &h2);
    if (r > 0 && l != 1)
        return "el_ws_head_line refuses the line of a head";
    if (r <= 0)
        return NULL;
    if (r < 16 || memcmp(b + r - 4, "\r\n\r\n", 4)) /* "A * HTTP/1.1" is 12 */
        return "a head that does not end in CRLFCRLF";
    if (h.path != h2.path || h.path_len != h2.path_len || h.query != h2.query ||
        h.query_len != h2.query_len || h.is_get != h2.is_get)
        return "el_ws_head_line and el_ws_head_parse disagree";
    /* the target is never empty, but "?x" has an empty path */
    if (h.path < b || h.path_len + (h.query ? 1 : 0) == 0 || h.path + h.path_len > b + r ||
        (h.query && (h.query != h.path + h.path_len + 1 || h.query + h.query_len > b + r)) ||
        (h.key && (h.key < b || h.key + h.key_len > b + r)))
        return "a pointer outside the head";
    if (el_ws_head_parse(b, (size_t)r, &h2) != r)
        return "the head alone parses differently";
    if (el_ws_head_parse(b, (size_t)r - 1, &h2) != 0)
        return "a head less its last byte does not want more";
    char acc[29];
    if (el_ws_accept_key(h.key, h.key_len, acc) == 0) {
        if (h.key_len != 24 || strlen(acc) != 28)
            return "accept key of a wrong size";
        for (int i = 0; i < 28; i++)
            if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", acc[i]))
                return "accept key is not base64";
    }
    return NULL;
}

static const char *el_fuzz_check_ws(const uint8_t *data, size_t size)
{
    const char *bad = el_fuzz_ws_head(data, size);
    if (!bad)
        bad = el_fuzz_ws_frames(data, size);
    if (!bad)
        bad = el_fuzz_ws_roundtrip(data, size);
    if (!bad)
        bad = el_fuzz_ws_close(data, size);
    return bad;
}

#ifndef EL_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_ws(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_ws: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
#endif

#endif
