/* ws.c - RFC 6455 server side: request head, accept key, frame codec (ws.h). */
#include "proto/ws.h"

#include "base/enc.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#if UINTPTR_MAX == 0xffffffffffffffffu
/* Every idle connection of echolinkd carries one: keep it a cache line's
 * fraction. */
_Static_assert(sizeof(el_ws_rx) <= 48, "el_ws_rx grew past 48 bytes");
#endif

/* ---- request head ------------------------------------------------------ */

/* RFC 9110 §5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value bytes: HT, SP, VCHAR, obs-text. */
static int is_vbyte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* s[0..n) equals the lower-case lit, ignoring ASCII case. */
static int ieq(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return 0;
    return 1;
}

/* 1 when one of the comma-separated elements of v (OWS around each) is tok,
 * ignoring case. */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t i = 0;
    while (i <= n) {
        size_t e = i;
        while (e < n && v[e] != ',')
            e++;
        size_t a = i, b = e;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (ieq(v + a, b - a, tok))
            return 1;
        i = e + 1;
    }
    return 0;
}

/* Expects CRLF at b[i]: 2, 0 when the bytes end first, -1 otherwise. */
static int crlf(const char *b, size_t n, size_t i)
{
    if (i == n)
        return 0;
    if (b[i] != '\r')
        return -1;
    if (i + 1 == n)
        return 0;
    return b[i + 1] == '\n' ? 2 : -1;
}

/* The request line at b[0..n): its length with CRLF, 0 when incomplete (no
 * wrong byte so far), -1 when malformed. Fills is_get, path, query. */
static long request_line(const char *b, size_t n, el_ws_head *h)
{
    static const char version[] = "HTTP/1.";
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)b[i]))
        i++;
    if (i == n)
        return 0;
    if (i == 0 || b[i] != ' ')
        return -1;
    h->is_get = i == 3 && !memcmp(b, "GET", 3); /* methods are case-sensitive */
    size_t t = ++i;
    while (i < n && (unsigned char)b[i] > 0x20 && (unsigned char)b[i] < 0x7f)
        i++;
    if (i == n)
        return 0;
    if (i == t || b[i] != ' ')
        return -1;
    const char *q = memchr(b + t, '?', i - t);
    h->path = b + t;
    h->path_len = q ? (size_t)(q - (b + t)) : i - t;
    h->query = q ? q + 1 : NULL;
    h->query_len = q ? (size_t)(b + i - (q + 1)) : 0;
    i++;
    for (size_t k = 0; k < sizeof version - 1; k++, i++) {
        if (i == n)
            return 0;
        if (b[i] != version[k])
            return -1;
    }
    if (i == n)
        return 0;
    if (b[i] < '0' || b[i] > '9')
        return -1;
    int e = crlf(b, n, i + 1);
    return e <= 0 ? e : (long)(i + 1 + 2);
}

/* What the field lines say, before repeats are judged. */
typedef struct {
    int keys, versions;
} head_counts;

static void take_field(const char *name, size_t nlen, const char *v, size_t vlen, el_ws_head *h,
                       head_counts *c)
{
    if (ieq(name, nlen, "upgrade")) {
        h->upgrade_websocket |= has_token(v, vlen, "websocket");
    } else if (ieq(name, nlen, "connection")) {
        h->connection_upgrade |= has_token(v, vlen, "upgrade");
    } else if (ieq(name, nlen, "sec-websocket-key")) {
        c->keys++;
        h->key = v;
        h->key_len = vlen;
    } else if (ieq(name, nlen, "sec-websocket-version")) {
        c->versions++;
        int ver = 0;
        size_t i = 0;
        while (i < vlen && i < 3 && v[i] >= '0' && v[i] <= '9')
            ver = ver * 10 + (v[i++] - '0');
        h->version = i > 0 && i == vlen ? ver : 0;
    }
}

/* One field line at b[*i..n): 1 when taken (*i past its CRLF), 0 when
 * incomplete, -1 when malformed. */
static int field_line(const char *b, size_t n, size_t *i, el_ws_head *h, head_counts *c)
{
    size_t p = *i, name = p;
    while (p < n && is_tchar((unsigned char)b[p]))
        p++;
    if (p == n)
        return 0;
    if (p == name || b[p] != ':')
        return -1; /* also obs-fold and space before the colon */
    size_t nlen = p - name;
    p++;
    while (p < n && (b[p] == ' ' || b[p] == '\t'))
        p++;
    size_t v = p;
    while (p < n && is_vbyte((unsigned char)b[p]))
        p++;
    int e = crlf(b, n, p);
    if (e <= 0)
        return e;
    size_t end = p;
    while (end > v && (b[end - 1] == ' ' || b[end - 1] == '\t'))
        end--;
    take_field(b + name, nlen, b + v, end - v, h, c);
    *i = p + 2;
    return 1;
}

int el_ws_head_parse(const char *buf, size_t len, el_ws_head *h)
{
    memset(h, 0, sizeof *h);
    size_t n = len < EL_WS_HEAD_MAX ? len : EL_WS_HEAD_MAX;
    long r = request_line(buf, n, h);
    if (r <= 0)
        return r < 0 || len >= EL_WS_HEAD_MAX ? -1 : 0;
    head_counts c = {0, 0};
    size_t i = (size_t)r;
    for (;;) {
        int e = i < n && buf[i] != '\r' ? field_line(buf, n, &i, h, &c) : crlf(buf, n, i);
        if (e < 0)
            return -1;
        if (e == 0)
            return len >= EL_WS_HEAD_MAX ? -1 : 0;
        if (e == 2)
            break; /* the empty line */
    }
    /* RFC 6455 §4.2.1: one key; a repeat makes the handshake invalid */
    if (c.keys != 1) {
        h->key = NULL;
        h->key_len = 0;
    }
    if (c.versions != 1)
        h->version = 0;
    return (int)(i + 2);
}

int el_ws_head_line(const char *buf, size_t len, el_ws_head *h)
{
    memset(h, 0, sizeof *h);
    size_t n = len < EL_WS_HEAD_MAX ? len : EL_WS_HEAD_MAX;
    long r = request_line(buf, n, h);
    if (r == 0)
        return len >= EL_WS_HEAD_MAX ? -1 : 0;
    return r < 0 ? -1 : 1;
}

/* ---- accept key -------------------------------------------------------- */

int el_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t raw[18];
    char in[24 + sizeof guid - 1];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!key || key_len != 24 || el_b64_decode(key, key_len, raw, sizeof raw) != 16)
        return -1;
    memcpy(in, key, 24);
    memcpy(in + 24, guid, sizeof guid - 1);
    if (EVP_Digest(in, sizeof in, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return -1;
    if (el_b64_encode(md, 20, out, 29) != 28) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* ---- frames in ---------------------------------------------------------- */

/* Internal result of read_header besides 0 (more bytes needed) and close codes. */
#define HDR_DONE 1

static int fail(const char **why, int code, const char *reason)
{
    *why = reason;
    return code;
}

static int is_control(unsigned op)
{
    return (op & 8) != 0;
}

/* A client header's full size, from its second byte. */
static size_t header_size(uint8_t b1)
{
    uint8_t l = b1 & 0x7f;
    return 2 + (l == 126 ? 2 : l == 127 ? 8 : 0) + 4;
}

/* The checks the first two header bytes allow. */
static int check_start(const el_ws_rx *rx, uint8_t b0, uint8_t b1, const char **why)
{
    if (b0 & 0x70)
        return fail(why, 1002, "RSV bits set");
    switch (b0 & 0x0f) {
    case EL_WS_CONT:
        if (!rx->msg_op)
            return fail(why, 1002, "continuation without a message");
        break;
    case EL_WS_TEXT:
    case EL_WS_BINARY:
        if (rx->msg_op)
            return fail(why, 1002, "new message inside a fragmented one");
        break;
    case EL_WS_CLOSE:
    case EL_WS_PING:
    case EL_WS_PONG:
        if (!(b0 & 0x80))
            return fail(why, 1002, "fragmented control frame");
        if ((b1 & 0x7f) > 125)
            return fail(why, 1002, "control frame over 125 bytes");
        break;
    default:
        return fail(why, 1002, "unknown opcode");
    }
    if (!(b1 & 0x80))
        return fail(why, 1002, "unmasked client frame");
    return 0;
}

/* Starts the frame whose complete header is h. */
static int frame_start(el_ws_rx *rx, const uint8_t *h, size_t limit, const char **why)
{
    int r = check_start(rx, h[0], h[1], why);
    if (r)
        return r;
    uint64_t plen = h[1] & 0x7f;
    size_t o = 2;
    if (plen == 126) {
        plen = (uint64_t)h[2] << 8 | h[3];
        o = 4;
    } else if (plen == 127) {
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | h[2 + i];
        o = 10;
        if (plen >> 63)
            return fail(why, 1002, "64-bit length with the top bit set");
    }
    rx->op = h[0] & 0x0f;
    rx->fin = h[0] >> 7;
    memcpy(rx->mask, h + o, 4);
    rx->mask_pos = 0;
    rx->ctl_got = 0;
    rx->left = plen;
    if (is_control(rx->op))
        return rx->op == EL_WS_CLOSE && plen == 1 ? fail(why, 1002, "close frame of 1 byte") : 0;
    size_t base = rx->op == EL_WS_CONT ? rx->len : 0;
    if (plen > limit - base)
        return fail(why, 1009, "message too big");
    if (rx->op != EL_WS_CONT && !rx->fin)
        rx->msg_op = rx->op;
    return 0;
}

/* Takes the next header from data[*pos..len), or the rest of one begun in
 * rx->hdr. HDR_DONE when a frame started, 0 when every byte was taken and
 * the header is still incomplete, or a close code. */
static int read_header(el_ws_rx *rx, const uint8_t *data, size_t len, size_t *pos, size_t limit,
                       const char **why)
{
    const uint8_t *p = data + *pos;
    size_t avail = len - *pos;
    int r;
    if (rx->hdr_len == 0 && avail >= 2 && avail >= header_size(p[1])) {
        *pos += header_size(p[1]);
        r = frame_start(rx, p, limit, why);
        return r ? r : HDR_DONE;
    }
    while (avail) {
        size_t want = rx->hdr_len < 2 ? 2 : header_size(rx->hdr[1]);
        size_t k = want - rx->hdr_len < avail ? want - rx->hdr_len : avail;
        memcpy(rx->hdr + rx->hdr_len, p, k);
        rx->hdr_len = (uint8_t)(rx->hdr_len + k);
        p += k;
        avail -= k;
        *pos += k;
        if (rx->hdr_len < want)
            break;
        if (want == 2) {
            /* fail early: a peer that stops here would be waited for */
            r = check_start(rx, rx->hdr[0], rx->hdr[1], why);
            if (r)
                return r;
            continue;
        }
        rx->hdr_len = 0;
        r = frame_start(rx, rx->hdr, limit, why);
        return r ? r : HDR_DONE;
    }
    return 0;
}

/* XORs p[0..n) with the mask, starting at mask byte `phase`: 16 bytes per
 * step through two 64-bit words (memcpy keeps it alignment- and
 * endian-safe; the compiler makes plain loads of it). */
static void unmask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned phase)
{
    uint8_t k[8];
    for (unsigned i = 0; i < 8; i++)
        k[i] = mask[(phase + i) & 3];
    uint64_t w8;
    memcpy(&w8, k, 8);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        a ^= w8;
        b ^= w8;
        memcpy(p + i, &a, 8);
        memcpy(p + i + 8, &b, 8);
    }
    for (; i < n; i++)
        p[i] ^= k[i & 3];
}

/* Room for `need` bytes in rx->buf; `most` is the most this frame can need.
 * A frame up to 4 KiB gets all its room at once; a bigger one doubles with
 * the bytes that actually arrived, so a header claiming 1 MiB followed by
 * silence does not make the server hold 1 MiB. */
static int reserve(el_ws_rx *rx, size_t need, size_t most, const char **why)
{
    if (need <= rx->cap)
        return 0;
    size_t c = (size_t)rx->cap * 2;
    if (c < 4096)
        c = 4096;
    if (c > most)
        c = most;
    if (c < need)
        c = need;
    uint8_t *nb = realloc(rx->buf, c);
    if (!nb)
        return fail(why, 1011, "out of memory"); /* 1011: the server could not go on */
    rx->buf = nb;
    rx->cap = (uint32_t)c;
    return 0;
}

static void drop_buf(el_ws_rx *rx)
{
    free(rx->buf);
    rx->buf = NULL;
    rx->len = rx->cap = 0;
}

/* Close codes an endpoint may send (RFC 6455 §7.4, IANA registry). */
static int close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static int deliver_control(el_ws_rx *rx, uint8_t *p, size_t n, el_ws_on_frame cb, void *user,
                           const char **why)
{
    if (rx->op == EL_WS_CLOSE && n >= 2 && !close_code_ok((unsigned)p[0] << 8 | p[1]))
        return fail(why, 1002, "invalid close code");
    return cb(user, (el_ws_op)rx->op, p, n);
}

/* The message in rx->buf is complete: hands it over and lets the buffer go. */
static int deliver_message(el_ws_rx *rx, uint8_t *empty, el_ws_on_frame cb, void *user)
{
    el_ws_op op = (el_ws_op)(rx->op == EL_WS_CONT ? rx->msg_op : rx->op);
    int r = cb(user, op, rx->buf ? rx->buf : empty, rx->len);
    rx->msg_op = 0;
    drop_buf(rx);
    return r;
}

/* A frame whose header was just read and whose payload is empty. */
static int empty_frame(el_ws_rx *rx, uint8_t *p, el_ws_on_frame cb, void *user, const char **why)
{
    if (is_control(rx->op))
        return deliver_control(rx, p, 0, cb, user, why);
    if (!rx->fin)
        return 0;
    if (rx->op != EL_WS_CONT)
        return cb(user, (el_ws_op)rx->op, p, 0);
    return deliver_message(rx, p, cb, user);
}

/* n payload bytes of a frame that spans feeds or belongs to a fragmented
 * message: unmasked, then copied into rx->buf; delivered when complete. */
static int buffered_part(el_ws_rx *rx, uint8_t *p, size_t n, el_ws_on_frame cb, void *user,
                         const char **why)
{
    unmask(p, n, rx->mask, rx->mask_pos);
    rx->mask_pos = (uint8_t)((rx->mask_pos + n) & 3);
    rx->left -= n;
    int r;
    if (is_control(rx->op)) {
        size_t at = (size_t)rx->len + rx->ctl_got;
        r = reserve(rx, at + n, at + n + (size_t)rx->left, why);
        if (r)
            return r;
        memcpy(rx->buf + at, p, n);
        rx->ctl_got = (uint8_t)(rx->ctl_got + n);
        if (rx->left)
            return 0;
        r = deliver_control(rx, rx->buf + rx->len, rx->ctl_got, cb, user, why);
        rx->ctl_got = 0;
        if (rx->len == 0)
            drop_buf(rx);
        return r;
    }
    r = reserve(rx, (size_t)rx->len + n, (size_t)rx->len + n + (size_t)rx->left, why);
    if (r)
        return r;
    memcpy(rx->buf + rx->len, p, n);
    rx->len += (uint32_t)n;
    if (rx->left || !rx->fin)
        return 0;
    return deliver_message(rx, p, cb, user);
}

int el_ws_rx_feed(el_ws_rx *rx, uint8_t *data, size_t len, size_t max_message,
                  el_ws_on_frame cb, void *user, const char **why)
{
    size_t limit = max_message < EL_WS_MAX_LIMIT ? max_message : EL_WS_MAX_LIMIT;
    size_t pos = 0;
    int r;
    *why = NULL;
    while (pos < len) {
        if (rx->left == 0) {
            r = read_header(rx, data, len, &pos, limit, why);
            if (r != HDR_DONE)
                return r;
            if (rx->left == 0) {
                r = empty_frame(rx, data + pos, cb, user, why);
                if (r)
                    return r;
                continue;
            }
            /* the common case: the whole payload is here, and it is a
             * control frame or a whole message: unmask and hand over */
            if (len - pos >= rx->left && (is_control(rx->op) || (rx->fin && rx->op != EL_WS_CONT))) {
                size_t n = (size_t)rx->left;
                uint8_t *p = data + pos;
                unmask(p, n, rx->mask, 0);
                pos += n;
                rx->left = 0;
                r = is_control(rx->op) ? deliver_control(rx, p, n, cb, user, why)
                                       : cb(user, (el_ws_op)rx->op, p, n);
                if (r)
                    return r;
                continue;
            }
            if (pos == len)
                break;
        }
        size_t n = len - pos < rx->left ? len - pos : (size_t)rx->left;
        r = buffered_part(rx, data + pos, n, cb, user, why);
        pos += n;
        if (r)
            return r;
    }
    return 0;
}

void el_ws_rx_reset(el_ws_rx *rx)
{
    free(rx->buf);
    memset(rx, 0, sizeof *rx);
}

/* ---- frames out --------------------------------------------------------- */

size_t el_ws_frame_header(uint8_t out[10], el_ws_op op, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (op & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t el_ws_close_frame(uint8_t *out, size_t outlen, uint16_t code, const char *reason)
{
    if (code == 0) {
        if (outlen < 2)
            return 0;
        return el_ws_frame_header(out, EL_WS_CLOSE, 0);
    }
    if (outlen < 4)
        return 0;
    size_t n = reason ? strlen(reason) : 0;
    size_t room = outlen - 4 < 123 ? outlen - 4 : 123;
    if (n > room) {
        n = room;
        /* back to the start of the character the cut falls in */
        while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
            n--;
    }
    size_t h = el_ws_frame_header(out, EL_WS_CLOSE, 2 + n);
    out[h] = (uint8_t)(code >> 8);
    out[h + 1] = (uint8_t)code;
    if (n)
        memcpy(out + h + 2, reason, n);
    return h + 2 + n;
}
