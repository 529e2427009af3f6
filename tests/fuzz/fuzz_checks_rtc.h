/* fuzz_checks_rtc.h - the invariants of the src/rtc codec fuzz targets
 * (fuzz_sdp, fuzz_dcep), in the shape of fuzz_checks.h: each
 * el_fuzz_check_*() takes arbitrary bytes and returns NULL when every
 * invariant holds, or a static description of the first violated one. The
 * libFuzzer targets abort() on a non-NULL result; tests/unit/
 * test_fuzz_corpus.c can run the seed corpora through them. Everything is
 * static inline: include this header from one .c file.
 *
 * SDP: el_sdp_parse never crashes and explains every refusal; what it
 * accepts writes, parses back equal (el_sdp_equal) and writes to the same
 * text again; an answer built to it (el_sdp_build_dc) writes and parses
 * back equal with the offer's sections and data-channel index. The same
 * bytes go through the candidate and fingerprint helpers, whose
 * write -> parse must reproduce what they accepted.
 *
 * DCEP: el_dcep_parse never crashes and explains every refusal; what it
 * accepts el_dcep_write reproduces byte for byte (except the reliability
 * field of the reliable types, ignored on receipt and written as 0), which
 * parses back to the same message; a buffer one byte short is refused. */
#ifndef EL_FUZZ_CHECKS_RTC_H
#define EL_FUZZ_CHECKS_RTC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "rtc/dcep.h"
#include "rtc/sdp.h"

/* ---- SDP ------------------------------------------------------------------- */

static inline const char *el_fuzz_check_sdp_candidate(const char *s, size_t n)
{
    el_sdp_candidate c, back;
    char err[256] = "", out[EL_SDP_CANDIDATE_STR_MAX];
    if (el_sdp_candidate_parse(s, n, &c, err, sizeof err) != EL_OK)
        return err[0] ? NULL : "el_sdp_candidate_parse failed without a reason";
    int w = el_sdp_candidate_write(&c, out, sizeof out);
    if (w < 0)
        return "an accepted candidate does not write";
    if (el_sdp_candidate_parse(out, (size_t)w, &back, err, sizeof err) != EL_OK)
        return "a written candidate does not parse";
    if (memcmp(&c, &back, sizeof c) != 0)
        return "candidate write -> parse differs";
    return NULL;
}

static inline const char *el_fuzz_check_sdp_fingerprint(const char *s, size_t n)
{
    el_sdp_fingerprint fp, back;
    char err[256] = "", out[EL_SDP_FINGERPRINT_STR_MAX];
    if (el_sdp_fingerprint_parse(s, n, &fp, err, sizeof err) != EL_OK)
        return err[0] ? NULL : "el_sdp_fingerprint_parse failed without a reason";
    int w = el_sdp_fingerprint_write(&fp, out, sizeof out);
    if (w < 0)
        return "an accepted fingerprint does not write";
    if (el_sdp_fingerprint_parse(out, (size_t)w, &back, err, sizeof err) != EL_OK)
        return "a written fingerprint does not parse";
    if (memcmp(&fp, &back, sizeof fp) != 0)
        return "fingerprint write -> parse differs";
    return NULL;
}

/* An answer to any accepted offer must build, write and parse back. */
static inline const char *el_fuzz_check_sdp_answer(const el_sdp *offer, el_sdp *ans,
                                                   el_sdp *back, char *text, size_t cap)
{
    static const uint8_t digest[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                       12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                       23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    el_sdp_dc_params p;
    char err[256] = "";
    memset(&p, 0, sizeof p);
    el_sdp_fingerprint_sha256(&p.fingerprint, digest);
    p.sess_id = 1;
    p.sess_version = 2;
    p.ice_ufrag = "fuzz";
    p.ice_pwd = "fuzzfuzzfuzzfuzzfuzzfu";
    p.ice_trickle = true;
    p.setup = offer->media[offer->dc].setup == EL_SDP_SETUP_ACTIVE ? EL_SDP_SETUP_PASSIVE
                                                                   : EL_SDP_SETUP_ACTIVE;
    p.offer = offer;
    if (el_sdp_build_dc(ans, &p, err, sizeof err) != EL_OK)
        return "el_sdp_build_dc fails to answer an accepted offer";
    int n = el_sdp_write(ans, text, cap, err, sizeof err);
    if (n < 0)
        return "an answer does not write";
    if (el_sdp_parse(text, (size_t)n, back, err, sizeof err) != EL_OK)
        return "a written answer does not parse";
    if (!el_sdp_equal(ans, back))
        return "answer write -> parse differs";
    if (back->nmedia != offer->nmedia || back->dc != offer->dc)
        return "the answer's sections do not match the offer's";
    for (int i = 0; i < back->nmedia; i++)
        if (strcmp(back->media[i].mid, offer->media[i].mid) != 0 ||
            (i != back->dc && back->media[i].port != 0))
            return "the answer does not mirror the offer's mids or reject the other sections";
    return NULL;
}

static inline const char *el_fuzz_check_sdp(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *r = el_fuzz_check_sdp_candidate(s, size);
    if (!r)
        r = el_fuzz_check_sdp_fingerprint(s, size);
    if (r)
        return r;

    /* el_sdp is ~150 KiB: static (not reentrant; libFuzzer and the corpus
     * test call this from one thread), and far cheaper under ASan than
     * allocating ~1 MiB per input */
    static el_sdp sa, sb, sc;
    static char stext[EL_SDP_MAX_SIZE], stext2[EL_SDP_MAX_SIZE];
    el_sdp *a = &sa, *b = &sb, *c = &sc;
    char *text = stext, *text2 = stext2;
    char err[256] = "";
    if (el_sdp_parse(s, size, a, err, sizeof err) != EL_OK)
        return err[0] ? NULL : "el_sdp_parse failed without a reason";
    if (a->dc < 0 || a->dc >= a->nmedia)
        return "accepted sdp without a data-channel section";
    int n = el_sdp_write(a, text, EL_SDP_MAX_SIZE, err, sizeof err);
    if (n < 0)
        return "an accepted sdp does not write within EL_SDP_MAX_SIZE";
    if (el_sdp_parse(text, (size_t)n, b, err, sizeof err) != EL_OK)
        return "a written sdp does not parse";
    if (!el_sdp_equal(a, b))
        return "parse(write(x)) != x";
    int n2 = el_sdp_write(b, text2, EL_SDP_MAX_SIZE, err, sizeof err);
    if (n2 != n || memcmp(text, text2, (size_t)n) != 0)
        return "writing the re-parsed sdp gives different text";
    return el_fuzz_check_sdp_answer(a, b, c, text2, EL_SDP_MAX_SIZE);
}

/* ---- DCEP ------------------------------------------------------------------ */

static inline bool el_fuzz_dcep_same(const el_dcep_msg *x, const el_dcep_msg *y)
{
    if (x->type != y->type)
        return false;
    if (x->type != EL_DCEP_MSG_OPEN)
        return true;
    const el_dcep_open *a = &x->open, *b = &y->open;
    return a->channel_type == b->channel_type && a->priority == b->priority &&
           a->reliability == b->reliability && a->label_len == b->label_len &&
           a->protocol_len == b->protocol_len &&
           (!a->label_len || memcmp(a->label, b->label, a->label_len) == 0) &&
           (!a->protocol_len || memcmp(a->protocol, b->protocol, a->protocol_len) == 0);
}

static inline const char *el_fuzz_check_dcep(const uint8_t *data, size_t size)
{
    el_dcep_msg m, back;
    char err[256] = "";
    if (el_dcep_parse(data, size, &m, err, sizeof err) != EL_OK)
        return err[0] ? NULL : "el_dcep_parse failed without a reason";
    if (el_dcep_size(&m) != size)
        return "el_dcep_size differs from the parsed length";
    uint8_t *out = malloc(size ? size : 1);
    const char *r = NULL;
    if (!out)
        return NULL;
    int n = el_dcep_write(&m, out, size);
    if (n < 0 || (size_t)n != size) {
        r = "an accepted message does not write to its own length";
        goto out;
    }
    if (m.type == EL_DCEP_MSG_OPEN && el_dcep_is_reliable(m.open.channel_type)) {
        if (out[4] | out[5] | out[6] | out[7]) {
            r = "reliable channel written with a reliability parameter";
            goto out;
        }
        memcpy(out + 4, data + 4, 4); /* compare the rest */
    }
    if (memcmp(out, data, size) != 0) {
        r = "write does not reproduce the accepted bytes";
        goto out;
    }
    if (el_dcep_parse(out, size, &back, err, sizeof err) != EL_OK ||
        !el_fuzz_dcep_same(&m, &back)) {
        r = "write -> parse differs";
        goto out;
    }
    if (el_dcep_write(&m, out, size - 1) != EL_ERR_TOO_LARGE)
        r = "el_dcep_write accepted a buffer one byte short";
out:
    free(out);
    return r;
}

#endif
