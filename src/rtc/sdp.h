/* sdp.h - pure WebRTC SDP codec for data-channel sessions.
 *
 * Parses and writes the session descriptions of RFC 8866 syntax as JSEP
 * (RFC 8829) uses them, with ICE attributes (RFC 8839), SCTP over DTLS
 * (RFC 8841), fingerprints (RFC 8122), BUNDLE (RFC 8843) and trickle
 * (RFC 8840). No I/O, no globals, no allocation except in
 * el_sdp_write_dc(): parse and write can be unit-tested and fuzzed.
 *
 * What is kept. Everything the data-channel stack needs (origin, ICE
 * credentials and options, fingerprints, DTLS role, BUNDLE, mid, SCTP port,
 * max message size, candidates, end-of-candidates) plus, for every other
 * m= section, enough to answer it as rejected (media, proto, fmt list, mid).
 * Every other attribute (rtpmap, extmap, msid, ssrc, extmap-allow-mixed, ...)
 * and the c=, b=, i=, ... lines are checked for basic syntax and ignored.
 *
 * Text accepted. Lines end in CRLF or LF (the last line may lack both;
 * empty lines are allowed only at the end). Line 1 is v=0, then o=, then
 * s=; t= must appear before the first m=. Type letters outside RFC 8866's
 * set, control characters, and any malformed value of an attribute we keep
 * are rejected with a precise message in err ("line 7: m= line has no
 * port"). Limits: EL_SDP_MAX_SIZE bytes, EL_SDP_MAX_LINES lines,
 * EL_SDP_MAX_MEDIA m= sections, EL_SDP_MAX_CANDIDATES candidates in all.
 *
 * Levels. Session-level ice-ufrag, ice-pwd, fingerprint and setup are kept
 * in el_sdp; every m= section then holds its *effective* values: its own
 * when present, else the session's (RFC 8839 §5.4, RFC 8122 §5). ICE
 * options of an m= section are the union of both levels. The writer emits
 * the effective values at media level, so parse(write(x)) == x.
 *
 * Wire format of what we write (CRLF line ends), modelled on Chromium 156:
 *
 *   | line                                              | when                    |
 *   |---------------------------------------------------|-------------------------|
 *   | v=0                                               | always                  |
 *   | o=- <sess-id> <sess-version> IN IP4 127.0.0.1     | always                  |
 *   | s=-                                               | always                  |
 *   | t=0 0                                             | always                  |
 *   | a=group:BUNDLE <mid> ...                          | has_bundle              |
 *   | a=ice-lite                                        | ice_lite                |
 *   | a=ice-ufrag / ice-pwd / ice-options / fingerprint | session-level, if set   |
 *   |   / setup / end-of-candidates                     |                         |
 *   | a=msid-semantic: WMS                              | always                  |
 *   | per m= section:                                   |                         |
 *   | m=<media> <port> <proto> <fmt ...>                | always                  |
 *   | c=IN IP4 0.0.0.0                                  | always                  |
 *   | a=candidate:... (see el_sdp_candidate_write)      | each candidate          |
 *   | a=end-of-candidates                               | end_of_candidates       |
 *   | a=ice-ufrag:<u> / a=ice-pwd:<p>                   | if set                  |
 *   | a=ice-options:trickle ice2                        | if any option           |
 *   | a=fingerprint:<hash> <HEX:HEX:...>                | each fingerprint        |
 *   | a=setup:actpass|active|passive                    | if set                  |
 *   | a=mid:<mid>                                       | always                  |
 *   | a=bundle-only                                     | bundle_only             |
 *   | a=sendrecv|sendonly|recvonly|inactive             | if set                  |
 *   | a=rtcp-mux                                        | rtcp_mux                |
 *   | a=sctp-port:<port>                                | if sctp_port != 0       |
 *   | a=max-message-size:<n>                            | has_max_message_size    |
 *
 * A data-channel answer to an offer with audio/video mirrors every other
 * m= section as rejected (RFC 8843 §7.3.3, JSEP §5.3.1):
 *   m=audio 0 UDP/TLS/RTP/SAVPF 111 63 ...  c=IN IP4 0.0.0.0  a=mid:0  a=inactive
 * and its a=group:BUNDLE lists only the accepted (data-channel) mid. */
#ifndef EL_RTC_SDP_H
#define EL_RTC_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EL_SDP_MAX_SIZE (256 * 1024) /* bytes of SDP text accepted by el_sdp_parse */
#define EL_SDP_MAX_LINES 8192
#define EL_SDP_MAX_MEDIA 32          /* m= sections */
#define EL_SDP_MAX_CANDIDATES 128    /* a=candidate lines, all sections together */
#define EL_SDP_MAX_FINGERPRINTS 4    /* a=fingerprint lines per level */

#define EL_SDP_UFRAG_MAX 256         /* RFC 8839: ice-ufrag 4..256 ice-chars */
#define EL_SDP_UFRAG_MIN 4
#define EL_SDP_PWD_MAX 256           /* RFC 8839: ice-pwd 22..256 ice-chars */
#define EL_SDP_PWD_MIN 22
#define EL_SDP_MID_MAX 32            /* a=mid: 1..32 token chars */
#define EL_SDP_MEDIA_MAX 15          /* "audio", "application", ... */
#define EL_SDP_PROTO_MAX 31          /* "UDP/DTLS/SCTP", "UDP/TLS/RTP/SAVPF", ... */
#define EL_SDP_FMT_MAX 511           /* fmt list, tokens joined by one space */
#define EL_SDP_FOUNDATION_MAX 32     /* RFC 8839: 1..32 ice-chars */
#define EL_SDP_ADDR_MAX 255          /* IPv4, IPv6 or DNS/mDNS host name */
#define EL_SDP_DIGEST_MAX 64         /* sha-512 */

#define EL_SDP_DEFAULT_SCTP_PORT 5000
#define EL_SDP_DEFAULT_MAX_MESSAGE_SIZE 262144 /* what Chromium advertises */
#define EL_SDP_DATACHANNEL_PROTO "UDP/DTLS/SCTP"
#define EL_SDP_DATACHANNEL_FMT "webrtc-datachannel"

/* Largest text el_sdp_candidate_write can produce, NUL included. */
#define EL_SDP_CANDIDATE_STR_MAX 1024
/* Largest text el_sdp_fingerprint_write can produce, NUL included. */
#define EL_SDP_FINGERPRINT_STR_MAX 208

typedef enum {
    EL_SDP_SETUP_NONE = 0, /* no a=setup */
    EL_SDP_SETUP_ACTPASS,
    EL_SDP_SETUP_ACTIVE,   /* DTLS client */
    EL_SDP_SETUP_PASSIVE,  /* DTLS server */
} el_sdp_setup;

typedef enum {
    EL_SDP_HASH_NONE = 0,
    EL_SDP_HASH_SHA1,      /* "sha-1", 20 bytes */
    EL_SDP_HASH_SHA224,    /* "sha-224", 28 bytes */
    EL_SDP_HASH_SHA256,    /* "sha-256", 32 bytes: the one we require and send */
    EL_SDP_HASH_SHA384,    /* "sha-384", 48 bytes */
    EL_SDP_HASH_SHA512,    /* "sha-512", 64 bytes */
} el_sdp_hash;             /* md2/md5 and unknown names are rejected */

typedef enum {
    EL_SDP_MEDIA_OTHER = 0,
    EL_SDP_MEDIA_AUDIO,
    EL_SDP_MEDIA_VIDEO,
    EL_SDP_MEDIA_APPLICATION,
} el_sdp_media_type;

typedef enum {
    EL_SDP_DIR_NONE = 0,   /* no direction attribute */
    EL_SDP_DIR_SENDRECV,
    EL_SDP_DIR_SENDONLY,
    EL_SDP_DIR_RECVONLY,
    EL_SDP_DIR_INACTIVE,
} el_sdp_direction;

typedef enum { EL_SDP_TRANSPORT_UDP = 0, EL_SDP_TRANSPORT_TCP } el_sdp_transport;
typedef enum {
    EL_SDP_CAND_HOST = 0,
    EL_SDP_CAND_SRFLX,
    EL_SDP_CAND_PRFLX,
    EL_SDP_CAND_RELAY,
} el_sdp_cand_type;
typedef enum {
    EL_SDP_TCPTYPE_NONE = 0,
    EL_SDP_TCPTYPE_ACTIVE,
    EL_SDP_TCPTYPE_PASSIVE,
    EL_SDP_TCPTYPE_SO,
} el_sdp_tcptype;
typedef enum {
    EL_SDP_ADDR_IP4 = 0,
    EL_SDP_ADDR_IP6,
    EL_SDP_ADDR_MDNS,      /* host name ending in ".local" (Chromium hides IPs so) */
    EL_SDP_ADDR_FQDN,      /* any other DNS host name */
} el_sdp_addr_kind;

typedef struct {
    el_sdp_hash hash;
    uint8_t len;                       /* digest bytes, fixed by hash */
    uint8_t digest[EL_SDP_DIGEST_MAX];
} el_sdp_fingerprint;

/* One ICE candidate (RFC 8839 §5.1). The extensions generation, network-id,
 * network-cost and unknown ones are checked for a value and dropped; ufrag
 * (which ICE generation the candidate belongs to) is kept. */
typedef struct {
    char foundation[EL_SDP_FOUNDATION_MAX + 1];
    uint16_t component;                /* 1..256; 1 = RTP / data */
    el_sdp_transport transport;
    uint32_t priority;
    char address[EL_SDP_ADDR_MAX + 1]; /* text as received: IP or host name */
    el_sdp_addr_kind addr_kind;
    uint16_t port;
    el_sdp_cand_type type;
    bool has_raddr, has_rport;
    char raddr[EL_SDP_ADDR_MAX + 1];   /* related address (srflx/prflx/relay) */
    el_sdp_addr_kind raddr_kind;
    uint16_t rport;
    el_sdp_tcptype tcptype;            /* TCP candidates (RFC 6544) */
    char ufrag[EL_SDP_UFRAG_MAX + 1];  /* "" when absent */
} el_sdp_candidate;

/* One m= section. */
typedef struct {
    el_sdp_media_type type;
    char media[EL_SDP_MEDIA_MAX + 1];  /* the m= media token, e.g. "audio" */
    uint16_t port;                     /* 0 = rejected (unless bundle_only) */
    char proto[EL_SDP_PROTO_MAX + 1];
    char fmt[EL_SDP_FMT_MAX + 1];      /* "111 63 9 0" or "webrtc-datachannel" */
    char mid[EL_SDP_MID_MAX + 1];      /* required in every section */
    /* effective values (own, else session-level): */
    char ice_ufrag[EL_SDP_UFRAG_MAX + 1];
    char ice_pwd[EL_SDP_PWD_MAX + 1];
    bool ice_trickle, ice_ice2;        /* a=ice-options tokens; others ignored */
    uint8_t nfingerprints;
    el_sdp_fingerprint fingerprints[EL_SDP_MAX_FINGERPRINTS];
    el_sdp_setup setup;
    /* own values: */
    el_sdp_direction direction;
    bool rtcp_mux, bundle_only, end_of_candidates;
    uint16_t sctp_port;                /* 0 = no a=sctp-port (RFC 8841 default 5000) */
    bool has_max_message_size;         /* absent: RFC 8841 default 64 KiB */
    uint64_t max_message_size;         /* 0 = no limit (RFC 8841 §6) */
    uint16_t cand_first, cand_count;   /* this section's range in el_sdp.candidates;
                                          cand_first = candidates of earlier sections */
} el_sdp_media;

/* A parsed (or built) session description. Plain data, no pointers, about
 * 150 KiB: allocate it (malloc) rather than putting it on a thread's stack.
 * Copy with memcpy/assignment; nothing to free. */
typedef struct {
    uint64_t sess_id, sess_version;    /* o= line */
    /* session-level values (also folded into each m= section): */
    char ice_ufrag[EL_SDP_UFRAG_MAX + 1];
    char ice_pwd[EL_SDP_PWD_MAX + 1];
    bool ice_trickle, ice_ice2, ice_lite, end_of_candidates;
    uint8_t nfingerprints;
    el_sdp_fingerprint fingerprints[EL_SDP_MAX_FINGERPRINTS];
    el_sdp_setup setup;
    bool has_bundle;                   /* an a=group:BUNDLE line (possibly empty) */
    uint8_t nbundle;
    uint8_t bundle[EL_SDP_MAX_MEDIA];  /* media indexes, in group order */
    uint8_t nmedia;
    el_sdp_media media[EL_SDP_MAX_MEDIA];
    uint16_t ncandidates;
    el_sdp_candidate candidates[EL_SDP_MAX_CANDIDATES];
    int dc;                            /* index of the data-channel section */
} el_sdp;

/* Parses buf[0..len) (need not be NUL-terminated) into *out. Succeeds only
 * if there is a data-channel section: m=application, port != 0 (or
 * a=bundle-only), proto UDP/DTLS/SCTP or TCP/DTLS/SCTP, fmt
 * webrtc-datachannel, with effective ice-ufrag, ice-pwd and a sha-256
 * fingerprint; out->dc is the first such section. Returns EL_OK,
 * EL_ERR_INVALID (malformed or unsupported), EL_ERR_TOO_LARGE (over
 * EL_SDP_MAX_SIZE) or EL_ERR_QUOTA (too many lines, sections, candidates or
 * fingerprints), with the reason in err. *out is unspecified on failure. */
int el_sdp_parse(const char *buf, size_t len, el_sdp *out, char *err, size_t errlen);

/* Writes sdp as text into out[0..outlen) and NUL-terminates it. Every
 * field is validated as the parser would (no line injection through a
 * caller's strings). Returns the text length, EL_ERR_INVALID (reason in err)
 * or EL_ERR_TOO_LARGE (outlen too small). EL_SDP_MAX_SIZE bytes always
 * suffice for a description that el_sdp_parse produced. */
int el_sdp_write(const el_sdp *sdp, char *out, size_t outlen, char *err, size_t errlen);

/* Field-by-field equality (what parse(write(x)) must reproduce). */
bool el_sdp_equal(const el_sdp *a, const el_sdp *b);

/* Our side of a data-channel session. Strings are borrowed for the call. */
typedef struct {
    uint64_t sess_id;                  /* random, below 2^63 (JSEP §5.2.1) */
    uint64_t sess_version;             /* 2 at first (as Chromium), +1 per new description */
    const char *ice_ufrag, *ice_pwd;   /* RFC 8839 lengths and characters */
    bool ice_trickle;                  /* a=ice-options:trickle */
    el_sdp_fingerprint fingerprint;    /* our certificate; must be sha-256 */
    el_sdp_setup setup;                /* offer: ACTPASS; answer: ACTIVE or PASSIVE */
    const char *mid;                   /* offer only: NULL means "0"; an answer uses the offer's */
    uint16_t sctp_port;                /* 0 means EL_SDP_DEFAULT_SCTP_PORT */
    uint64_t max_message_size;         /* 0 means EL_SDP_DEFAULT_MAX_MESSAGE_SIZE */
    const el_sdp_candidate *candidates; /* may be NULL when ncandidates == 0 */
    size_t ncandidates;
    bool end_of_candidates;
    const el_sdp *offer;               /* NULL: build an offer; else answer this offer */
} el_sdp_dc_params;

/* Builds (into *out, fully overwritten) an offer with one data-channel
 * section, or an answer to p->offer: the offer's data-channel section
 * accepted with our parameters at the same index and mid, every other
 * section mirrored with port 0, its media, proto, fmt and mid, and
 * a=inactive; BUNDLE lists the accepted mid only. The setup role is checked
 * against the offer's (RFC 8842 §5.3). Port 9 and c=IN IP4 0.0.0.0 as
 * JSEP asks; candidates go into the data-channel section. Returns EL_OK or
 * EL_ERR_INVALID / EL_ERR_QUOTA with the reason in err. */
int el_sdp_build_dc(el_sdp *out, const el_sdp_dc_params *p, char *err, size_t errlen);

/* el_sdp_build_dc + el_sdp_write through a temporary heap el_sdp. Returns
 * the text length or a negative el_err (EL_ERR_NOMEM too). */
int el_sdp_write_dc(const el_sdp_dc_params *p, char *out, size_t outlen, char *err,
                    size_t errlen);

/* Parses one candidate: "candidate:..." as in RTCIceCandidate.candidate,
 * or an SDP line "a=candidate:..."; one trailing CRLF/LF is allowed. An
 * empty string (the end-of-candidates marker of trickle ICE) is an error
 * here: callers test for it first. Returns EL_OK or EL_ERR_INVALID. */
int el_sdp_candidate_parse(const char *s, size_t len, el_sdp_candidate *out, char *err,
                           size_t errlen);

/* Writes "candidate:<foundation> <component> udp|tcp <priority> <address>
 * <port> typ <type>[ raddr <a>][ rport <p>][ tcptype <t>][ ufrag <u>]"
 * (no "a=", no CRLF), as Chromium does, NUL-terminated. Returns the length,
 * EL_ERR_INVALID (a field out of range) or EL_ERR_TOO_LARGE.
 * EL_SDP_CANDIDATE_STR_MAX bytes always suffice. */
int el_sdp_candidate_write(const el_sdp_candidate *c, char *out, size_t outlen);

/* Parses an a=fingerprint value: "<hash> <HEX>:<HEX>:..." (hash name and
 * hex digits in any case; RFC 8122 §5). Returns EL_OK or EL_ERR_INVALID
 * ("fingerprint: unsupported hash 'md5'"). */
int el_sdp_fingerprint_parse(const char *s, size_t len, el_sdp_fingerprint *out, char *err,
                             size_t errlen);

/* Writes "sha-256 AB:CD:..." (upper-case hex) NUL-terminated. Returns the
 * length, EL_ERR_INVALID (unknown hash or wrong length) or
 * EL_ERR_TOO_LARGE. EL_SDP_FINGERPRINT_STR_MAX bytes always suffice. */
int el_sdp_fingerprint_write(const el_sdp_fingerprint *fp, char *out, size_t outlen);

/* Fills fp from a raw sha-256 digest (32 bytes). */
void el_sdp_fingerprint_sha256(el_sdp_fingerprint *fp, const uint8_t digest[32]);

/* The digest length of a hash (0 for NONE/unknown), and its SDP name. */
size_t el_sdp_hash_len(el_sdp_hash h);
const char *el_sdp_hash_name(el_sdp_hash h);
const char *el_sdp_setup_name(el_sdp_setup s);

#endif
