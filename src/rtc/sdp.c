/* sdp.c - see sdp.h. Pure: no I/O, no globals; allocates only in
 * el_sdp_write_dc(). */
#include "rtc/sdp.h"

#include "base/err.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- spans and character classes ---------------------------------------- */

typedef struct {
    const char *p;
    size_t n;
} span;

static bool span_eq(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool span_ieq(span s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != lower(lit[i]))
            return false;
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 8839 ice-char = ALPHA / DIGIT / "+" / "/" */
static bool is_ice_char(char c)
{
    return is_alnum(c) || c == '+' || c == '/';
}

/* RFC 8866 token-char */
static bool is_token_char(char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`{|}~", c) != NULL);
}

static bool all_of(span s, bool (*cls)(char))
{
    for (size_t i = 0; i < s.n; i++)
        if (!cls(s.p[i]))
            return false;
    return true;
}

static bool is_token(span s)
{
    return s.n > 0 && all_of(s, is_token_char);
}

static bool is_proto_char(char c)
{
    return is_token_char(c) || c == '/';
}

/* Next space-separated token of *rest (runs of spaces count as one). */
static span next_tok(span *rest)
{
    size_t i = 0;
    while (i < rest->n && rest->p[i] == ' ')
        i++;
    size_t start = i;
    while (i < rest->n && rest->p[i] != ' ')
        i++;
    span t = {rest->p + start, i - start};
    rest->p += i;
    rest->n -= i;
    return t;
}

static bool span_blank(span s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] != ' ')
            return false;
    return true;
}

/* Unsigned decimal of 1..maxdigits digits, value <= maxval. */
static bool parse_uint(span s, size_t maxdigits, uint64_t maxval, uint64_t *out)
{
    if (s.n == 0 || s.n > maxdigits)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (!is_digit(s.p[i]))
            return false;
        unsigned d = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v > maxval)
        return false;
    *out = v;
    return true;
}

/* A printable, bounded copy of untrusted text for error messages. */
typedef struct {
    char s[48];
} quoted;

static quoted quote(span v)
{
    quoted q;
    size_t max = sizeof q.s - 4, i;
    for (i = 0; i < v.n && i < max; i++) {
        unsigned char c = (unsigned char)v.p[i];
        q.s[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (v.n > max)
        memcpy(q.s + i, "...", 3), i += 3;
    q.s[i] = '\0';
    return q;
}

static void copy_str(char *dst, span s)
{
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
}

/* ---- names ---------------------------------------------------------------- */

static const struct {
    el_sdp_hash hash;
    const char *name;
    size_t len;
} hashes[] = {
    {EL_SDP_HASH_SHA1, "sha-1", 20},     {EL_SDP_HASH_SHA224, "sha-224", 28},
    {EL_SDP_HASH_SHA256, "sha-256", 32}, {EL_SDP_HASH_SHA384, "sha-384", 48},
    {EL_SDP_HASH_SHA512, "sha-512", 64},
};

size_t el_sdp_hash_len(el_sdp_hash h)
{
    for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++)
        if (hashes[i].hash == h)
            return hashes[i].len;
    return 0;
}

const char *el_sdp_hash_name(el_sdp_hash h)
{
    for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++)
        if (hashes[i].hash == h)
            return hashes[i].name;
    return NULL;
}

const char *el_sdp_setup_name(el_sdp_setup s)
{
    switch (s) {
    case EL_SDP_SETUP_ACTPASS: return "actpass";
    case EL_SDP_SETUP_ACTIVE: return "active";
    case EL_SDP_SETUP_PASSIVE: return "passive";
    case EL_SDP_SETUP_NONE: break;
    }
    return NULL;
}

static const char *const cand_type_names[] = {"host", "srflx", "prflx", "relay"};
static const char *const tcptype_names[] = {NULL, "active", "passive", "so"};
static const char *const dir_names[] = {NULL, "sendrecv", "sendonly", "recvonly", "inactive"};

/* ---- fingerprints (RFC 8122) ---------------------------------------------- */

static int hexval(char c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int fp_parse(span v, el_sdp_fingerprint *out, char *err, size_t errlen)
{
    span rest = v;
    span name = next_tok(&rest);
    span hex = next_tok(&rest);
    if (name.n == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "fingerprint: missing hash name");
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++)
        if (span_ieq(name, hashes[i].name))
            out->hash = hashes[i].hash;
    if (out->hash == EL_SDP_HASH_NONE)
        return el_seterr(err, errlen, EL_ERR_INVALID, "fingerprint: unsupported hash '%s'",
                         quote(name).s);
    if (hex.n == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "fingerprint: missing digest");
    if (!span_blank(rest))
        return el_seterr(err, errlen, EL_ERR_INVALID, "fingerprint: text after the digest");
    size_t want = el_sdp_hash_len(out->hash), n = 0, i = 0;
    for (;;) {
        if (i + 2 > hex.n || hexval(hex.p[i]) < 0 || hexval(hex.p[i + 1]) < 0 ||
            (i + 2 < hex.n && hex.p[i + 2] != ':'))
            return el_seterr(err, errlen, EL_ERR_INVALID, "fingerprint: bad hex '%s'",
                             quote(hex).s);
        if (n == EL_SDP_DIGEST_MAX)
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "fingerprint: %s digest longer than %zu bytes",
                             el_sdp_hash_name(out->hash), want);
        out->digest[n++] = (uint8_t)(hexval(hex.p[i]) << 4 | hexval(hex.p[i + 1]));
        i += 2;
        if (i == hex.n)
            break;
        i++; /* ':' */
        if (i == hex.n)
            return el_seterr(err, errlen, EL_ERR_INVALID, "fingerprint: bad hex '%s'",
                             quote(hex).s);
    }
    if (n != want)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "fingerprint: %s digest has %zu bytes, expected %zu",
                         el_sdp_hash_name(out->hash), n, want);
    out->len = (uint8_t)n;
    return EL_OK;
}

int el_sdp_fingerprint_parse(const char *s, size_t len, el_sdp_fingerprint *out, char *err,
                             size_t errlen)
{
    span v = {s, len};
    return fp_parse(v, out, err, errlen);
}

int el_sdp_fingerprint_write(const el_sdp_fingerprint *fp, char *out, size_t outlen)
{
    const char *name = el_sdp_hash_name(fp->hash);
    if (!name || fp->len != el_sdp_hash_len(fp->hash))
        return EL_ERR_INVALID;
    size_t n = strlen(name), need = n + 1 + (size_t)fp->len * 3;
    if (need > outlen)
        return EL_ERR_TOO_LARGE;
    static const char digits[] = "0123456789ABCDEF";
    memcpy(out, name, n);
    char *o = out + n;
    for (size_t i = 0; i < fp->len; i++) {
        *o++ = i ? ':' : ' ';
        *o++ = digits[fp->digest[i] >> 4];
        *o++ = digits[fp->digest[i] & 15];
    }
    *o = '\0';
    return (int)(o - out);
}

void el_sdp_fingerprint_sha256(el_sdp_fingerprint *fp, const uint8_t digest[32])
{
    memset(fp, 0, sizeof *fp);
    fp->hash = EL_SDP_HASH_SHA256;
    fp->len = 32;
    memcpy(fp->digest, digest, 32);
}

static bool fp_valid(const el_sdp_fingerprint *fp)
{
    return el_sdp_hash_name(fp->hash) && fp->len == el_sdp_hash_len(fp->hash);
}

static bool fp_equal(const el_sdp_fingerprint *a, const el_sdp_fingerprint *b)
{
    return a->hash == b->hash && a->len == b->len && a->len <= EL_SDP_DIGEST_MAX &&
           memcmp(a->digest, b->digest, a->len) == 0;
}

/* ---- candidates (RFC 8839 §5.1) ------------------------------------------- */

static bool is_host_char(char c)
{
    return is_alnum(c) || c == '-' || c == '.';
}

static bool is_ip4_char(char c)
{
    return is_digit(c) || c == '.';
}

/* Classifies a connection-address: IPv4, IPv6, or a DNS name (labels of
 * letters, digits and '-', 1..63 chars, 253 in all); mDNS when ".local". */
static bool addr_classify(span a, el_sdp_addr_kind *kind)
{
    char buf[64];
    if (a.n == 0 || a.n > EL_SDP_ADDR_MAX)
        return false;
    if (memchr(a.p, ':', a.n)) {
        unsigned char tmp[16];
        if (a.n >= sizeof buf)
            return false;
        copy_str(buf, a);
        *kind = EL_SDP_ADDR_IP6;
        return inet_pton(AF_INET6, buf, tmp) == 1;
    }
    if (all_of(a, is_ip4_char)) {
        unsigned char tmp[4];
        if (a.n >= sizeof buf)
            return false;
        copy_str(buf, a);
        *kind = EL_SDP_ADDR_IP4;
        return inet_pton(AF_INET, buf, tmp) == 1;
    }
    if (a.n > 253 || !all_of(a, is_host_char))
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= a.n; i++) {
        if (i == a.n || a.p[i] == '.') {
            if (label == 0 || label > 63 || a.p[i - 1] == '-' || a.p[i - label] == '-')
                return false;
            label = 0;
        } else {
            label++;
        }
    }
    span tail = {a.p + (a.n > 6 ? a.n - 6 : 0), a.n > 6 ? 6 : 0};
    *kind = span_ieq(tail, ".local") ? EL_SDP_ADDR_MDNS : EL_SDP_ADDR_FQDN;
    return true;
}

static int name_index(span s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] && span_eq(s, names[i]))
            return (int)i;
    return -1;
}

/* Parses the value after "candidate:". */
static int cand_parse(span v, el_sdp_candidate *c, char *err, size_t errlen)
{
    static const char *const fields[] = {"foundation", "component", "transport", "priority",
                                         "address", "port", "'typ'", "type"};
    span rest = v, f[8];
    uint64_t u;
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < 8; i++) {
        f[i] = next_tok(&rest);
        if (f[i].n == 0)
            return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: missing %s", fields[i]);
    }
    if (f[0].n > EL_SDP_FOUNDATION_MAX || !all_of(f[0], is_ice_char))
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad foundation '%s'",
                         quote(f[0]).s);
    copy_str(c->foundation, f[0]);
    if (!parse_uint(f[1], 3, 256, &u) || u == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad component '%s'",
                         quote(f[1]).s);
    c->component = (uint16_t)u;
    if (span_ieq(f[2], "udp"))
        c->transport = EL_SDP_TRANSPORT_UDP;
    else if (span_ieq(f[2], "tcp"))
        c->transport = EL_SDP_TRANSPORT_TCP;
    else
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: unsupported transport '%s'",
                         quote(f[2]).s);
    if (!parse_uint(f[3], 10, UINT32_MAX, &u))
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad priority '%s'",
                         quote(f[3]).s);
    c->priority = (uint32_t)u;
    if (!addr_classify(f[4], &c->addr_kind))
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad address '%s'",
                         quote(f[4]).s);
    copy_str(c->address, f[4]);
    if (!parse_uint(f[5], 5, 65535, &u))
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad port '%s'",
                         quote(f[5]).s);
    c->port = (uint16_t)u;
    if (!span_eq(f[6], "typ"))
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: expected 'typ', got '%s'",
                         quote(f[6]).s);
    int t = name_index(f[7], cand_type_names, 4);
    if (t < 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: unknown type '%s'",
                         quote(f[7]).s);
    c->type = (el_sdp_cand_type)t;
    bool seen_tcptype = false, seen_ufrag = false;
    for (;;) {
        span name = next_tok(&rest);
        if (name.n == 0)
            break;
        span val = next_tok(&rest);
        if (val.n == 0)
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "candidate: extension '%s' has no value", quote(name).s);
        if (!is_token(name))
            return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad extension name '%s'",
                             quote(name).s);
        if (span_eq(name, "raddr")) {
            if (c->has_raddr)
                return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: duplicate raddr");
            if (!addr_classify(val, &c->raddr_kind))
                return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad raddr '%s'",
                                 quote(val).s);
            copy_str(c->raddr, val);
            c->has_raddr = true;
        } else if (span_eq(name, "rport")) {
            if (c->has_rport)
                return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: duplicate rport");
            if (!parse_uint(val, 5, 65535, &u))
                return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad rport '%s'",
                                 quote(val).s);
            c->rport = (uint16_t)u;
            c->has_rport = true;
        } else if (span_eq(name, "tcptype")) {
            int tt = name_index(val, tcptype_names, 4);
            if (seen_tcptype)
                return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: duplicate tcptype");
            if (tt < 0)
                return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad tcptype '%s'",
                                 quote(val).s);
            c->tcptype = (el_sdp_tcptype)tt;
            seen_tcptype = true;
        } else if (span_eq(name, "ufrag")) {
            if (seen_ufrag)
                return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: duplicate ufrag");
            if (val.n > EL_SDP_UFRAG_MAX || !all_of(val, is_ice_char))
                return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: bad ufrag '%s'",
                                 quote(val).s);
            copy_str(c->ufrag, val);
            seen_ufrag = true;
        }
        /* generation, network-id, network-cost and unknown ones: ignored */
    }
    return EL_OK;
}

int el_sdp_candidate_parse(const char *s, size_t len, el_sdp_candidate *out, char *err,
                           size_t errlen)
{
    span v = {s, len};
    if (v.n && v.p[v.n - 1] == '\n')
        v.n--;
    if (v.n && v.p[v.n - 1] == '\r')
        v.n--;
    for (size_t i = 0; i < v.n; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (ch < 0x20 || ch == 0x7f)
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "candidate: control character 0x%02x", ch);
    }
    if (v.n >= 2 && v.p[0] == 'a' && v.p[1] == '=')
        v.p += 2, v.n -= 2;
    if (v.n == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "candidate: empty");
    if (v.n < 10 || memcmp(v.p, "candidate:", 10) != 0)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "candidate: does not start with 'candidate:'");
    v.p += 10, v.n -= 10;
    return cand_parse(v, out, err, errlen);
}

static bool cstr_ok(const char *s, size_t cap, size_t min, bool (*cls)(char))
{
    size_t n = strnlen(s, cap);
    span sp = {s, n};
    return n < cap && n >= min && all_of(sp, cls);
}

#define CSTR_OK(field, min, cls) cstr_ok((field), sizeof(field), (min), (cls))

static bool addr_ok(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    el_sdp_addr_kind k;
    span sp = {s, n};
    return n < cap && addr_classify(sp, &k);
}

/* ---- bounded text output --------------------------------------------------- */

typedef struct {
    char *p;
    size_t cap, len;
    bool full;
} wbuf;

__attribute__((format(printf, 2, 3))) static void wprintf(wbuf *w, const char *fmt, ...)
{
    if (w->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->p + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->cap - w->len) {
        w->full = true;
        w->p[w->len] = '\0';
        return;
    }
    w->len += (size_t)n;
}

static bool cand_valid(const el_sdp_candidate *c)
{
    return CSTR_OK(c->foundation, 1, is_ice_char) && c->component >= 1 &&
           c->component <= 256 &&
           (c->transport == EL_SDP_TRANSPORT_UDP || c->transport == EL_SDP_TRANSPORT_TCP) &&
           addr_ok(c->address, sizeof c->address) && (unsigned)c->type <= EL_SDP_CAND_RELAY &&
           (unsigned)c->tcptype <= EL_SDP_TCPTYPE_SO &&
           (!c->has_raddr || addr_ok(c->raddr, sizeof c->raddr)) &&
           CSTR_OK(c->ufrag, 0, is_ice_char);
}

static void cand_emit(wbuf *w, const el_sdp_candidate *c)
{
    wprintf(w, "candidate:%s %u %s %lu %s %u typ %s", c->foundation, (unsigned)c->component,
            c->transport == EL_SDP_TRANSPORT_TCP ? "tcp" : "udp", (unsigned long)c->priority,
            c->address, (unsigned)c->port, cand_type_names[c->type]);
    if (c->has_raddr)
        wprintf(w, " raddr %s", c->raddr);
    if (c->has_rport)
        wprintf(w, " rport %u", (unsigned)c->rport);
    if (c->tcptype != EL_SDP_TCPTYPE_NONE)
        wprintf(w, " tcptype %s", tcptype_names[c->tcptype]);
    if (c->ufrag[0])
        wprintf(w, " ufrag %s", c->ufrag);
}

int el_sdp_candidate_write(const el_sdp_candidate *c, char *out, size_t outlen)
{
    if (!cand_valid(c))
        return EL_ERR_INVALID;
    if (outlen == 0)
        return EL_ERR_TOO_LARGE;
    wbuf w = {out, outlen, 0, false};
    cand_emit(&w, c);
    return w.full ? EL_ERR_TOO_LARGE : (int)w.len;
}

static bool cand_equal(const el_sdp_candidate *a, const el_sdp_candidate *b)
{
    return strcmp(a->foundation, b->foundation) == 0 && a->component == b->component &&
           a->transport == b->transport && a->priority == b->priority &&
           strcmp(a->address, b->address) == 0 && a->addr_kind == b->addr_kind &&
           a->port == b->port && a->type == b->type && a->has_raddr == b->has_raddr &&
           a->has_rport == b->has_rport &&
           (!a->has_raddr || (strcmp(a->raddr, b->raddr) == 0 && a->raddr_kind == b->raddr_kind)) &&
           a->rport == b->rport && a->tcptype == b->tcptype && strcmp(a->ufrag, b->ufrag) == 0;
}

/* ---- parser ----------------------------------------------------------------- */

typedef struct {
    el_sdp *s;
    char *err;
    size_t errlen;
    int line;
    int cur; /* current m= section, -1 at session level */
    bool seen_t;
    uint8_t nbundle_mids;
    char bundle_mids[EL_SDP_MAX_MEDIA][EL_SDP_MID_MAX + 1];
} parser;

__attribute__((format(printf, 3, 4))) static int perr(parser *P, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return el_seterr(P->err, P->errlen, code, "line %d: %s", P->line, msg);
}

/* Common shape of the values we keep at both levels. */
typedef struct {
    char *ufrag, *pwd;
    bool *trickle, *ice2, *eoc;
    uint8_t *nfp;
    el_sdp_fingerprint *fp;
    el_sdp_setup *setup;
} level;

static level cur_level(parser *P)
{
    level L;
    if (P->cur < 0) {
        el_sdp *s = P->s;
        L = (level){s->ice_ufrag, s->ice_pwd, &s->ice_trickle, &s->ice_ice2,
                    &s->end_of_candidates, &s->nfingerprints, s->fingerprints, &s->setup};
    } else {
        el_sdp_media *m = &P->s->media[P->cur];
        L = (level){m->ice_ufrag, m->ice_pwd, &m->ice_trickle, &m->ice_ice2,
                    &m->end_of_candidates, &m->nfingerprints, m->fingerprints, &m->setup};
    }
    return L;
}

static int parse_origin(parser *P, span v)
{
    span f[6];
    uint64_t u;
    for (size_t i = 0; i < 6; i++)
        f[i] = next_tok(&v);
    if (f[5].n == 0 || !span_blank(v))
        return perr(P, EL_ERR_INVALID, "o= line needs 6 fields");
    if (!parse_uint(f[1], 20, UINT64_MAX, &u))
        return perr(P, EL_ERR_INVALID, "bad o= sess-id '%s'", quote(f[1]).s);
    P->s->sess_id = u;
    if (!parse_uint(f[2], 20, UINT64_MAX, &u))
        return perr(P, EL_ERR_INVALID, "bad o= sess-version '%s'", quote(f[2]).s);
    P->s->sess_version = u;
    if (!span_eq(f[3], "IN") || !(span_eq(f[4], "IP4") || span_eq(f[4], "IP6")))
        return perr(P, EL_ERR_INVALID, "o= line: unsupported network or address type");
    return EL_OK;
}

static int parse_conn(parser *P, span v)
{
    span net = next_tok(&v), type = next_tok(&v), addr = next_tok(&v);
    if (addr.n == 0 || !span_blank(v) || !span_eq(net, "IN") ||
        !(span_eq(type, "IP4") || span_eq(type, "IP6")))
        return perr(P, EL_ERR_INVALID, "bad c= line");
    return EL_OK;
}

static int parse_mline(parser *P, span v)
{
    el_sdp *s = P->s;
    uint64_t u;
    if (s->nmedia == EL_SDP_MAX_MEDIA)
        return perr(P, EL_ERR_QUOTA, "too many m= sections (max %d)", EL_SDP_MAX_MEDIA);
    el_sdp_media *m = &s->media[s->nmedia];
    memset(m, 0, sizeof *m);
    span media = next_tok(&v), port = next_tok(&v), proto = next_tok(&v);
    if (media.n == 0)
        return perr(P, EL_ERR_INVALID, "m= line has no media");
    if (media.n > EL_SDP_MEDIA_MAX || !is_token(media))
        return perr(P, EL_ERR_INVALID, "bad m= media '%s'", quote(media).s);
    if (port.n == 0)
        return perr(P, EL_ERR_INVALID, "m= line has no port");
    if (memchr(port.p, '/', port.n))
        return perr(P, EL_ERR_INVALID, "m= port count is not supported");
    if (!parse_uint(port, 5, 65535, &u))
        return perr(P, EL_ERR_INVALID, "m= line has a bad port '%s'", quote(port).s);
    if (proto.n == 0)
        return perr(P, EL_ERR_INVALID, "m= line has no proto");
    if (proto.n > EL_SDP_PROTO_MAX || !all_of(proto, is_proto_char))
        return perr(P, EL_ERR_INVALID, "bad m= proto '%s'", quote(proto).s);
    m->port = (uint16_t)u;
    copy_str(m->media, media);
    copy_str(m->proto, proto);
    m->type = span_eq(media, "audio")         ? EL_SDP_MEDIA_AUDIO
              : span_eq(media, "video")       ? EL_SDP_MEDIA_VIDEO
              : span_eq(media, "application") ? EL_SDP_MEDIA_APPLICATION
                                              : EL_SDP_MEDIA_OTHER;
    size_t n = 0;
    for (;;) {
        span f = next_tok(&v);
        if (f.n == 0)
            break;
        if (!is_token(f))
            return perr(P, EL_ERR_INVALID, "bad m= format '%s'", quote(f).s);
        if (n + (n ? 1 : 0) + f.n > EL_SDP_FMT_MAX)
            return perr(P, EL_ERR_INVALID, "m= format list too long");
        if (n)
            m->fmt[n++] = ' ';
        memcpy(m->fmt + n, f.p, f.n);
        n += f.n;
    }
    if (n == 0)
        return perr(P, EL_ERR_INVALID, "m= line has no format");
    m->fmt[n] = '\0';
    m->cand_first = s->ncandidates;
    P->cur = s->nmedia++;
    return EL_OK;
}

static int media_only(parser *P, span name)
{
    if (P->cur < 0)
        return perr(P, EL_ERR_INVALID, "a=%s is only allowed in an m= section", quote(name).s);
    return EL_OK;
}

static int dup_attr(parser *P, span name)
{
    return perr(P, EL_ERR_INVALID, "duplicate a=%s", quote(name).s);
}

static int parse_attr(parser *P, span v)
{
    el_sdp *s = P->s;
    el_sdp_media *m = P->cur >= 0 ? &s->media[P->cur] : NULL;
    level L = cur_level(P);
    const char *colon = memchr(v.p, ':', v.n);
    span name = {v.p, colon ? (size_t)(colon - v.p) : v.n};
    span val = {colon ? colon + 1 : v.p + v.n, colon ? v.n - name.n - 1 : 0};
    uint64_t u;
    int rc;
    char sub[160];

    if (!is_token(name))
        return perr(P, EL_ERR_INVALID, "bad attribute name '%s'", quote(name).s);

    if (span_eq(name, "ice-ufrag") || span_eq(name, "ice-pwd")) {
        bool ufrag = name.n == 9;
        char *dst = ufrag ? L.ufrag : L.pwd;
        size_t min = ufrag ? EL_SDP_UFRAG_MIN : EL_SDP_PWD_MIN;
        size_t max = ufrag ? EL_SDP_UFRAG_MAX : EL_SDP_PWD_MAX;
        if (dst[0])
            return dup_attr(P, name);
        if (val.n < min || val.n > max || !all_of(val, is_ice_char))
            return perr(P, EL_ERR_INVALID, "a=%s must be %zu..%zu ice-chars, got '%s'",
                        ufrag ? "ice-ufrag" : "ice-pwd", min, max, quote(val).s);
        copy_str(dst, val);
    } else if (span_eq(name, "ice-options")) {
        span rest = val;
        bool any = false;
        for (;;) {
            span t = next_tok(&rest);
            if (t.n == 0)
                break;
            if (!is_token(t))
                return perr(P, EL_ERR_INVALID, "bad ice option '%s'", quote(t).s);
            if (span_eq(t, "trickle"))
                *L.trickle = true;
            else if (span_eq(t, "ice2"))
                *L.ice2 = true;
            any = true;
        }
        if (!any)
            return perr(P, EL_ERR_INVALID, "empty a=ice-options");
    } else if (span_eq(name, "ice-lite")) {
        if (m)
            return perr(P, EL_ERR_INVALID, "a=ice-lite is only allowed at session level");
        s->ice_lite = true;
    } else if (span_eq(name, "fingerprint")) {
        if (*L.nfp == EL_SDP_MAX_FINGERPRINTS)
            return perr(P, EL_ERR_QUOTA, "too many a=fingerprint (max %d)",
                        EL_SDP_MAX_FINGERPRINTS);
        rc = fp_parse(val, &L.fp[*L.nfp], sub, sizeof sub);
        if (rc)
            return perr(P, rc, "%s", sub);
        (*L.nfp)++;
    } else if (span_eq(name, "setup")) {
        if (*L.setup != EL_SDP_SETUP_NONE)
            return dup_attr(P, name);
        if (span_eq(val, "actpass"))
            *L.setup = EL_SDP_SETUP_ACTPASS;
        else if (span_eq(val, "active"))
            *L.setup = EL_SDP_SETUP_ACTIVE;
        else if (span_eq(val, "passive"))
            *L.setup = EL_SDP_SETUP_PASSIVE;
        else
            return perr(P, EL_ERR_INVALID, "unsupported a=setup '%s'", quote(val).s);
    } else if (span_eq(name, "end-of-candidates")) {
        *L.eoc = true;
    } else if (span_eq(name, "group")) {
        span rest = val;
        span sem = next_tok(&rest);
        if (m)
            return perr(P, EL_ERR_INVALID, "a=group is only allowed at session level");
        if (!is_token(sem))
            return perr(P, EL_ERR_INVALID, "bad a=group semantics");
        if (!span_eq(sem, "BUNDLE"))
            return EL_OK; /* LS, FID, ...: not ours */
        if (s->has_bundle)
            return perr(P, EL_ERR_INVALID, "more than one a=group:BUNDLE is not supported");
        s->has_bundle = true;
        for (;;) {
            span mid = next_tok(&rest);
            if (mid.n == 0)
                break;
            if (mid.n > EL_SDP_MID_MAX || !is_token(mid))
                return perr(P, EL_ERR_INVALID, "bad mid '%s' in a=group:BUNDLE", quote(mid).s);
            if (P->nbundle_mids == EL_SDP_MAX_MEDIA)
                return perr(P, EL_ERR_QUOTA, "too many mids in a=group:BUNDLE");
            copy_str(P->bundle_mids[P->nbundle_mids++], mid);
        }
    } else if (span_eq(name, "mid")) {
        if ((rc = media_only(P, name)))
            return rc;
        if (m->mid[0])
            return dup_attr(P, name);
        if (val.n == 0 || val.n > EL_SDP_MID_MAX || !is_token(val))
            return perr(P, EL_ERR_INVALID, "bad a=mid '%s'", quote(val).s);
        copy_str(m->mid, val);
    } else if (span_eq(name, "candidate")) {
        if ((rc = media_only(P, name)))
            return rc;
        if (s->ncandidates == EL_SDP_MAX_CANDIDATES)
            return perr(P, EL_ERR_QUOTA, "too many candidates (max %d)", EL_SDP_MAX_CANDIDATES);
        rc = cand_parse(val, &s->candidates[s->ncandidates], sub, sizeof sub);
        if (rc)
            return perr(P, rc, "%s", sub);
        s->ncandidates++;
        m->cand_count++;
    } else if (span_eq(name, "rtcp-mux") || span_eq(name, "bundle-only")) {
        if ((rc = media_only(P, name)))
            return rc;
        if (name.n == 8)
            m->rtcp_mux = true;
        else
            m->bundle_only = true;
    } else if (span_eq(name, "sendrecv") || span_eq(name, "sendonly") ||
               span_eq(name, "recvonly") || span_eq(name, "inactive")) {
        if (!m)
            return EL_OK; /* session-level default direction: not kept */
        if (m->direction != EL_SDP_DIR_NONE)
            return perr(P, EL_ERR_INVALID, "more than one direction attribute");
        m->direction = (el_sdp_direction)name_index(name, dir_names, 5);
    } else if (span_eq(name, "sctp-port")) {
        if ((rc = media_only(P, name)))
            return rc;
        if (m->sctp_port)
            return dup_attr(P, name);
        if (!parse_uint(val, 5, 65535, &u) || u == 0)
            return perr(P, EL_ERR_INVALID, "bad a=sctp-port '%s'", quote(val).s);
        m->sctp_port = (uint16_t)u;
    } else if (span_eq(name, "max-message-size")) {
        if ((rc = media_only(P, name)))
            return rc;
        if (m->has_max_message_size)
            return dup_attr(P, name);
        if (!parse_uint(val, 19, UINT64_MAX, &u))
            return perr(P, EL_ERR_INVALID, "bad a=max-message-size '%s'", quote(val).s);
        m->max_message_size = u;
        m->has_max_message_size = true;
    }
    /* anything else (extmap-allow-mixed, msid-semantic, rtpmap, ...): ignored */
    return EL_OK;
}

static bool is_dc_section(const el_sdp_media *m)
{
    return m->type == EL_SDP_MEDIA_APPLICATION && (m->port != 0 || m->bundle_only) &&
           (strcmp(m->proto, "UDP/DTLS/SCTP") == 0 || strcmp(m->proto, "TCP/DTLS/SCTP") == 0) &&
           strcmp(m->fmt, EL_SDP_DATACHANNEL_FMT) == 0;
}

static int find_mid(const el_sdp *s, const char *mid)
{
    for (int i = 0; i < s->nmedia; i++)
        if (strcmp(s->media[i].mid, mid) == 0)
            return i;
    return -1;
}

/* Checks made once every line is read. */
static int finish(parser *P)
{
    el_sdp *s = P->s;
    char *err = P->err;
    size_t errlen = P->errlen;

    if (!P->seen_t)
        return el_seterr(err, errlen, EL_ERR_INVALID, "missing t= line");
    for (int i = 0; i < s->nmedia; i++) {
        el_sdp_media *m = &s->media[i];
        if (!m->mid[0])
            return el_seterr(err, errlen, EL_ERR_INVALID, "m= section %d has no a=mid", i);
        if (find_mid(s, m->mid) != i)
            return el_seterr(err, errlen, EL_ERR_INVALID, "duplicate a=mid '%s'", m->mid);
        /* fold the session level in */
        if (!m->ice_ufrag[0])
            memcpy(m->ice_ufrag, s->ice_ufrag, sizeof m->ice_ufrag);
        if (!m->ice_pwd[0])
            memcpy(m->ice_pwd, s->ice_pwd, sizeof m->ice_pwd);
        if (m->nfingerprints == 0) {
            m->nfingerprints = s->nfingerprints;
            memcpy(m->fingerprints, s->fingerprints, sizeof m->fingerprints);
        }
        if (m->setup == EL_SDP_SETUP_NONE)
            m->setup = s->setup;
        m->ice_trickle |= s->ice_trickle;
        m->ice_ice2 |= s->ice_ice2;
    }
    for (int i = 0; i < P->nbundle_mids; i++) {
        int idx = find_mid(s, P->bundle_mids[i]);
        if (idx < 0)
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "a=group:BUNDLE names unknown mid '%s'", P->bundle_mids[i]);
        for (int j = 0; j < s->nbundle; j++)
            if (s->bundle[j] == idx)
                return el_seterr(err, errlen, EL_ERR_INVALID,
                                 "a=group:BUNDLE names mid '%s' twice", P->bundle_mids[i]);
        s->bundle[s->nbundle++] = (uint8_t)idx;
    }
    s->dc = -1;
    for (int i = 0; i < s->nmedia && s->dc < 0; i++)
        if (is_dc_section(&s->media[i]))
            s->dc = i;
    if (s->dc < 0)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "no m=application section with UDP/DTLS/SCTP webrtc-datachannel");
    const el_sdp_media *d = &s->media[s->dc];
    if (!d->ice_ufrag[0])
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "data-channel section (mid %s): missing a=ice-ufrag", d->mid);
    if (!d->ice_pwd[0])
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "data-channel section (mid %s): missing a=ice-pwd", d->mid);
    if (d->nfingerprints == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "data-channel section (mid %s): missing a=fingerprint", d->mid);
    bool sha256 = false;
    for (int i = 0; i < d->nfingerprints; i++)
        sha256 |= d->fingerprints[i].hash == EL_SDP_HASH_SHA256;
    if (!sha256)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "data-channel section (mid %s): no sha-256 a=fingerprint", d->mid);
    return EL_OK;
}

int el_sdp_parse(const char *buf, size_t len, el_sdp *out, char *err, size_t errlen)
{
    parser P;
    memset(&P, 0, sizeof P);
    P.s = out;
    P.err = err;
    P.errlen = errlen;
    P.cur = -1;
    if (err && errlen)
        err[0] = '\0';
    memset(out, 0, sizeof *out);
    out->dc = -1;
    if (len == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "empty sdp");
    if (len > EL_SDP_MAX_SIZE)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE, "sdp larger than %d KiB",
                         EL_SDP_MAX_SIZE / 1024);

    size_t pos = 0;
    int empty_line = 0; /* first empty line, if only empty lines followed so far */
    int nonempty = 0;
    int rc;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        span l = {buf + pos, end - pos};
        pos = nl ? end + 1 : len;
        if (l.n && l.p[l.n - 1] == '\r')
            l.n--;
        if (++P.line > EL_SDP_MAX_LINES)
            return el_seterr(err, errlen, EL_ERR_QUOTA, "more than %d lines", EL_SDP_MAX_LINES);
        if (l.n == 0) {
            if (!empty_line)
                empty_line = P.line;
            continue;
        }
        if (empty_line) {
            P.line = empty_line;
            return perr(&P, EL_ERR_INVALID, "empty line");
        }
        for (size_t i = 0; i < l.n; i++) {
            unsigned char c = (unsigned char)l.p[i];
            if (c < 0x20 || c == 0x7f)
                return perr(&P, EL_ERR_INVALID, "control character 0x%02x", c);
        }
        if (l.n < 2 || l.p[1] != '=' || l.p[0] < 'a' || l.p[0] > 'z')
            return perr(&P, EL_ERR_INVALID, "not of the form <type>=<value>: '%s'",
                        quote(l).s);
        char type = l.p[0];
        span v = {l.p + 2, l.n - 2};
        if (++nonempty <= 3) {
            static const char order[] = "vos";
            if (type != order[nonempty - 1])
                return perr(&P, EL_ERR_INVALID, "missing %c= line (got '%s')",
                            order[nonempty - 1], quote(l).s);
        } else if (type == 'v' || type == 'o' || type == 's') {
            return perr(&P, EL_ERR_INVALID, "duplicate or misplaced %c= line", type);
        }
        switch (type) {
        case 'v':
            if (!span_eq(v, "0"))
                return perr(&P, EL_ERR_INVALID, "unsupported SDP version '%s'", quote(v).s);
            break;
        case 'o':
            if ((rc = parse_origin(&P, v)))
                return rc;
            break;
        case 's':
            break;
        case 't':
            if (P.cur >= 0)
                return perr(&P, EL_ERR_INVALID, "t= line inside an m= section");
            P.seen_t = true;
            break;
        case 'c':
            if ((rc = parse_conn(&P, v)))
                return rc;
            break;
        case 'm':
            if (!P.seen_t)
                return perr(&P, EL_ERR_INVALID, "m= line before the t= line");
            if ((rc = parse_mline(&P, v)))
                return rc;
            break;
        case 'a':
            if ((rc = parse_attr(&P, v)))
                return rc;
            break;
        case 'i': case 'u': case 'e': case 'p': case 'b': case 'r': case 'z': case 'k':
            break; /* RFC 8866 lines we do not need */
        default:
            return perr(&P, EL_ERR_INVALID, "unknown line type '%c='", type);
        }
    }
    if (nonempty < 3)
        return el_seterr(err, errlen, EL_ERR_INVALID, "missing %s line",
                         nonempty == 0 ? "v=" : nonempty == 1 ? "o=" : "s=");
    return finish(&P);
}

/* ---- writer ------------------------------------------------------------------ */

static bool fmt_ok(const char *fmt, size_t cap)
{
    size_t n = strnlen(fmt, cap);
    if (n == 0 || n == cap || fmt[0] == ' ' || fmt[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if (fmt[i] == ' ' ? fmt[i + 1] == ' ' : !is_token_char(fmt[i]))
            return false;
    return true;
}

static void emit_level(wbuf *w, const char *ufrag, const char *pwd, bool trickle, bool ice2,
                       uint8_t nfp, const el_sdp_fingerprint *fp, el_sdp_setup setup)
{
    char fps[EL_SDP_FINGERPRINT_STR_MAX];
    if (ufrag[0])
        wprintf(w, "a=ice-ufrag:%s\r\n", ufrag);
    if (pwd[0])
        wprintf(w, "a=ice-pwd:%s\r\n", pwd);
    if (trickle || ice2)
        wprintf(w, "a=ice-options:%s%s%s\r\n", trickle ? "trickle" : "",
                trickle && ice2 ? " " : "", ice2 ? "ice2" : "");
    for (int i = 0; i < nfp; i++) {
        if (el_sdp_fingerprint_write(&fp[i], fps, sizeof fps) > 0)
            wprintf(w, "a=fingerprint:%s\r\n", fps);
    }
    if (setup != EL_SDP_SETUP_NONE)
        wprintf(w, "a=setup:%s\r\n", el_sdp_setup_name(setup));
}

static int check_level(const char *ufrag, size_t ucap, const char *pwd, size_t pcap,
                       uint8_t nfp, const el_sdp_fingerprint *fp, el_sdp_setup setup,
                       const char *where, char *err, size_t errlen)
{
    size_t un = strnlen(ufrag, ucap), pn = strnlen(pwd, pcap);
    if (un == ucap || (un && (un < EL_SDP_UFRAG_MIN || !cstr_ok(ufrag, ucap, 0, is_ice_char))))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: bad ice-ufrag", where);
    if (pn == pcap || (pn && (pn < EL_SDP_PWD_MIN || !cstr_ok(pwd, pcap, 0, is_ice_char))))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: bad ice-pwd", where);
    if (nfp > EL_SDP_MAX_FINGERPRINTS)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: too many fingerprints", where);
    for (int i = 0; i < nfp; i++)
        if (!fp_valid(&fp[i]))
            return el_seterr(err, errlen, EL_ERR_INVALID, "%s: bad fingerprint", where);
    if ((unsigned)setup > EL_SDP_SETUP_PASSIVE)
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s: bad setup", where);
    return EL_OK;
}

static int check_sdp(const el_sdp *s, char *err, size_t errlen)
{
    int rc = check_level(s->ice_ufrag, sizeof s->ice_ufrag, s->ice_pwd, sizeof s->ice_pwd,
                         s->nfingerprints, s->fingerprints, s->setup, "session", err, errlen);
    if (rc)
        return rc;
    if (s->nmedia > EL_SDP_MAX_MEDIA || s->nbundle > s->nmedia ||
        s->ncandidates > EL_SDP_MAX_CANDIDATES)
        return el_seterr(err, errlen, EL_ERR_INVALID, "counts out of range");
    for (int i = 0; i < s->nbundle; i++)
        if (s->bundle[i] >= s->nmedia)
            return el_seterr(err, errlen, EL_ERR_INVALID, "bundle index out of range");
    for (int i = 0; i < s->nmedia; i++) {
        const el_sdp_media *m = &s->media[i];
        char where[32];
        snprintf(where, sizeof where, "m= section %d", i);
        rc = check_level(m->ice_ufrag, sizeof m->ice_ufrag, m->ice_pwd, sizeof m->ice_pwd,
                         m->nfingerprints, m->fingerprints, m->setup, where, err, errlen);
        if (rc)
            return rc;
        if (!CSTR_OK(m->media, 1, is_token_char) || !CSTR_OK(m->proto, 1, is_proto_char) ||
            !fmt_ok(m->fmt, sizeof m->fmt) || !CSTR_OK(m->mid, 1, is_token_char))
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "%s: bad media, proto, fmt or mid", where);
        if ((unsigned)m->direction > EL_SDP_DIR_INACTIVE)
            return el_seterr(err, errlen, EL_ERR_INVALID, "%s: bad direction", where);
        if ((size_t)m->cand_first + m->cand_count > s->ncandidates)
            return el_seterr(err, errlen, EL_ERR_INVALID, "%s: candidates out of range", where);
        for (int j = 0; j < m->cand_count; j++)
            if (!cand_valid(&s->candidates[m->cand_first + j]))
                return el_seterr(err, errlen, EL_ERR_INVALID, "%s: bad candidate %d", where, j);
    }
    return EL_OK;
}

int el_sdp_write(const el_sdp *s, char *out, size_t outlen, char *err, size_t errlen)
{
    if (outlen == 0)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE, "no room for the sdp");
    int rc = check_sdp(s, err, errlen);
    if (rc)
        return rc;
    wbuf w = {out, outlen, 0, false};
    out[0] = '\0';
    wprintf(&w, "v=0\r\no=- %llu %llu IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
            (unsigned long long)s->sess_id, (unsigned long long)s->sess_version);
    if (s->has_bundle) {
        wprintf(&w, "a=group:BUNDLE");
        for (int i = 0; i < s->nbundle; i++)
            wprintf(&w, " %s", s->media[s->bundle[i]].mid);
        wprintf(&w, "\r\n");
    }
    if (s->ice_lite)
        wprintf(&w, "a=ice-lite\r\n");
    emit_level(&w, s->ice_ufrag, s->ice_pwd, s->ice_trickle, s->ice_ice2, s->nfingerprints,
               s->fingerprints, s->setup);
    if (s->end_of_candidates)
        wprintf(&w, "a=end-of-candidates\r\n");
    wprintf(&w, "a=msid-semantic: WMS\r\n");
    for (int i = 0; i < s->nmedia; i++) {
        const el_sdp_media *m = &s->media[i];
        wprintf(&w, "m=%s %u %s %s\r\nc=IN IP4 0.0.0.0\r\n", m->media, (unsigned)m->port,
                m->proto, m->fmt);
        for (int j = 0; j < m->cand_count; j++) {
            wprintf(&w, "a=");
            cand_emit(&w, &s->candidates[m->cand_first + j]);
            wprintf(&w, "\r\n");
        }
        if (m->end_of_candidates)
            wprintf(&w, "a=end-of-candidates\r\n");
        emit_level(&w, m->ice_ufrag, m->ice_pwd, m->ice_trickle, m->ice_ice2, m->nfingerprints,
                   m->fingerprints, m->setup);
        wprintf(&w, "a=mid:%s\r\n", m->mid);
        if (m->bundle_only)
            wprintf(&w, "a=bundle-only\r\n");
        if (m->direction != EL_SDP_DIR_NONE)
            wprintf(&w, "a=%s\r\n", dir_names[m->direction]);
        if (m->rtcp_mux)
            wprintf(&w, "a=rtcp-mux\r\n");
        if (m->sctp_port)
            wprintf(&w, "a=sctp-port:%u\r\n", (unsigned)m->sctp_port);
        if (m->has_max_message_size)
            wprintf(&w, "a=max-message-size:%llu\r\n", (unsigned long long)m->max_message_size);
    }
    if (w.full)
        return el_seterr(err, errlen, EL_ERR_TOO_LARGE, "sdp does not fit in %zu bytes",
                         outlen);
    return (int)w.len;
}

/* ---- equality ----------------------------------------------------------------- */

static bool level_equal(const char *u1, const char *u2, const char *p1, const char *p2,
                        uint8_t n1, uint8_t n2, const el_sdp_fingerprint *f1,
                        const el_sdp_fingerprint *f2)
{
    if (strcmp(u1, u2) != 0 || strcmp(p1, p2) != 0 || n1 != n2 || n1 > EL_SDP_MAX_FINGERPRINTS)
        return false;
    for (int i = 0; i < n1; i++)
        if (!fp_equal(&f1[i], &f2[i]))
            return false;
    return true;
}

bool el_sdp_equal(const el_sdp *a, const el_sdp *b)
{
    if (a->sess_id != b->sess_id || a->sess_version != b->sess_version ||
        !level_equal(a->ice_ufrag, b->ice_ufrag, a->ice_pwd, b->ice_pwd, a->nfingerprints,
                     b->nfingerprints, a->fingerprints, b->fingerprints) ||
        a->ice_trickle != b->ice_trickle || a->ice_ice2 != b->ice_ice2 ||
        a->ice_lite != b->ice_lite || a->end_of_candidates != b->end_of_candidates ||
        a->setup != b->setup || a->has_bundle != b->has_bundle || a->nbundle != b->nbundle ||
        a->nmedia != b->nmedia || a->ncandidates != b->ncandidates || a->dc != b->dc ||
        a->nbundle > EL_SDP_MAX_MEDIA || a->nmedia > EL_SDP_MAX_MEDIA ||
        a->ncandidates > EL_SDP_MAX_CANDIDATES)
        return false;
    if (memcmp(a->bundle, b->bundle, a->nbundle) != 0)
        return false;
    for (int i = 0; i < a->nmedia; i++) {
        const el_sdp_media *x = &a->media[i], *y = &b->media[i];
        if (x->type != y->type || strcmp(x->media, y->media) != 0 || x->port != y->port ||
            strcmp(x->proto, y->proto) != 0 || strcmp(x->fmt, y->fmt) != 0 ||
            strcmp(x->mid, y->mid) != 0 ||
            !level_equal(x->ice_ufrag, y->ice_ufrag, x->ice_pwd, y->ice_pwd, x->nfingerprints,
                         y->nfingerprints, x->fingerprints, y->fingerprints) ||
            x->ice_trickle != y->ice_trickle || x->ice_ice2 != y->ice_ice2 ||
            x->setup != y->setup || x->direction != y->direction ||
            x->rtcp_mux != y->rtcp_mux || x->bundle_only != y->bundle_only ||
            x->end_of_candidates != y->end_of_candidates || x->sctp_port != y->sctp_port ||
            x->has_max_message_size != y->has_max_message_size ||
            x->max_message_size != y->max_message_size || x->cand_first != y->cand_first ||
            x->cand_count != y->cand_count)
            return false;
    }
    for (int i = 0; i < a->ncandidates; i++)
        if (!cand_equal(&a->candidates[i], &b->candidates[i]))
            return false;
    return true;
}

/* ---- building a data-channel offer or answer ------------------------------------ */

static int set_cred(char *dst, size_t cap, const char *src, size_t min, const char *what,
                    char *err, size_t errlen)
{
    size_t n = src ? strnlen(src, cap) : 0;
    span sp = {src, n};
    if (!src || n < min || n >= cap || !all_of(sp, is_ice_char))
        return el_seterr(err, errlen, EL_ERR_INVALID, "%s must be %zu..%zu ice-chars", what,
                         min, cap - 1);
    memcpy(dst, src, n + 1);
    return EL_OK;
}

int el_sdp_build_dc(el_sdp *out, const el_sdp_dc_params *p, char *err, size_t errlen)
{
    const el_sdp *offer = p->offer;
    int rc;
    memset(out, 0, sizeof *out);
    out->dc = -1;
    out->sess_id = p->sess_id;
    out->sess_version = p->sess_version;

    if (p->fingerprint.hash != EL_SDP_HASH_SHA256 || p->fingerprint.len != 32)
        return el_seterr(err, errlen, EL_ERR_INVALID, "our fingerprint must be sha-256");
    if (p->ncandidates > EL_SDP_MAX_CANDIDATES)
        return el_seterr(err, errlen, EL_ERR_QUOTA, "too many candidates (max %d)",
                         EL_SDP_MAX_CANDIDATES);
    for (size_t i = 0; i < p->ncandidates; i++)
        if (!cand_valid(&p->candidates[i]))
            return el_seterr(err, errlen, EL_ERR_INVALID, "candidate %zu is invalid", i);

    int dc;
    if (!offer) {
        if (p->setup == EL_SDP_SETUP_NONE || (unsigned)p->setup > EL_SDP_SETUP_PASSIVE)
            return el_seterr(err, errlen, EL_ERR_INVALID, "offer needs a setup role (actpass)");
        const char *mid = p->mid ? p->mid : "0";
        span ms = {mid, strnlen(mid, EL_SDP_MID_MAX + 1)};
        if (ms.n > EL_SDP_MID_MAX || !is_token(ms))
            return el_seterr(err, errlen, EL_ERR_INVALID, "bad mid '%s'", quote(ms).s);
        dc = 0;
        out->nmedia = 1;
        copy_str(out->media[0].mid, ms);
        memcpy(out->media[0].proto, EL_SDP_DATACHANNEL_PROTO, sizeof EL_SDP_DATACHANNEL_PROTO);
    } else {
        if (offer->dc < 0 || offer->dc >= offer->nmedia || offer->nmedia > EL_SDP_MAX_MEDIA)
            return el_seterr(err, errlen, EL_ERR_INVALID, "offer has no data-channel section");
        if (p->setup != EL_SDP_SETUP_ACTIVE && p->setup != EL_SDP_SETUP_PASSIVE)
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "answer a=setup must be active or passive");
        el_sdp_setup theirs = offer->media[offer->dc].setup;
        if ((theirs == EL_SDP_SETUP_ACTIVE && p->setup != EL_SDP_SETUP_PASSIVE) ||
            (theirs == EL_SDP_SETUP_PASSIVE && p->setup != EL_SDP_SETUP_ACTIVE))
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "offer is a=setup:%s, the answer must be %s",
                             el_sdp_setup_name(theirs),
                             theirs == EL_SDP_SETUP_ACTIVE ? "passive" : "active");
        dc = offer->dc;
        out->nmedia = offer->nmedia;
        for (int i = 0; i < offer->nmedia; i++) {
            const el_sdp_media *o = &offer->media[i];
            el_sdp_media *m = &out->media[i];
            m->type = o->type;
            memcpy(m->media, o->media, sizeof m->media);
            memcpy(m->proto, o->proto, sizeof m->proto);
            memcpy(m->fmt, o->fmt, sizeof m->fmt);
            memcpy(m->mid, o->mid, sizeof m->mid);
            if (i != dc)
                m->direction = EL_SDP_DIR_INACTIVE; /* rejected: port 0 */
        }
    }

    el_sdp_media *d = &out->media[dc];
    out->dc = dc;
    out->has_bundle = true;
    out->nbundle = 1;
    out->bundle[0] = (uint8_t)dc;
    d->type = EL_SDP_MEDIA_APPLICATION;
    memcpy(d->media, "application", sizeof "application");
    memcpy(d->fmt, EL_SDP_DATACHANNEL_FMT, sizeof EL_SDP_DATACHANNEL_FMT);
    d->port = 9;
    rc = set_cred(d->ice_ufrag, sizeof d->ice_ufrag, p->ice_ufrag, EL_SDP_UFRAG_MIN,
                  "ice-ufrag", err, errlen);
    if (rc)
        return rc;
    rc = set_cred(d->ice_pwd, sizeof d->ice_pwd, p->ice_pwd, EL_SDP_PWD_MIN, "ice-pwd", err,
                  errlen);
    if (rc)
        return rc;
    d->ice_trickle = p->ice_trickle;
    d->nfingerprints = 1;
    d->fingerprints[0] = p->fingerprint;
    d->setup = p->setup;
    d->sctp_port = p->sctp_port ? p->sctp_port : EL_SDP_DEFAULT_SCTP_PORT;
    d->has_max_message_size = true;
    d->max_message_size = p->max_message_size ? p->max_message_size
                                              : EL_SDP_DEFAULT_MAX_MESSAGE_SIZE;
    d->end_of_candidates = p->end_of_candidates;
    d->cand_first = 0;
    d->cand_count = (uint16_t)p->ncandidates;
    if (p->ncandidates)
        memcpy(out->candidates, p->candidates, p->ncandidates * sizeof *p->candidates);
    out->ncandidates = (uint16_t)p->ncandidates;
    for (int i = dc + 1; i < out->nmedia; i++)
        out->media[i].cand_first = out->ncandidates; /* candidates in earlier sections */
    return EL_OK;
}

int el_sdp_write_dc(const el_sdp_dc_params *p, char *out, size_t outlen, char *err,
                    size_t errlen)
{
    el_sdp *s = malloc(sizeof *s);
    if (!s)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
    int rc = el_sdp_build_dc(s, p, err, errlen);
    if (rc == EL_OK)
        rc = el_sdp_write(s, out, outlen, err, errlen);
    free(s);
    return rc;
}
