/* test_sdp.c - src/rtc/sdp: every captured browser/libwebrtc SDP parses with
 * the expected values, write -> parse round trips, the data-channel answer
 * (byte-identical to the one Chromium 156 accepted from the spike peer;
 * rejected mirrors of audio/video), the candidate and fingerprint helpers,
 * and one precise error per kind of malformed, unsafe or unsupported input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test.h"

#include "base/err.h"
#include "rtc/sdp.h"

/* ---- helpers --------------------------------------------------------------- */

static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sdp/%s", EL_TEST_DATA, name);
    char *buf = el_test_read_file(path, len);
    if (!buf)
        fail_msg("cannot read %s", path);
    return buf;
}

static el_sdp *new_sdp(void)
{
    el_sdp *s = calloc(1, sizeof *s);
    assert_non_null(s);
    return s;
}

/* Parses from a heap copy of exactly len bytes, so ASan sees any overread. */
static int parse_exact(const char *text, size_t len, el_sdp *out, char *err, size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    int rc = el_sdp_parse(copy, len, out, err, errlen);
    free(copy);
    return rc;
}

static void expect_ok(const char *text, size_t len, el_sdp *out)
{
    char err[256] = "";
    int rc = parse_exact(text, len, out, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("parse failed (%d): %s", rc, err);
}

static void expect_err_n(const char *text, size_t len, int code, const char *want)
{
    el_sdp *s = new_sdp();
    char err[256] = "";
    int rc = parse_exact(text, len, s, err, sizeof err);
    free(s);
    if (rc != code || !strstr(err, want))
        fail_msg("expected %d with \"%s\", got %d with \"%s\"", code, want, rc, err);
}

static void expect_err(const char *text, int code, const char *want)
{
    expect_err_n(text, strlen(text), code, want);
}

/* Copy of src with the first occurrence of from replaced by to. */
static char *replace(const char *src, const char *from, const char *to)
{
    const char *at = strstr(src, from);
    if (!at)
        fail_msg("\"%s\" not in the fixture", from);
    size_t a = (size_t)(at - src), fl = strlen(from), tl = strlen(to), n = strlen(src);
    char *out = malloc(n - fl + tl + 1);
    assert_non_null(out);
    memcpy(out, src, a);
    memcpy(out + a, to, tl);
    memcpy(out + a + tl, at + fl, n - a - fl + 1);
    return out;
}

/* Parses "AB:CD:..." independently of the code under test. */
static size_t colon_hex(const char *s, uint8_t *out)
{
    size_t n = 0;
    while (*s) {
        unsigned v;
        assert_int_equal(sscanf(s, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
        s += 2;
        if (*s == ':')
            s++;
    }
    return n;
}

static void assert_fp(const el_sdp_fingerprint *fp, const char *hex)
{
    uint8_t want[64];
    size_t n = colon_hex(hex, want);
    assert_int_equal(fp->hash, EL_SDP_HASH_SHA256);
    assert_int_equal(fp->len, n);
    assert_memory_equal(fp->digest, want, n);
}

static void roundtrip(const el_sdp *s, char **text_out)
{
    char err[256] = "";
    char *text = malloc(EL_SDP_MAX_SIZE);
    assert_non_null(text);
    int n = el_sdp_write(s, text, EL_SDP_MAX_SIZE, err, sizeof err);
    if (n < 0)
        fail_msg("write failed (%d): %s", n, err);
    assert_int_equal(strlen(text), (size_t)n);
    el_sdp *back = new_sdp();
    expect_ok(text, (size_t)n, back);
    if (!el_sdp_equal(s, back))
        fail_msg("parse(write(x)) != x for:\n%s", text);
    /* writing again gives the same text */
    char *again = malloc(EL_SDP_MAX_SIZE);
    assert_non_null(again);
    assert_int_equal(el_sdp_write(back, again, EL_SDP_MAX_SIZE, err, sizeof err), n);
    assert_string_equal(again, text);
    free(again);
    free(back);
    if (text_out)
        *text_out = text;
    else
        free(text);
}

static const char *const captured[] = {
    "chromium-offer.sdp",     "chromium-offer-trickle-initial.sdp",
    "chromium-answer.sdp",    "chromium-answer-trickle-initial.sdp",
    "cpeer-answer.sdp",       "nodewrtc-answer.sdp",
    "chromium-offer-av.sdp",  "chromium-answer-mdns.sdp",
};

/* ---- captured SDPs ------------------------------------------------------------ */

static const struct {
    const char *file;
    uint64_t sess_id;
    const char *ufrag, *pwd, *fp;
    el_sdp_setup setup;
    const char *mid;
    int dc, nmedia;
    uint16_t port;
    int ncand;
} expect[] = {
    {"chromium-offer.sdp", 8532572741224564219ull, "u9uR", "sUUvN7ooBkhOAl5mwNxbI8sB",
     "01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0:3B:44:5C:E4:D0:F7:CB:96:5B:20:A1:62",
     EL_SDP_SETUP_ACTPASS, "0", 0, 1, 32830, 1},
    {"chromium-offer-trickle-initial.sdp", 8532572741224564219ull, "u9uR",
     "sUUvN7ooBkhOAl5mwNxbI8sB",
     "01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0:3B:44:5C:E4:D0:F7:CB:96:5B:20:A1:62",
     EL_SDP_SETUP_ACTPASS, "0", 0, 1, 9, 0},
    {"chromium-answer.sdp", 7746636446653032708ull, "hTa2", "VO06Pki6uwXsdw3rgdYQoP0t",
     "AD:44:3A:D6:BA:16:C4:E2:8B:76:22:7D:96:F3:72:14:5D:72:03:54:A4:7F:56:7B:32:BA:A3:35:27:44:61:23",
     EL_SDP_SETUP_ACTIVE, "0", 0, 1, 58761, 1},
    {"chromium-answer-trickle-initial.sdp", 7746636446653032708ull, "hTa2",
     "VO06Pki6uwXsdw3rgdYQoP0t",
     "AD:44:3A:D6:BA:16:C4:E2:8B:76:22:7D:96:F3:72:14:5D:72:03:54:A4:7F:56:7B:32:BA:A3:35:27:44:61:23",
     EL_SDP_SETUP_ACTIVE, "0", 0, 1, 9, 0},
    {"cpeer-answer.sdp", 3848167432ull, "3zgH", "+hKwoxRqv73QsHwQh/LLpw",
     "DD:EB:9A:E7:ED:86:10:01:1F:AF:A1:AC:0B:45:1E:4F:3A:34:36:2B:3F:01:2D:47:F6:4C:7F:00:50:18:7D:81",
     EL_SDP_SETUP_ACTIVE, "0", 0, 1, 9, 0},
    {"nodewrtc-answer.sdp", 7377535442863455014ull, "qpVB", "r5AUuRQwUcZu0CztiKeakHvr",
     "DD:10:6C:26:69:1E:2C:E6:D2:03:DD:D9:FE:DF:1E:38:7B:09:C2:6F:E9:0A:B4:22:4B:F3:D1:E0:C5:E5:A6:CB",
     EL_SDP_SETUP_ACTIVE, "0", 0, 1, 9, 0},
    {"chromium-offer-av.sdp", 5672628285583997696ull, "wMOe", "Y4vOkRYD947950zCQFbw0EOg",
     "58:52:07:E9:FA:7D:FF:CD:95:11:AF:30:38:EC:8A:AD:2F:09:4C:7D:09:A3:1A:B9:DF:7C:CD:BD:8A:34:34:7F",
     EL_SDP_SETUP_ACTPASS, "2", 2, 3, 9, 0},
    {"chromium-answer-mdns.sdp", 4004438207643091952ull, "RvCl", "PNFcmJ9Btm9BgPSdq1lxABaS",
     "E3:02:F6:08:C0:70:03:DA:96:32:73:D1:42:48:42:69:66:28:19:FE:1B:31:60:15:65:76:96:97:39:F6:FB:9B",
     EL_SDP_SETUP_ACTIVE, "data", 0, 1, 9, 2},
};

static void test_captured_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        size_t len;
        char *text = load(expect[i].file, &len);
        el_sdp *s = new_sdp();
        expect_ok(text, len, s);
        assert_int_equal(s->sess_id, expect[i].sess_id);
        assert_int_equal(s->sess_version, 2);
        assert_int_equal(s->nmedia, expect[i].nmedia);
        assert_int_equal(s->dc, expect[i].dc);
        const el_sdp_media *d = &s->media[s->dc];
        assert_int_equal(d->type, EL_SDP_MEDIA_APPLICATION);
        assert_string_equal(d->media, "application");
        assert_string_equal(d->proto, "UDP/DTLS/SCTP");
        assert_string_equal(d->fmt, "webrtc-datachannel");
        assert_int_equal(d->port, expect[i].port);
        assert_string_equal(d->mid, expect[i].mid);
        assert_string_equal(d->ice_ufrag, expect[i].ufrag);
        assert_string_equal(d->ice_pwd, expect[i].pwd);
        assert_true(d->ice_trickle);
        assert_false(d->ice_ice2);
        assert_int_equal(d->nfingerprints, 1);
        assert_fp(&d->fingerprints[0], expect[i].fp);
        assert_int_equal(d->setup, expect[i].setup);
        assert_int_equal(d->sctp_port, 5000);
        assert_true(d->has_max_message_size);
        assert_int_equal(d->max_message_size, 262144);
        assert_int_equal(d->cand_count, expect[i].ncand);
        assert_int_equal(s->ncandidates, expect[i].ncand);
        assert_true(s->has_bundle);
        assert_int_equal(s->nbundle, expect[i].nmedia);
        /* Chromium puts ICE/DTLS attributes at media level only */
        assert_string_equal(s->ice_ufrag, "");
        assert_int_equal(s->nfingerprints, 0);
        assert_false(s->ice_lite);
        free(s);
        free(text);
    }
}

static void test_captured_candidates(void **state)
{
    (void)state;
    size_t len;
    char *text = load("chromium-offer.sdp", &len);
    el_sdp *s = new_sdp();
    expect_ok(text, len, s);
    /* a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830 typ host generation 0 network-cost 999 */
    const el_sdp_candidate *c = &s->candidates[s->media[0].cand_first];
    assert_string_equal(c->foundation, "1519621329");
    assert_int_equal(c->component, 1);
    assert_int_equal(c->transport, EL_SDP_TRANSPORT_UDP);
    assert_int_equal(c->priority, 2113937151u);
    assert_string_equal(c->address, "10.77.1.1");
    assert_int_equal(c->addr_kind, EL_SDP_ADDR_IP4);
    assert_int_equal(c->port, 32830);
    assert_int_equal(c->type, EL_SDP_CAND_HOST);
    assert_false(c->has_raddr);
    assert_false(c->has_rport);
    assert_int_equal(c->tcptype, EL_SDP_TCPTYPE_NONE);
    assert_string_equal(c->ufrag, "");
    free(text);

    text = load("chromium-answer.sdp", &len);
    expect_ok(text, len, s);
    c = &s->candidates[0];
    assert_string_equal(c->foundation, "1799043084");
    assert_int_equal(c->port, 58761);
    free(text);

    /* mDNS: a=candidate:3111949532 1 udp 2113937151 7f22f2c3-...-7724e501fa79.local 34552 typ host */
    text = load("chromium-answer-mdns.sdp", &len);
    expect_ok(text, len, s);
    c = &s->candidates[0];
    assert_string_equal(c->foundation, "3111949532");
    assert_string_equal(c->address, "7f22f2c3-62be-4b12-bcf2-7724e501fa79.local");
    assert_int_equal(c->addr_kind, EL_SDP_ADDR_MDNS);
    assert_int_equal(c->port, 34552);
    assert_int_equal(c->priority, 2113937151u);
    assert_int_equal(s->candidates[1].addr_kind, EL_SDP_ADDR_MDNS);
    assert_int_equal(s->candidates[1].port, 36904);
    free(text);
    free(s);
}

static void test_captured_av(void **state)
{
    (void)state;
    size_t len;
    char *text = load("chromium-offer-av.sdp", &len);
    el_sdp *s = new_sdp();
    expect_ok(text, len, s);
    const el_sdp_media *a = &s->media[0], *v = &s->media[1];
    assert_int_equal(a->type, EL_SDP_MEDIA_AUDIO);
    assert_string_equal(a->media, "audio");
    assert_string_equal(a->proto, "UDP/TLS/RTP/SAVPF");
    assert_string_equal(a->fmt, "111 63 9 0 8 13 110 126");
    assert_string_equal(a->mid, "0");
    assert_int_equal(a->direction, EL_SDP_DIR_SENDRECV);
    assert_true(a->rtcp_mux);
    assert_string_equal(a->ice_ufrag, "wMOe");
    assert_int_equal(v->type, EL_SDP_MEDIA_VIDEO);
    assert_string_equal(v->fmt, "96 97 102 103 104 107 108 109 114 115 116 117 39 40 45 46 "
                                "98 99 100 101 118 119 120");
    assert_string_equal(v->mid, "1");
    assert_int_equal(s->bundle[0], 0);
    assert_int_equal(s->bundle[1], 1);
    assert_int_equal(s->bundle[2], 2);
    free(s);
    free(text);
}

static void test_captured_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof captured / sizeof captured[0]; i++) {
        size_t len;
        char *text = load(captured[i], &len);
        el_sdp *s = new_sdp();
        expect_ok(text, len, s);
        roundtrip(s, NULL);
        free(s);
        free(text);
    }
}

/* LF-only line ends, a missing final line end and trailing empty lines. */
static void test_line_ends(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof captured / sizeof captured[0]; i++) {
        size_t len, n = 0;
        char *text = load(captured[i], &len);
        char *lf = malloc(len + 8);
        assert_non_null(lf);
        for (size_t j = 0; j < len; j++)
            if (text[j] != '\r')
                lf[n++] = text[j];
        el_sdp *a = new_sdp(), *b = new_sdp();
        expect_ok(text, len, a);
        expect_ok(lf, n, b);
        assert_true(el_sdp_equal(a, b));
        expect_ok(text, len - 2, b); /* no final CRLF */
        assert_true(el_sdp_equal(a, b));
        memcpy(lf + n, "\n\r\n", 3); /* trailing empty lines */
        expect_ok(lf, n + 3, b);
        assert_true(el_sdp_equal(a, b));
        free(a);
        free(b);
        free(lf);
        free(text);
    }
}

/* ---- writing ------------------------------------------------------------------- */

static void cpeer_params(el_sdp_dc_params *p, uint8_t digest[32])
{
    memset(p, 0, sizeof *p);
    colon_hex("DD:EB:9A:E7:ED:86:10:01:1F:AF:A1:AC:0B:45:1E:4F:3A:34:36:2B:3F:01:2D:47:F6:4C:"
              "7F:00:50:18:7D:81",
              digest);
    el_sdp_fingerprint_sha256(&p->fingerprint, digest);
    p->sess_id = 3848167432ull;
    p->sess_version = 2;
    p->ice_ufrag = "3zgH";
    p->ice_pwd = "+hKwoxRqv73QsHwQh/LLpw";
    p->ice_trickle = true;
    p->setup = EL_SDP_SETUP_ACTIVE;
}

/* Our answer to Chromium's offer is byte-for-byte the answer Chromium 156
 * accepted from the spike peer. */
static void test_answer_matches_accepted(void **state)
{
    (void)state;
    size_t olen, alen;
    char *offer_text = load("chromium-offer.sdp", &olen);
    char *want = load("cpeer-answer.sdp", &alen);
    el_sdp *offer = new_sdp();
    expect_ok(offer_text, olen, offer);
    el_sdp_dc_params p;
    uint8_t digest[32];
    cpeer_params(&p, digest);
    p.offer = offer;
    char out[4096], err[256] = "";
    int n = el_sdp_write_dc(&p, out, sizeof out, err, sizeof err);
    if (n < 0)
        fail_msg("write_dc: %s", err);
    assert_int_equal((size_t)n, alen);
    assert_string_equal(out, want);

    el_sdp *built = new_sdp();
    assert_int_equal(el_sdp_build_dc(built, &p, err, sizeof err), EL_OK);
    roundtrip(built, NULL);
    free(built);
    free(offer);
    free(offer_text);
    free(want);
}

static void test_build_offer(void **state)
{
    (void)state;
    el_sdp_dc_params p;
    uint8_t digest[32];
    cpeer_params(&p, digest);
    p.setup = EL_SDP_SETUP_ACTPASS;
    p.sess_version = 7;
    p.max_message_size = 1 << 20;
    p.sctp_port = 5001;
    const char *cs[] = {
        "candidate:1 1 udp 2113937151 10.77.1.3 50000 typ host ufrag 3zgH",
        "candidate:2 1 tcp 1518280447 10.77.1.3 9 typ host tcptype active",
        "candidate:3 1 udp 1677729535 203.0.113.7 40000 typ srflx raddr 10.77.1.3 rport 50000",
        "candidate:4 1 udp 2122262783 fd00:77::3 50001 typ host",
    };
    el_sdp_candidate cand[4];
    char err[256] = "";
    for (int i = 0; i < 4; i++)
        assert_int_equal(el_sdp_candidate_parse(cs[i], strlen(cs[i]), &cand[i], err, sizeof err),
                         EL_OK);
    p.candidates = cand;
    p.ncandidates = 4;
    p.end_of_candidates = true;
    el_sdp *s = new_sdp();
    assert_int_equal(el_sdp_build_dc(s, &p, err, sizeof err), EL_OK);
    char *text;
    roundtrip(s, &text);
    assert_non_null(strstr(text, "v=0\r\no=- 3848167432 7 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                                 "a=group:BUNDLE 0\r\n"));
    assert_non_null(strstr(text, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                                 "c=IN IP4 0.0.0.0\r\n"
                                 "a=candidate:1 1 udp 2113937151 10.77.1.3 50000 typ host ufrag 3zgH\r\n"));
    assert_non_null(strstr(text, "a=candidate:4 1 udp 2122262783 fd00:77::3 50001 typ host\r\n"
                                 "a=end-of-candidates\r\n"));
    assert_non_null(strstr(text, "a=setup:actpass\r\na=mid:0\r\na=sctp-port:5001\r\n"
                                 "a=max-message-size:1048576\r\n"));
    el_sdp *back = new_sdp();
    expect_ok(text, strlen(text), back);
    assert_int_equal(back->media[0].cand_count, 4);
    assert_int_equal(back->candidates[3].addr_kind, EL_SDP_ADDR_IP6);
    assert_true(back->media[0].end_of_candidates);
    free(back);
    free(text);

    /* an explicit mid, and the role check */
    p.mid = "data";
    assert_int_equal(el_sdp_build_dc(s, &p, err, sizeof err), EL_OK);
    assert_string_equal(s->media[0].mid, "data");
    p.mid = "bad mid";
    assert_int_equal(el_sdp_build_dc(s, &p, err, sizeof err), EL_ERR_INVALID);
    p.mid = NULL;
    p.setup = EL_SDP_SETUP_NONE;
    assert_int_equal(el_sdp_build_dc(s, &p, err, sizeof err), EL_ERR_INVALID);
    p.setup = EL_SDP_SETUP_ACTPASS;
    p.ice_pwd = "short";
    assert_int_equal(el_sdp_build_dc(s, &p, err, sizeof err), EL_ERR_INVALID);
    assert_non_null(strstr(err, "ice-pwd"));
    p.ice_pwd = "+hKwoxRqv73QsHwQh/LLpw";
    p.fingerprint.hash = EL_SDP_HASH_SHA1;
    p.fingerprint.len = 20;
    assert_int_equal(el_sdp_build_dc(s, &p, err, sizeof err), EL_ERR_INVALID);
    assert_non_null(strstr(err, "sha-256"));
    free(s);
}

/* An answer to an offer with audio and video accepts the data channel and
 * mirrors the others as rejected (port 0, same proto and fmt, a=inactive);
 * BUNDLE lists only the accepted mid. */
static void test_answer_rejects_av(void **state)
{
    (void)state;
    size_t len;
    char *offer_text = load("chromium-offer-av.sdp", &len);
    el_sdp *offer = new_sdp(), *ans = new_sdp();
    expect_ok(offer_text, len, offer);
    el_sdp_dc_params p;
    uint8_t digest[32];
    cpeer_params(&p, digest);
    p.offer = offer;
    p.setup = EL_SDP_SETUP_PASSIVE;
    char err[256] = "";
    assert_int_equal(el_sdp_build_dc(ans, &p, err, sizeof err), EL_OK);
    char *text;
    roundtrip(ans, &text);
    assert_non_null(strstr(text, "a=group:BUNDLE 2\r\n"));
    assert_non_null(strstr(text, "m=audio 0 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
                                 "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=inactive\r\n"
                                 "m=video 0 UDP/TLS/RTP/SAVPF 96 97 102 "));
    assert_non_null(strstr(text, "a=mid:1\r\na=inactive\r\n"
                                 "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
    el_sdp *back = new_sdp();
    expect_ok(text, strlen(text), back);
    assert_int_equal(back->nmedia, 3);
    assert_int_equal(back->dc, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(back->media[i].port, 0);
        assert_string_equal(back->media[i].mid, offer->media[i].mid);
        assert_string_equal(back->media[i].proto, offer->media[i].proto);
        assert_string_equal(back->media[i].fmt, offer->media[i].fmt);
        assert_int_equal(back->media[i].type, offer->media[i].type);
        assert_int_equal(back->media[i].direction, EL_SDP_DIR_INACTIVE);
        assert_string_equal(back->media[i].ice_ufrag, "");
    }
    assert_int_equal(back->media[2].setup, EL_SDP_SETUP_PASSIVE);
    assert_string_equal(back->media[2].mid, "2");
    assert_int_equal(back->nbundle, 1);
    assert_int_equal(back->bundle[0], 2);
    free(back);
    free(text);

    /* DTLS roles must complement the offer's (RFC 8842) */
    p.setup = EL_SDP_SETUP_ACTPASS;
    assert_int_equal(el_sdp_build_dc(ans, &p, err, sizeof err), EL_ERR_INVALID);
    assert_non_null(strstr(err, "active or passive"));
    offer->media[2].setup = EL_SDP_SETUP_ACTIVE;
    p.setup = EL_SDP_SETUP_ACTIVE;
    assert_int_equal(el_sdp_build_dc(ans, &p, err, sizeof err), EL_ERR_INVALID);
    assert_non_null(strstr(err, "must be passive"));
    p.setup = EL_SDP_SETUP_PASSIVE;
    assert_int_equal(el_sdp_build_dc(ans, &p, err, sizeof err), EL_OK);
    free(ans);
    free(offer);
    free(offer_text);
}

static void test_write_errors(void **state)
{
    (void)state;
    size_t len;
    char *text = load("chromium-offer.sdp", &len);
    el_sdp *s = new_sdp();
    expect_ok(text, len, s);
    char out[4096], err[256];
    int n = el_sdp_write(s, out, sizeof out, err, sizeof err);
    assert_true(n > 0);
    /* every buffer smaller than the text (+ NUL) is refused */
    for (size_t cap = 0; cap <= (size_t)n; cap++)
        assert_int_equal(el_sdp_write(s, out, cap, err, sizeof err), EL_ERR_TOO_LARGE);
    assert_int_equal(el_sdp_write(s, out, (size_t)n + 1, err, sizeof err), n);
    /* no line injection through caller-built fields */
    strcpy(s->media[0].mid, "0\r\na=setup:passive");
    assert_int_equal(el_sdp_write(s, out, sizeof out, err, sizeof err), EL_ERR_INVALID);
    strcpy(s->media[0].mid, "0");
    strcpy(s->candidates[0].address, "10.0.0.1 typ relay");
    assert_int_equal(el_sdp_write(s, out, sizeof out, err, sizeof err), EL_ERR_INVALID);
    strcpy(s->candidates[0].address, "10.0.0.1");
    strcpy(s->media[0].fmt, "webrtc-datachannel ");
    assert_int_equal(el_sdp_write(s, out, sizeof out, err, sizeof err), EL_ERR_INVALID);
    strcpy(s->media[0].fmt, "webrtc-datachannel");
    s->media[0].fingerprints[0].len = 31;
    assert_int_equal(el_sdp_write(s, out, sizeof out, err, sizeof err), EL_ERR_INVALID);
    s->media[0].fingerprints[0].len = 32;
    s->media[0].cand_count = 2;
    assert_int_equal(el_sdp_write(s, out, sizeof out, err, sizeof err), EL_ERR_INVALID);
    free(s);
    free(text);
}

/* Session-level values apply to sections without their own; media-level
 * values override them. */
static void test_levels(void **state)
{
    (void)state;
    const char *text =
        "v=0\n"
        "o=- 1 1 IN IP4 0.0.0.0\n"
        "s=-\n"
        "t=0 0\n"
        "a=ice-lite\n"
        "a=ice-ufrag:SESS\n"
        "a=ice-pwd:sessionpasswordsession\n"
        "a=ice-options:ice2\n"
        "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33\n"
        "a=fingerprint:SHA-256 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n"
        "a=setup:passive\n"
        "a=end-of-candidates\n"
        "a=group:BUNDLE d\n"
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\n"
        "c=IN IP4 0.0.0.0\n"
        "a=mid:d\n"
        "a=ice-options:trickle\n"
        "m=application 9 TCP/DTLS/SCTP webrtc-datachannel\n"
        "c=IN IP6 ::\n"
        "a=mid:e\n"
        "a=ice-ufrag:MEDIA\n"
        "a=fingerprint:sha-512 "
        "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
        "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\n"
        "a=setup:actpass\n";
    el_sdp *s = new_sdp();
    expect_ok(text, strlen(text), s);
    assert_true(s->ice_lite);
    assert_true(s->end_of_candidates);
    assert_string_equal(s->ice_ufrag, "SESS");
    assert_int_equal(s->nfingerprints, 2);
    assert_int_equal(s->fingerprints[0].hash, EL_SDP_HASH_SHA1);
    assert_int_equal(s->fingerprints[1].hash, EL_SDP_HASH_SHA256);
    assert_int_equal(s->fingerprints[1].digest[10], 0xaa);
    const el_sdp_media *d = &s->media[0], *e = &s->media[1];
    assert_int_equal(s->dc, 0);
    assert_string_equal(d->ice_ufrag, "SESS");
    assert_string_equal(d->ice_pwd, "sessionpasswordsession");
    assert_true(d->ice_trickle);
    assert_true(d->ice_ice2);
    assert_int_equal(d->nfingerprints, 2);
    assert_int_equal(d->setup, EL_SDP_SETUP_PASSIVE);
    assert_false(d->end_of_candidates);
    assert_int_equal(d->sctp_port, 0);
    assert_false(d->has_max_message_size);
    assert_string_equal(e->proto, "TCP/DTLS/SCTP");
    assert_string_equal(e->ice_ufrag, "MEDIA");
    assert_string_equal(e->ice_pwd, "sessionpasswordsession");
    assert_int_equal(e->nfingerprints, 1);
    assert_int_equal(e->fingerprints[0].hash, EL_SDP_HASH_SHA512);
    assert_int_equal(e->setup, EL_SDP_SETUP_ACTPASS);
    assert_false(e->ice_trickle);
    roundtrip(s, NULL);
    free(s);

    /* the data section may be the TCP one; a port-0 bundle-only one counts */
    const char *tcp_only =
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=application 0 TCP/DTLS/SCTP webrtc-datachannel\r\na=bundle-only\r\na=mid:x\r\n"
        "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
        "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n";
    s = new_sdp();
    expect_ok(tcp_only, strlen(tcp_only), s);
    assert_true(s->media[0].bundle_only);
    assert_false(s->has_bundle);
    roundtrip(s, NULL);
    free(s);
}

/* Unknown attributes and lines we do not need are ignored. */
static void test_ignored(void **state)
{
    (void)state;
    size_t len;
    char *text = load("chromium-offer.sdp", &len);
    char *t1 = replace(text, "a=mid:0\r\n",
                       "a=mid:0\r\na=x-google-flag:conference\r\na=sctpmap:5000 webrtc-datachannel 1024\r\n"
                       "a=rtcp:9 IN IP4 0.0.0.0\r\na=foo\r\nb=AS:30\r\ni=info\r\n");
    char *t2 = replace(t1, "s=-\r\n", "s=-\r\ni=session info\r\nu=http://x/\r\ne=a@b.c\r\n"
                                      "p=+1 555\r\nb=CT:100\r\n");
    char *t3 = replace(t2, "t=0 0\r\n", "t=0 0\r\nr=604800 3600 0\r\nz=0 0\r\nk=prompt\r\n"
                                        "a=group:LS 0\r\na=recvonly\r\n");
    el_sdp *a = new_sdp(), *b = new_sdp();
    expect_ok(text, len, a);
    expect_ok(t3, strlen(t3), b);
    assert_true(el_sdp_equal(a, b));
    free(a);
    free(b);
    free(t1);
    free(t2);
    free(t3);
    free(text);
}

/* ---- candidates --------------------------------------------------------------- */

static void test_candidate_parse(void **state)
{
    (void)state;
    el_sdp_candidate c;
    char err[256] = "", out[EL_SDP_CANDIDATE_STR_MAX];
    const char *s;

    /* trickled form, Chromium */
    s = "candidate:3634792132 1 udp 2113937151 10.77.1.1 39472 typ host generation 0 ufrag TooF network-cost 999";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_string_equal(c.address, "10.77.1.1");
    assert_int_equal(c.port, 39472);
    assert_string_equal(c.ufrag, "TooF");
    assert_int_equal(el_sdp_candidate_write(&c, out, sizeof out),
                     (int)strlen("candidate:3634792132 1 udp 2113937151 10.77.1.1 39472 typ host ufrag TooF"));
    assert_string_equal(out, "candidate:3634792132 1 udp 2113937151 10.77.1.1 39472 typ host ufrag TooF");

    /* SDP line form, libnice style (upper-case transport), with CRLF */
    s = "a=candidate:1 1 UDP 2015363583 10.77.1.1 57321 typ host\r\n";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_int_equal(c.transport, EL_SDP_TRANSPORT_UDP);
    assert_int_equal(c.priority, 2015363583u);
    el_sdp_candidate_write(&c, out, sizeof out);
    assert_string_equal(out, "candidate:1 1 udp 2015363583 10.77.1.1 57321 typ host");

    /* IPv6 */
    s = "candidate:842163049 1 udp 2122262783 2001:db8::7 51234 typ host generation 0 network-id 2";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_int_equal(c.addr_kind, EL_SDP_ADDR_IP6);
    assert_string_equal(c.address, "2001:db8::7");
    s = "candidate:1 1 udp 1 ::ffff:10.0.0.1 1 typ host";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_int_equal(c.addr_kind, EL_SDP_ADDR_IP6);

    /* mDNS (Chromium's default), and a plain DNS name */
    s = "candidate:2559393951 1 udp 2113937151 065fbd3e-da58-4be5-90b8-ec93f77bc781.local 36840 typ host generation 0 network-cost 999";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_int_equal(c.addr_kind, EL_SDP_ADDR_MDNS);
    s = "candidate:1 1 udp 1 turn.example.org 3478 typ relay raddr 0.0.0.0 rport 0";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_int_equal(c.addr_kind, EL_SDP_ADDR_FQDN);
    assert_int_equal(c.type, EL_SDP_CAND_RELAY);
    assert_true(c.has_raddr);
    assert_int_equal(c.raddr_kind, EL_SDP_ADDR_IP4);
    assert_true(c.has_rport);
    assert_int_equal(c.rport, 0);

    /* srflx, tcp, prflx */
    s = "candidate:842163049 1 udp 1677729535 203.0.113.7 40000 typ srflx raddr 10.77.1.1 rport 39472 generation 0";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_int_equal(c.type, EL_SDP_CAND_SRFLX);
    assert_string_equal(c.raddr, "10.77.1.1");
    assert_int_equal(c.rport, 39472);
    el_sdp_candidate_write(&c, out, sizeof out);
    assert_string_equal(out, "candidate:842163049 1 udp 1677729535 203.0.113.7 40000 typ srflx raddr 10.77.1.1 rport 39472");
    s = "candidate:1 1 tcp 1518280447 10.77.1.1 9 typ host tcptype active generation 0";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_int_equal(c.transport, EL_SDP_TRANSPORT_TCP);
    assert_int_equal(c.tcptype, EL_SDP_TCPTYPE_ACTIVE);
    el_sdp_candidate_write(&c, out, sizeof out);
    assert_string_equal(out, "candidate:1 1 tcp 1518280447 10.77.1.1 9 typ host tcptype active");
    s = "candidate:x+/ 256 UDP 4294967295 10.0.0.1 65535 typ prflx";
    assert_int_equal(el_sdp_candidate_parse(s, strlen(s), &c, err, sizeof err), EL_OK);
    assert_int_equal(c.type, EL_SDP_CAND_PRFLX);
    assert_int_equal(c.component, 256);
    assert_int_equal(c.priority, 4294967295u);

    /* write then parse reproduces the candidate */
    el_sdp_candidate back;
    int n = el_sdp_candidate_write(&c, out, sizeof out);
    assert_true(n > 0);
    assert_int_equal(el_sdp_candidate_parse(out, (size_t)n, &back, err, sizeof err), EL_OK);
    assert_memory_equal(&c, &back, sizeof c);
    assert_int_equal(el_sdp_candidate_write(&c, out, (size_t)n), EL_ERR_TOO_LARGE);
    c.component = 0;
    assert_int_equal(el_sdp_candidate_write(&c, out, sizeof out), EL_ERR_INVALID);
}

static void test_candidate_bad(void **state)
{
    (void)state;
    static const struct {
        const char *s, *want;
    } bad[] = {
        {"", "candidate: empty"},
        {"a=", "candidate: empty"},
        {"candidat:1 1 udp 1 10.0.0.1 1 typ host", "does not start with 'candidate:'"},
        {"candidate:", "candidate: missing foundation"},
        {"candidate:1 1 udp 2113937151 10.0.0.1", "candidate: missing port"},
        {"candidate:1 1 udp 2113937151 10.0.0.1 5000", "candidate: missing 'typ'"},
        {"candidate:1 1 udp 2113937151 10.0.0.1 5000 typ", "candidate: missing type"},
        {"candidate:1 1 udp 2113937151 10.0.0.1 70000 typ host", "candidate: bad port '70000'"},
        {"candidate:1 1 udp 2113937151 10.0.0.1 -1 typ host", "candidate: bad port '-1'"},
        {"candidate:1 1 udp 2113937151 10.0.0.1 5x typ host", "candidate: bad port '5x'"},
        {"candidate:1 1 udp 2113937151 10.0.0.1 5000 typ foo", "candidate: unknown type 'foo'"},
        {"candidate:1 1 udp 2113937151 10.0.0.1 5000 type host", "candidate: expected 'typ'"},
        {"candidate:1 0 udp 2113937151 10.0.0.1 5000 typ host", "candidate: bad component '0'"},
        {"candidate:1 257 udp 2113937151 10.0.0.1 5000 typ host", "candidate: bad component"},
        {"candidate:1 1 sctp 2113937151 10.0.0.1 5000 typ host", "unsupported transport 'sctp'"},
        {"candidate:1 1 udp 4294967296 10.0.0.1 5000 typ host", "candidate: bad priority"},
        {"candidate:1 1 udp 2113937151 10.0.0.256 5000 typ host", "candidate: bad address '10.0.0.256'"},
        {"candidate:1 1 udp 2113937151 10.0.0 5000 typ host", "candidate: bad address"},
        {"candidate:1 1 udp 2113937151 fe80::zz 5000 typ host", "candidate: bad address 'fe80::zz'"},
        {"candidate:1 1 udp 2113937151 fe80::1%eth0 5000 typ host", "candidate: bad address"},
        {"candidate:1 1 udp 2113937151 -bad.local 5000 typ host", "candidate: bad address"},
        {"candidate:1 1 udp 2113937151 a..local 5000 typ host", "candidate: bad address"},
        {"candidate:1 1 udp 2113937151 host_name 5000 typ host", "candidate: bad address"},
        {"candidate:1 1 udp 2113937151 10.0.0.1 5000 typ host generation", "extension 'generation' has no value"},
        {"candidate:1 1 udp 1 10.0.0.1 1 typ srflx raddr 1.2.3 rport 1", "candidate: bad raddr"},
        {"candidate:1 1 udp 1 10.0.0.1 1 typ srflx raddr 1.2.3.4 rport 65536", "candidate: bad rport"},
        {"candidate:1 1 udp 1 10.0.0.1 1 typ srflx raddr 1.2.3.4 raddr 1.2.3.4", "duplicate raddr"},
        {"candidate:1 1 tcp 1 10.0.0.1 1 typ host tcptype foo", "candidate: bad tcptype"},
        {"candidate:1 1 udp 1 10.0.0.1 1 typ host ufrag a=b", "candidate: bad ufrag"},
        {"candidate:123456789012345678901234567890123 1 udp 1 10.0.0.1 1 typ host", "bad foundation"},
        {"candidate:1 1 udp 1 10.0.0.1 1 typ host\r\nx", "control character 0x0d"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        el_sdp_candidate c;
        char err[256] = "";
        size_t len = strlen(bad[i].s);
        char *copy = malloc(len + 1);
        assert_non_null(copy);
        memcpy(copy, bad[i].s, len);
        int rc = el_sdp_candidate_parse(copy, len, &c, err, sizeof err);
        free(copy);
        if (rc != EL_ERR_INVALID || !strstr(err, bad[i].want))
            fail_msg("\"%s\": expected \"%s\", got %d \"%s\"", bad[i].s, bad[i].want, rc, err);
    }
}

/* ---- fingerprints -------------------------------------------------------------- */

static void test_fingerprint(void **state)
{
    (void)state;
    el_sdp_fingerprint fp;
    char err[256] = "", out[EL_SDP_FINGERPRINT_STR_MAX];
    const char *s = "sha-256 01:07:da:30:0f:8c:4b:1c:43:be:ec:9e:cd:85:fb:26:51:8a:7b:a0:3b:44:5c:e4:d0:f7:cb:96:5b:20:a1:62";
    assert_int_equal(el_sdp_fingerprint_parse(s, strlen(s), &fp, err, sizeof err), EL_OK);
    assert_fp(&fp, "01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0:3B:44:5C:E4:D0:F7:CB:96:5B:20:A1:62");
    int n = el_sdp_fingerprint_write(&fp, out, sizeof out);
    assert_int_equal(n, 7 + 1 + 95);
    assert_string_equal(out, "sha-256 01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0:3B:44:5C:E4:D0:F7:CB:96:5B:20:A1:62");
    assert_int_equal(el_sdp_fingerprint_write(&fp, out, (size_t)n), EL_ERR_TOO_LARGE);
    el_sdp_fingerprint back;
    assert_int_equal(el_sdp_fingerprint_parse(out, (size_t)n, &back, err, sizeof err), EL_OK);
    assert_memory_equal(&fp, &back, sizeof fp);

    /* every supported hash, in upper case too, round trips */
    static const struct {
        const char *name;
        size_t len;
    } hs[] = {{"SHA-1", 20}, {"sha-224", 28}, {"Sha-256", 32}, {"sha-384", 48}, {"sha-512", 64}};
    for (size_t i = 0; i < 5; i++) {
        char text[256];
        int k = snprintf(text, sizeof text, "%s ", hs[i].name);
        for (size_t j = 0; j < hs[i].len; j++)
            k += snprintf(text + k, sizeof text - (size_t)k, "%s%02X", j ? ":" : "", (unsigned)(j * 37 & 255));
        assert_int_equal(el_sdp_fingerprint_parse(text, (size_t)k, &fp, err, sizeof err), EL_OK);
        assert_int_equal(fp.len, hs[i].len);
        assert_int_equal(el_sdp_hash_len(fp.hash), hs[i].len);
        n = el_sdp_fingerprint_write(&fp, out, sizeof out);
        assert_true(n > 0);
        assert_int_equal(el_sdp_fingerprint_parse(out, (size_t)n, &back, err, sizeof err), EL_OK);
        assert_memory_equal(&fp, &back, sizeof fp);
    }

    static const struct {
        const char *s, *want;
    } bad[] = {
        {"", "missing hash name"},
        {"md5 01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10", "fingerprint: unsupported hash 'md5'"},
        {"md2 01:02", "unsupported hash 'md2'"},
        {"sha-257 01:02", "unsupported hash 'sha-257'"},
        {"sha-256", "missing digest"},
        {"sha-256 01:07:DZ:30", "bad hex"},
        {"sha-256 1:07", "bad hex"},
        {"sha-256 01:07:", "bad hex"},
        {"sha-256 0107", "bad hex"},
        {"sha-256 01::07", "bad hex"},
        {"sha-256 01:07", "sha-256 digest has 2 bytes, expected 32"},
        {"sha-1 01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0:3B", "has 21 bytes, expected 20"},
        {"sha-256 01:07 02", "text after the digest"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(el_sdp_fingerprint_parse(bad[i].s, strlen(bad[i].s), &fp, err, sizeof err),
                         EL_ERR_INVALID);
        if (!strstr(err, bad[i].want))
            fail_msg("\"%s\": expected \"%s\", got \"%s\"", bad[i].s, bad[i].want, err);
    }
    /* a 65-byte digest stops at the buffer */
    char big[400];
    int k = snprintf(big, sizeof big, "sha-512 ");
    for (int j = 0; j < 65; j++)
        k += snprintf(big + k, sizeof big - (size_t)k, "%sAB", j ? ":" : "");
    assert_int_equal(el_sdp_fingerprint_parse(big, (size_t)k, &fp, err, sizeof err), EL_ERR_INVALID);
    assert_non_null(strstr(err, "longer than 64 bytes"));
    fp.hash = EL_SDP_HASH_NONE;
    assert_int_equal(el_sdp_fingerprint_write(&fp, out, sizeof out), EL_ERR_INVALID);
}

/* ---- malformed input ---------------------------------------------------------- */

/* Mutations of chromium-offer.sdp, whose lines are:
 *  1 v=  2 o=  3 s=  4 t=  5 group  6 extmap-allow-mixed  7 msid-semantic
 *  8 m=  9 c=  10 candidate  11 ice-ufrag  12 ice-pwd  13 ice-options
 *  14 fingerprint  15 setup  16 mid  17 sctp-port  18 max-message-size */
static const struct {
    const char *from, *to;
    int code;
    const char *want;
} mutations[] = {
    {"v=0\r\n", "", EL_ERR_INVALID, "line 1: missing v= line"},
    {"v=0\r\n", "v=1\r\n", EL_ERR_INVALID, "line 1: unsupported SDP version '1'"},
    {"v=0\r\n", "v=0\r\nv=0\r\n", EL_ERR_INVALID, "line 2: missing o= line"},
    {"s=-\r\n", "", EL_ERR_INVALID, "line 3: missing s= line"},
    {"t=0 0\r\n", "", EL_ERR_INVALID, "m= line before the t= line"},
    {"o=- 8532572741224564219 2", "o=- 85325727412245642199999 2", EL_ERR_INVALID,
     "line 2: bad o= sess-id"},
    {"o=- 8532572741224564219 2 IN IP4 127.0.0.1", "o=- 1 2 IN", EL_ERR_INVALID,
     "line 2: o= line needs 6 fields"},
    {"m=application 32830 UDP/DTLS/SCTP webrtc-datachannel", "m=application", EL_ERR_INVALID,
     "line 8: m= line has no port"},
    {"m=application 32830 UDP/DTLS/SCTP webrtc-datachannel", "m=application 32830",
     EL_ERR_INVALID, "line 8: m= line has no proto"},
    {"m=application 32830 UDP/DTLS/SCTP webrtc-datachannel", "m=application 32830 UDP/DTLS/SCTP",
     EL_ERR_INVALID, "line 8: m= line has no format"},
    {"m=application 32830", "m=application 65536", EL_ERR_INVALID,
     "line 8: m= line has a bad port '65536'"},
    {"m=application 32830", "m=application 9/2", EL_ERR_INVALID, "port count is not supported"},
    {"m=application 32830", "m=application 0", EL_ERR_INVALID,
     "no m=application section with UDP/DTLS/SCTP webrtc-datachannel"},
    {"webrtc-datachannel", "webrtc-datachannel2", EL_ERR_INVALID,
     "no m=application section with UDP/DTLS/SCTP webrtc-datachannel"},
    {"UDP/DTLS/SCTP", "DTLS/SCTP", EL_ERR_INVALID,
     "no m=application section with UDP/DTLS/SCTP webrtc-datachannel"},
    {"c=IN IP4 10.77.1.1", "c=IN IP9 10.77.1.1", EL_ERR_INVALID, "line 9: bad c= line"},
    {"a=ice-ufrag:u9uR\r\n", "", EL_ERR_INVALID, "missing a=ice-ufrag"},
    {"a=ice-pwd:sUUvN7ooBkhOAl5mwNxbI8sB\r\n", "", EL_ERR_INVALID, "missing a=ice-pwd"},
    {"a=ice-ufrag:u9uR\r\n", "a=ice-ufrag:u9uR\r\na=ice-ufrag:u9uR\r\n", EL_ERR_INVALID,
     "line 12: duplicate a=ice-ufrag"},
    {"a=ice-pwd:sUUvN7ooBkhOAl5mwNxbI8sB", "a=ice-pwd:sUUvN7ooBkhOAl5mwNxbI", EL_ERR_INVALID,
     "line 12: a=ice-pwd must be 22..256 ice-chars"},
    {"a=ice-ufrag:u9uR", "a=ice-ufrag:u9u", EL_ERR_INVALID, "a=ice-ufrag must be 4..256"},
    {"a=ice-ufrag:u9uR", "a=ice-ufrag:u9u=R", EL_ERR_INVALID, "a=ice-ufrag must be 4..256"},
    {"a=fingerprint:sha-256 01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0:3B:44:"
     "5C:E4:D0:F7:CB:96:5B:20:A1:62\r\n",
     "", EL_ERR_INVALID, "missing a=fingerprint"},
    {"sha-256 01:07:DA", "sha-256 01:07:DZ", EL_ERR_INVALID, "line 14: fingerprint: bad hex"},
    {"a=fingerprint:sha-256 01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0:3B:44:"
     "5C:E4:D0:F7:CB:96:5B:20:A1:62",
     "a=fingerprint:md5 01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26", EL_ERR_INVALID,
     "line 14: fingerprint: unsupported hash 'md5'"},
    {"a=fingerprint:sha-256 01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0:3B:44:"
     "5C:E4:D0:F7:CB:96:5B:20:A1:62",
     "a=fingerprint:sha-1 01:07:DA:30:0F:8C:4B:1C:43:BE:EC:9E:CD:85:FB:26:51:8A:7B:A0",
     EL_ERR_INVALID, "no sha-256 a=fingerprint"},
    {"a=setup:actpass", "a=setup:holdconn", EL_ERR_INVALID, "line 15: unsupported a=setup 'holdconn'"},
    {"a=setup:actpass\r\n", "a=setup:actpass\r\na=setup:active\r\n", EL_ERR_INVALID,
     "line 16: duplicate a=setup"},
    {"a=mid:0\r\n", "", EL_ERR_INVALID, "m= section 0 has no a=mid"},
    {"a=mid:0", "a=mid:0 1", EL_ERR_INVALID, "line 16: bad a=mid '0 1'"},
    {"a=group:BUNDLE 0", "a=group:BUNDLE 0 1", EL_ERR_INVALID,
     "a=group:BUNDLE names unknown mid '1'"},
    {"a=group:BUNDLE 0", "a=group:BUNDLE 0 0", EL_ERR_INVALID, "names mid '0' twice"},
    {"a=group:BUNDLE 0\r\n", "a=group:BUNDLE 0\r\na=group:BUNDLE 0\r\n", EL_ERR_INVALID,
     "more than one a=group:BUNDLE"},
    {"a=sctp-port:5000", "a=sctp-port:0", EL_ERR_INVALID, "line 17: bad a=sctp-port '0'"},
    {"a=sctp-port:5000", "a=sctp-port:65536", EL_ERR_INVALID, "bad a=sctp-port"},
    {"a=max-message-size:262144", "a=max-message-size:-1", EL_ERR_INVALID,
     "line 18: bad a=max-message-size '-1'"},
    {"a=max-message-size:262144", "a=max-message-size:99999999999999999999", EL_ERR_INVALID,
     "bad a=max-message-size"},
    {"a=sctp-port:5000\r\n", "a=sctp-port:5000\r\na=sctp-port:5000\r\n", EL_ERR_INVALID,
     "duplicate a=sctp-port"},
    {"a=extmap-allow-mixed", "a=candidate:1 1 udp 1 10.0.0.1 1 typ host", EL_ERR_INVALID,
     "line 6: a=candidate is only allowed in an m= section"},
    {"a=extmap-allow-mixed", "a=mid:0", EL_ERR_INVALID, "a=mid is only allowed in an m= section"},
    {"a=mid:0\r\n", "a=mid:0\r\na=ice-lite\r\n", EL_ERR_INVALID,
     "a=ice-lite is only allowed at session level"},
    {"a=mid:0\r\n", "a=mid:0\r\na=sendrecv\r\na=inactive\r\n", EL_ERR_INVALID,
     "line 18: more than one direction attribute"},
    {"a=extmap-allow-mixed", "x=foo", EL_ERR_INVALID, "line 6: unknown line type 'x='"},
    {"a=extmap-allow-mixed", "A=foo", EL_ERR_INVALID, "line 6: not of the form <type>=<value>"},
    {"a=extmap-allow-mixed", "a =foo", EL_ERR_INVALID, "not of the form"},
    {"a=extmap-allow-mixed", "a=", EL_ERR_INVALID, "line 6: bad attribute name ''"},
    {"a=extmap-allow-mixed", "a=ext map", EL_ERR_INVALID, "bad attribute name 'ext map'"},
    {"a=ice-options:trickle", "a=ice-options:", EL_ERR_INVALID, "empty a=ice-options"},
    {"a=extmap-allow-mixed\r\n", "a=extmap-allow-mixed\r\n\r\n", EL_ERR_INVALID,
     "line 7: empty line"},
    {"s=-", "s=\t-", EL_ERR_INVALID, "line 3: control character 0x09"},
    {"s=-", "s=\r-", EL_ERR_INVALID, "line 3: control character 0x0d"},
    {"s=-", "s=\x7f", EL_ERR_INVALID, "control character 0x7f"},
    {"a=mid:0\r\n", "a=mid:0\r\nt=0 0\r\n", EL_ERR_INVALID, "line 17: t= line inside"},
    {"a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830 typ host",
     "a=candidate:1519621329 1 udp 2113937151 10.77.1.1 99999 typ host", EL_ERR_INVALID,
     "line 10: candidate: bad port '99999'"},
    {"a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830 typ host",
     "a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830 typ hots", EL_ERR_INVALID,
     "line 10: candidate: unknown type 'hots'"},
    {"a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830 typ host generation 0 network-cost 999",
     "a=candidate:1519621329 1 udp 2113937151 10.77.1.1", EL_ERR_INVALID,
     "line 10: candidate: missing port"},
    {"a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830",
     "a=candidate:1519621329 1 udp 2113937151 2001:db8::zz 32830", EL_ERR_INVALID,
     "line 10: candidate: bad address '2001:db8::zz'"},
    {"a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830",
     "a=candidate:1519621329 1 udp 2113937151 0123-.local 32830", EL_ERR_INVALID,
     "candidate: bad address '0123-.local'"},
};

static void test_malformed(void **state)
{
    (void)state;
    size_t len;
    char *text = load("chromium-offer.sdp", &len);
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++) {
        char *m = replace(text, mutations[i].from, mutations[i].to);
        el_sdp *s = new_sdp();
        char err[256] = "";
        int rc = parse_exact(m, strlen(m), s, err, sizeof err);
        if (rc != mutations[i].code || !strstr(err, mutations[i].want))
            fail_msg("mutation %zu (\"%s\"): expected %d \"%s\", got %d \"%s\"", i,
                     mutations[i].to, mutations[i].code, mutations[i].want, rc, err);
        free(s);
        free(m);
    }
    free(text);
}

/* IPv6 and mDNS candidates inside an SDP are accepted. */
static void test_candidates_in_sdp(void **state)
{
    (void)state;
    size_t len;
    char *text = load("chromium-offer.sdp", &len);
    char *m = replace(text, "a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830 typ host generation 0 network-cost 999\r\n",
                      "a=candidate:1519621329 1 udp 2113937151 10.77.1.1 32830 typ host generation 0 network-cost 999\r\n"
                      "a=candidate:2 1 udp 2122262783 2001:db8:77::1 32831 typ host generation 0 network-id 2\r\n"
                      "a=candidate:3 1 udp 2113937151 3c1ab0b4-8b8a-4b09-bb67-bfcc3f1ee5a3.local 32832 typ host generation 0\r\n"
                      "a=candidate:4 1 udp 1677729535 203.0.113.9 32833 typ srflx raddr 0.0.0.0 rport 0 generation 0\r\n"
                      "a=candidate:5 1 tcp 1518214911 10.77.1.1 9 typ host tcptype active generation 0\r\n"
                      "a=end-of-candidates\r\n");
    el_sdp *s = new_sdp();
    expect_ok(m, strlen(m), s);
    assert_int_equal(s->ncandidates, 5);
    assert_int_equal(s->media[0].cand_count, 5);
    assert_true(s->media[0].end_of_candidates);
    assert_int_equal(s->candidates[1].addr_kind, EL_SDP_ADDR_IP6);
    assert_string_equal(s->candidates[1].address, "2001:db8:77::1");
    assert_int_equal(s->candidates[2].addr_kind, EL_SDP_ADDR_MDNS);
    assert_int_equal(s->candidates[3].type, EL_SDP_CAND_SRFLX);
    assert_int_equal(s->candidates[4].tcptype, EL_SDP_TCPTYPE_ACTIVE);
    roundtrip(s, NULL);
    free(s);
    free(m);
    free(text);
}

static void test_limits(void **state)
{
    (void)state;
    expect_err("", EL_ERR_INVALID, "empty sdp");
    expect_err("\n", EL_ERR_INVALID, "missing v= line");
    expect_err("hello world", EL_ERR_INVALID, "line 1: not of the form <type>=<value>");
    expect_err("v=0\r\n", EL_ERR_INVALID, "missing o= line");
    expect_err_n("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=\0\r\n", 34, EL_ERR_INVALID,
                 "line 3: control character 0x00");

    /* garbage bytes */
    uint32_t x = 0x9e3779b9u;
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        junk[i] = (char)(x >> 24);
    }
    el_sdp *s = new_sdp();
    char err[256];
    assert_int_equal(parse_exact(junk, sizeof junk, s, err, sizeof err), EL_ERR_INVALID);
    assert_non_null(strstr(err, "line 1: "));

    /* > 256 KiB */
    size_t big = EL_SDP_MAX_SIZE + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, 'a', big);
    expect_err_n(huge, big, EL_ERR_TOO_LARGE, "sdp larger than 256 KiB");
    free(huge);

    /* too many lines */
    size_t len;
    char *text = load("chromium-offer.sdp", &len);
    size_t cap = len + 5 * (EL_SDP_MAX_LINES + 1);
    char *many = malloc(cap);
    assert_non_null(many);
    size_t n = 0;
    const char *msec = strstr(text, "m=");
    memcpy(many, text, (size_t)(msec - text));
    n = (size_t)(msec - text);
    for (int i = 0; i < EL_SDP_MAX_LINES; i++)
        memcpy(many + n, "b=x\r\n", 5), n += 5;
    expect_err_n(many, n, EL_ERR_QUOTA, "more than 8192 lines");

    /* too many candidates: 128 parse, 129 do not */
    const char *after = strstr(text, "a=ice-ufrag");
    n = (size_t)(after - text);
    memcpy(many, text, n);
    for (int i = 0; i < EL_SDP_MAX_CANDIDATES - 1; i++) /* the fixture has one */
        n += (size_t)sprintf(many + n, "a=candidate:%d 1 udp 2113937151 10.77.1.1 %d typ host\r\n",
                             i, 1000 + i);
    size_t keep = n;
    n += (size_t)sprintf(many + n, "%s", after);
    expect_ok(many, n, s);
    assert_int_equal(s->ncandidates, EL_SDP_MAX_CANDIDATES);
    roundtrip(s, NULL);
    n = keep;
    n += (size_t)sprintf(many + n, "a=candidate:x 1 udp 2113937151 10.77.1.1 2000 typ host\r\n%s", after);
    expect_err_n(many, n, EL_ERR_QUOTA, "too many candidates (max 128)");

    /* too many m= sections: 32 parse, 33 do not */
    n = (size_t)(msec - text);
    memcpy(many, text, n);
    for (int i = 0; i < EL_SDP_MAX_MEDIA - 1; i++)
        n += (size_t)sprintf(many + n, "m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:a%d\r\n", i);
    keep = n;
    n += (size_t)sprintf(many + n, "%s", msec);
    expect_ok(many, n, s);
    assert_int_equal(s->nmedia, EL_SDP_MAX_MEDIA);
    assert_int_equal(s->dc, EL_SDP_MAX_MEDIA - 1);
    n = keep;
    n += (size_t)sprintf(many + n, "m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:z\r\n%s", msec);
    expect_err_n(many, n, EL_ERR_QUOTA, "too many m= sections (max 32)");

    /* too many fingerprints at one level */
    const char *fpl = strstr(text, "a=fingerprint");
    const char *fpe = strstr(fpl, "\r\n") + 2;
    n = (size_t)(fpe - text);
    memcpy(many, text, n);
    for (int i = 0; i < EL_SDP_MAX_FINGERPRINTS; i++)
        memcpy(many + n, fpl, (size_t)(fpe - fpl)), n += (size_t)(fpe - fpl);
    n += (size_t)sprintf(many + n, "%s", fpe);
    expect_err_n(many, n, EL_ERR_QUOTA, "too many a=fingerprint (max 4)");

    free(many);
    free(text);
    free(s);
}

/* Every prefix of a valid SDP is handled (no crash, no overread); the ones
 * that cut a needed line fail with a message. */
static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    char *text = load("chromium-offer.sdp", &len);
    el_sdp *s = new_sdp();
    /* a=sctp-port and a=max-message-size (the last two lines) are optional:
     * a prefix may succeed only once the a=mid line is complete */
    size_t need = (size_t)(strstr(text, "a=mid:0\r\n") - text) + 7;
    for (size_t cut = 0; cut < len; cut++) {
        char err[256] = "";
        int rc = parse_exact(text, cut, s, err, sizeof err);
        if (rc == EL_OK)
            assert_true(cut >= need);
        else
            assert_true(err[0] != '\0');
    }
    /* specific cuts */
    const char *fp = strstr(text, "sha-256 01:07:DA") + 8;
    size_t cut = (size_t)(fp - text) + 8; /* "01:07:DA" */
    expect_err_n(text, cut, EL_ERR_INVALID, "sha-256 digest has 3 bytes, expected 32");
    cut = (size_t)(fp - text) + 7; /* "01:07:D" */
    expect_err_n(text, cut, EL_ERR_INVALID, "fingerprint: bad hex");
    const char *m = strstr(text, "m=applica");
    expect_err_n(text, (size_t)(m - text) + 9, EL_ERR_INVALID, "line 8: m= line has no port");
    const char *pwd = strstr(text, "a=ice-pwd:");
    expect_err_n(text, (size_t)(pwd - text) + 15, EL_ERR_INVALID, "a=ice-pwd must be 22..256");
    free(s);
    free(text);
}

/* The worst case el_sdp_parse accepts still writes within EL_SDP_MAX_SIZE. */
static void test_write_bound(void **state)
{
    (void)state;
    el_sdp *s = new_sdp();
    char long_host[254], long_ufrag[257], long_pwd[257], long_mid[33], long_found[33];
    for (int i = 0; i < 253; i++)
        long_host[i] = (i % 64 == 63) ? '.' : 'h';
    long_host[253] = '\0';
    memset(long_ufrag, 'u', 256), long_ufrag[256] = '\0';
    memset(long_pwd, 'p', 256), long_pwd[256] = '\0';
    memset(long_found, 'f', 32), long_found[32] = '\0';
    s->sess_id = UINT64_MAX;
    s->sess_version = UINT64_MAX;
    strcpy(s->ice_ufrag, long_ufrag);
    strcpy(s->ice_pwd, long_pwd);
    s->ice_trickle = s->ice_ice2 = s->ice_lite = s->end_of_candidates = true;
    s->setup = EL_SDP_SETUP_ACTPASS;
    el_sdp_fingerprint fp = {EL_SDP_HASH_SHA512, 64, {0}};
    s->nfingerprints = EL_SDP_MAX_FINGERPRINTS;
    for (int i = 0; i < EL_SDP_MAX_FINGERPRINTS; i++)
        s->fingerprints[i] = fp;
    s->fingerprints[0].hash = EL_SDP_HASH_SHA256; /* the data section needs one */
    s->fingerprints[0].len = 32;
    s->has_bundle = true;
    s->nmedia = EL_SDP_MAX_MEDIA;
    s->nbundle = EL_SDP_MAX_MEDIA;
    for (int i = 0; i < EL_SDP_MAX_MEDIA; i++) {
        el_sdp_media *m = &s->media[i];
        s->bundle[i] = (uint8_t)i;
        m->type = EL_SDP_MEDIA_OTHER;
        memset(m->media, 'x', EL_SDP_MEDIA_MAX);
        memset(m->proto, 'P', EL_SDP_PROTO_MAX);
        memset(m->fmt, '9', EL_SDP_FMT_MAX);
        snprintf(long_mid, sizeof long_mid, "%032d", i);
        strcpy(m->mid, long_mid);
        m->port = 65535;
        strcpy(m->ice_ufrag, long_ufrag);
        strcpy(m->ice_pwd, long_pwd);
        m->ice_trickle = m->ice_ice2 = true;
        m->nfingerprints = EL_SDP_MAX_FINGERPRINTS;
        memcpy(m->fingerprints, s->fingerprints, sizeof m->fingerprints);
        m->setup = EL_SDP_SETUP_PASSIVE;
        m->direction = EL_SDP_DIR_SENDRECV;
        m->rtcp_mux = m->bundle_only = m->end_of_candidates = true;
        m->sctp_port = 65535;
        m->has_max_message_size = true;
        m->max_message_size = 9999999999999999999ull;
        m->cand_first = (uint16_t)(i * 4);
        m->cand_count = 4;
    }
    memcpy(s->media[0].media, "application", 12);
    strcpy(s->media[0].proto, "UDP/DTLS/SCTP");
    strcpy(s->media[0].fmt, "webrtc-datachannel");
    s->media[0].type = EL_SDP_MEDIA_APPLICATION;
    s->ncandidates = EL_SDP_MAX_CANDIDATES;
    for (int i = 0; i < EL_SDP_MAX_CANDIDATES; i++) {
        el_sdp_candidate *c = &s->candidates[i];
        strcpy(c->foundation, long_found);
        c->component = 256;
        c->transport = EL_SDP_TRANSPORT_TCP;
        c->priority = UINT32_MAX;
        strcpy(c->address, long_host);
        c->addr_kind = EL_SDP_ADDR_FQDN;
        c->port = 65535;
        c->type = EL_SDP_CAND_RELAY;
        c->has_raddr = c->has_rport = true;
        strcpy(c->raddr, long_host);
        c->raddr_kind = EL_SDP_ADDR_FQDN;
        c->rport = 65535;
        c->tcptype = EL_SDP_TCPTYPE_PASSIVE;
        strcpy(c->ufrag, long_ufrag);
    }
    s->dc = 0;
    char *text;
    roundtrip(s, &text);
    assert_true(strlen(text) < EL_SDP_MAX_SIZE);
    char cand[EL_SDP_CANDIDATE_STR_MAX];
    assert_true(el_sdp_candidate_write(&s->candidates[0], cand, sizeof cand) > 0);
    free(text);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captured_values),
        cmocka_unit_test(test_captured_candidates),
        cmocka_unit_test(test_captured_av),
        cmocka_unit_test(test_captured_roundtrip),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_answer_matches_accepted),
        cmocka_unit_test(test_build_offer),
        cmocka_unit_test(test_answer_rejects_av),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_candidate_parse),
        cmocka_unit_test(test_candidate_bad),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_candidates_in_sdp),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_write_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
