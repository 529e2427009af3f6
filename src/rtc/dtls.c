/* dtls.c - DTLS 1.2 session over caller-supplied datagrams (see dtls.h).
 *
 * OpenSSL plumbing:
 *   input   a memory BIO (eof return -1, so "empty" means "retry"); it holds
 *           exactly one datagram at a time and is emptied after each
 *           el_dtls_input(), so datagram boundaries are never merged
 *   output  a BIO_METHOD of our own whose write hands each buffer to cb.send.
 *           During the handshake OpenSSL pushes a buffering BIO on top and
 *           flushes it whenever the next record would overflow the MTU, so
 *           each BIO_write reaching us is one datagram of whole records; a
 *           memory BIO would merge the datagrams into one stream
 *   timer   DTLS_set_timer_cb shortens the first retransmission to 100 ms;
 *           OpenSSL measures the deadline on the real clock, we report it
 *           through cb.set_timer and re-arm after every call
 *
 * Reentrancy: OpenSSL calls bio_write (so cb.send) from inside SSL_* calls;
 * `in_ssl` is set around them and public calls made meanwhile are refused.
 * Every public entry point bumps `depth`; el_dtls_free() with depth > 0 only
 * sets `free_pending`, and the outermost call frees on its way out. After any
 * callback the code re-checks free_pending and the state, since the user may
 * have closed (or wrongly freed) the session. */
#include "rtc/dtls.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/err.h"

#define CIPHERS                                                                             \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                            \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                            \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define GROUPS "X25519:P-256:P-384"

#define RECORD_HEADER_LEN 13 /* type(1) version(2) epoch(2) seq(6) length(2) */
#define MSG_MAX 320          /* on_error text; the fingerprint mismatch is ~240 */

typedef struct held {
    struct held *next;
    size_t len;
    uint8_t data[];
} held;

struct el_dtls {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO_METHOD *bio_meth;
    BIO *rbio; /* owned by ssl */
    el_dtls_callbacks cb;
    void *user;
    int client;
    el_dtls_state state;

    int have_remote_fp;
    uint8_t remote_fp[EL_CERT_FP_LEN];
    int have_peer_fp;
    uint8_t peer_fp[EL_CERT_FP_LEN];

    int depth;        /* public calls in progress (nested through callbacks) */
    int in_ssl;       /* inside an OpenSSL call: cb.send may be running */
    int free_pending; /* el_dtls_free() was called from a callback */
    int timer_armed;  /* the last set_timer() had ms >= 0 */

    held *held_head, *held_tail; /* app data received in EL_DTLS_VERIFYING */
    size_t held_bytes;

    uint8_t rbuf[EL_DTLS_MAX_SEND]; /* one decrypted record */
};

/* ---- small helpers ----------------------------------------------------- */

/* Empties this thread's OpenSSL error queue so that SSL_get_error() sees
 * only the next call's errors. The queue is almost always empty already,
 * and peeking is much cheaper than ERR_clear_error(), which walks all of
 * its slots: this runs twice per datagram. */
static void err_clear(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static int ended(const el_dtls *d)
{
    return d->state == EL_DTLS_CLOSED || d->state == EL_DTLS_FAILED;
}

/* Public entry: refuses recursion from inside cb.send and use after a
 * deferred free. Returns EL_OK when the call may proceed. */
static int enter(el_dtls *d)
{
    if (!d)
        return EL_ERR_INVALID;
    if (d->in_ssl)
        return EL_ERR_DENIED;
    if (d->free_pending)
        return EL_ERR_INVALID;
    d->depth++;
    return EL_OK;
}

static void destroy(el_dtls *d);

/* Public exit: d must not be touched afterwards (it may be gone). */
static void leave(el_dtls *d)
{
    d->depth--;
    if (d->depth == 0 && d->free_pending)
        destroy(d);
}

static void held_clear(el_dtls *d)
{
    held *h = d->held_head;
    while (h) {
        held *next = h->next;
        OPENSSL_cleanse(h->data, h->len);
        free(h);
        h = next;
    }
    d->held_head = d->held_tail = NULL;
    d->held_bytes = 0;
}

static int64_t timeout_ms(const el_dtls *d)
{
    struct timeval tv;
    if (ended(d) || d->state == EL_DTLS_NEW)
        return -1;
    if (DTLSv1_get_timeout(d->ssl, &tv) != 1)
        return -1;
    return (int64_t)tv.tv_sec * 1000 + ((int64_t)tv.tv_usec + 999) / 1000;
}

static void timer_cancel(el_dtls *d)
{
    if (d->timer_armed) {
        d->timer_armed = 0;
        if (d->cb.set_timer && !d->free_pending)
            d->cb.set_timer(d->user, -1);
    }
}

/* Tells the caller when OpenSSL's retransmission timer is due next. */
static void timer_update(el_dtls *d)
{
    if (d->free_pending)
        return;
    int64_t ms = timeout_ms(d);
    if (ms < 0) {
        timer_cancel(d);
        return;
    }
    d->timer_armed = 1;
    if (d->cb.set_timer)
        d->cb.set_timer(d->user, ms);
}

/* OpenSSL's retransmission schedule: EL_DTLS_TIMER_INITIAL_MS for a new
 * flight, then doubling up to EL_DTLS_TIMER_MAX_MS. */
static unsigned int timer_cb(SSL *ssl, unsigned int timer_us)
{
    (void)ssl;
    if (timer_us == 0)
        return EL_DTLS_TIMER_INITIAL_MS * 1000u;
    if (timer_us >= EL_DTLS_TIMER_MAX_MS * 1000u / 2)
        return EL_DTLS_TIMER_MAX_MS * 1000u;
    return timer_us * 2;
}

/* Ends the session (CLOSED or FAILED), cancels the timer and reports `code`
 * through on_error, exactly once. Returns code. */
static int end_session(el_dtls *d, el_dtls_state st, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int end_session(el_dtls *d, el_dtls_state st, int code, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    if (ended(d))
        return code;
    d->state = st;
    held_clear(d);
    timer_cancel(d);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->cb.on_error && !d->free_pending)
        d->cb.on_error(d->user, code, msg);
    return code;
}

/* Turns the SSL_get_error() of a failed SSL_* call into the end of the
 * session. `what` says which operation failed. */
static int fail_ssl(el_dtls *d, int ssl_err, const char *what)
{
    if (ssl_err == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return end_session(d, EL_DTLS_CLOSED, EL_ERR_IO,
                           "DTLS connection closed by peer (close_notify)");
    }
    unsigned long e = ERR_peek_error();
    char reason[160];
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r) {
        snprintf(reason, sizeof reason, "%s", r);
    } else if (e) {
        ERR_error_string_n(e, reason, sizeof reason);
    } else {
        snprintf(reason, sizeof reason, "SSL error %d", ssl_err);
    }
    int timeout = e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
                  ERR_GET_REASON(e) == SSL_R_READ_TIMEOUT_EXPIRED;
    ERR_clear_error();
    if (timeout)
        return end_session(d, EL_DTLS_FAILED, EL_ERR_IO,
                           "DTLS %s: no answer after all retransmissions (%s)", what, reason);
    return end_session(d, EL_DTLS_FAILED, EL_ERR_CRYPTO, "DTLS %s: %s", what, reason);
}

/* Sends close_notify if the handshake is complete (OpenSSL sends nothing
 * while in init). Errors are irrelevant: the session ends anyway. */
static void send_close_notify(el_dtls *d)
{
    if (!SSL_is_init_finished(d->ssl))
        return;
    ERR_clear_error();
    d->in_ssl = 1;
    (void)SSL_shutdown(d->ssl);
    d->in_ssl = 0;
    ERR_clear_error();
}

/* ---- output BIO: one cb.send per BIO_write ----------------------------- */

/* Our BIO type number. BIO_get_new_index() hands out a fresh number per call
 * and the numbers must stay below 256, so it is taken once per process (the
 * only process-wide state here; immutable afterwards). */
static CRYPTO_ONCE bio_type_once = CRYPTO_ONCE_STATIC_INIT;
static int bio_type = -1;

static void bio_type_init(void)
{
    bio_type = BIO_get_new_index();
}

static int bio_write(BIO *b, const char *buf, int len)
{
    el_dtls *d = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (d && !d->free_pending)
        d->cb.send(d->user, (const uint8_t *)buf, (size_t)len);
    return len; /* datagram semantics: a lost send is a lost packet */
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* nothing buffered; <= 0 would stall the handshake */
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
        return EL_DTLS_MTU;
    case BIO_CTRL_DGRAM_SET_MTU:
        return num;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD: /* the MTU we are given is the payload's */
    case BIO_CTRL_DGRAM_MTU_EXCEEDED:
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_data(b, NULL);
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    if (!b)
        return 0;
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

/* ---- handshake and records --------------------------------------------- */

static int verify_accept_any(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    (void)store;
    return 1; /* self-signed is normal; the fingerprint is checked afterwards */
}

static void deliver(el_dtls *d, const uint8_t *data, size_t len)
{
    if (d->state == EL_DTLS_CONNECTED) {
        if (d->cb.on_data)
            d->cb.on_data(d->user, data, len);
        return;
    }
    if (d->state != EL_DTLS_VERIFYING || d->held_bytes + len > EL_DTLS_HOLD_MAX)
        return; /* dropped: SCTP retransmits */
    held *h = malloc(sizeof *h + len);
    if (!h)
        return;
    h->next = NULL;
    h->len = len;
    memcpy(h->data, data, len);
    if (d->held_tail)
        d->held_tail->next = h;
    else
        d->held_head = h;
    d->held_tail = h;
    d->held_bytes += len;
}

/* Compares the peer's certificate fingerprint with the expected one; on a
 * match the session is CONNECTED and held data is delivered. */
static int verify(el_dtls *d)
{
    if (CRYPTO_memcmp(d->peer_fp, d->remote_fp, EL_CERT_FP_LEN) != 0) {
        char want[EL_CERT_FP_HEX_SIZE], got[EL_CERT_FP_HEX_SIZE];
        el_cert_fingerprint_hex(d->remote_fp, want);
        el_cert_fingerprint_hex(d->peer_fp, got);
        send_close_notify(d);
        return end_session(d, EL_DTLS_FAILED, EL_ERR_CRYPTO,
                           "DTLS fingerprint mismatch: expected %s got %s", want, got);
    }
    d->state = EL_DTLS_CONNECTED;
    if (d->cb.on_connected)
        d->cb.on_connected(d->user);
    while (d->held_head && !d->free_pending && d->state == EL_DTLS_CONNECTED) {
        held *h = d->held_head;
        d->held_head = h->next;
        if (!d->held_head)
            d->held_tail = NULL;
        d->held_bytes -= h->len;
        if (d->cb.on_data)
            d->cb.on_data(d->user, h->data, h->len);
        OPENSSL_cleanse(h->data, h->len);
        free(h);
    }
    return EL_OK;
}

static int handshake_done(el_dtls *d)
{
    X509 *peer = SSL_get1_peer_certificate(d->ssl);
    if (!peer) {
        send_close_notify(d);
        return end_session(d, EL_DTLS_FAILED, EL_ERR_CRYPTO,
                           "DTLS peer presented no certificate");
    }
    int rc = el_cert_x509_fingerprint(peer, d->peer_fp);
    X509_free(peer);
    if (rc) {
        send_close_notify(d);
        return end_session(d, EL_DTLS_FAILED, rc,
                           "DTLS cannot compute the peer certificate fingerprint");
    }
    d->have_peer_fp = 1;
    d->state = EL_DTLS_VERIFYING;
    if (!d->have_remote_fp)
        return EL_OK; /* el_dtls_set_remote_fingerprint() finishes the job */
    return verify(d);
}

static int do_handshake(el_dtls *d)
{
    err_clear();
    d->in_ssl = 1;
    int r = SSL_do_handshake(d->ssl);
    d->in_ssl = 0;
    if (d->free_pending)
        return EL_OK;
    if (r == 1)
        return handshake_done(d);
    int e = SSL_get_error(d->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        err_clear();
        return EL_OK;
    }
    return fail_ssl(d, e, "handshake failed");
}

/* Reads every record OpenSSL can produce from the datagram in rbio. */
static int read_records(el_dtls *d)
{
    for (;;) {
        if (d->free_pending ||
            (d->state != EL_DTLS_VERIFYING && d->state != EL_DTLS_CONNECTED))
            return EL_OK;
        err_clear();
        d->in_ssl = 1;
        int n = SSL_read(d->ssl, d->rbuf, (int)sizeof d->rbuf);
        d->in_ssl = 0;
        if (d->free_pending)
            return EL_OK;
        if (n > 0) {
            /* OpenSSL takes the whole datagram into its record buffer:
             * when neither holds more, another SSL_read would only say
             * WANT_READ (an SCTP packet is one record per datagram) */
            int more = SSL_has_pending(d->ssl) || BIO_ctrl_pending(d->rbio) > 0;
            deliver(d, d->rbuf, (size_t)n);
            if (!more)
                return EL_OK;
            continue;
        }
        int e = SSL_get_error(d->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            err_clear();
            return EL_OK;
        }
        return fail_ssl(d, e, "receive failed");
    }
}

static int start(el_dtls *d)
{
    if (d->state != EL_DTLS_NEW)
        return EL_OK;
    d->state = EL_DTLS_HANDSHAKING;
    if (d->client)
        return do_handshake(d); /* writes the ClientHello */
    return EL_OK;
}

/* Checks that the datagram is a sequence of whole DTLS 1.0/1.2 records. A
 * DTLS 1.3 unified header (first byte 0b001xxxxx) ends the check: OpenSSL
 * decides about the rest. */
static int framing_ok(const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        uint8_t type = p[off];
        if (type >= 32 && type <= 63)
            return 1;
        if (type < 20 || type > 26) /* change_cipher_spec .. ack */
            return 0;
        if (len - off < RECORD_HEADER_LEN || p[off + 1] != 0xfe)
            return 0;
        size_t rlen = ((size_t)p[off + 11] << 8) | p[off + 12];
        if (rlen > len - off - RECORD_HEADER_LEN)
            return 0;
        off += RECORD_HEADER_LEN + rlen;
    }
    return 1;
}

/* ---- public API -------------------------------------------------------- */

struct el_dtls_ctx {
    SSL_CTX *ssl_ctx;
};

static int ctx_fail(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_error();
    char reason[160] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    return el_seterr(err, errlen, EL_ERR_CRYPTO, "%s: %s", what, reason);
}

el_dtls_ctx *el_dtls_ctx_new(const el_cert *cert, char *err, size_t errlen)
{
    X509 *x509 = el_cert_x509(cert);
    EVP_PKEY *pkey = el_cert_pkey(cert);
    if (!x509 || !pkey) {
        el_seterr(err, errlen, EL_ERR_INVALID, "NULL certificate");
        return NULL;
    }
    el_dtls_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    SSL_CTX *x = c->ssl_ctx = SSL_CTX_new(DTLS_method());
    if (!x || SSL_CTX_set_min_proto_version(x, DTLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(x, CIPHERS) != 1 || SSL_CTX_set1_groups_list(x, GROUPS) != 1)
        goto fail;
    SSL_CTX_set_options(x, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(x, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_accept_any);
    if (SSL_CTX_use_certificate(x, x509) != 1 || SSL_CTX_use_PrivateKey(x, pkey) != 1 ||
        SSL_CTX_check_private_key(x) != 1)
        goto fail;
    return c;
fail:
    ctx_fail(err, errlen, "DTLS setup failed");
    el_dtls_ctx_free(c);
    return NULL;
}

void el_dtls_ctx_free(el_dtls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl_ctx);
    free(c);
}

el_dtls *el_dtls_new(const el_dtls_ctx *ctx, int client, const uint8_t remote_fp[EL_CERT_FP_LEN],
                     const el_dtls_callbacks *cb, void *user, char *err, size_t errlen)
{
    el_dtls *d = NULL;
    BIO *wbio = NULL;

    if (!ctx || !cb || !cb->send) {
        el_seterr(err, errlen, EL_ERR_INVALID, "NULL context, callbacks or send callback");
        return NULL;
    }
    d = calloc(1, sizeof *d);
    if (!d) {
        el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->cb = *cb;
    d->user = user;
    d->client = client ? 1 : 0;
    d->state = EL_DTLS_NEW;
    if (remote_fp) {
        memcpy(d->remote_fp, remote_fp, EL_CERT_FP_LEN);
        d->have_remote_fp = 1;
    }

    ERR_clear_error();
    if (SSL_CTX_up_ref(ctx->ssl_ctx) != 1)
        goto ssl_fail;
    d->ctx = ctx->ssl_ctx;
    d->ssl = SSL_new(d->ctx);
    if (!d->ssl)
        goto ssl_fail;
    if (!CRYPTO_THREAD_run_once(&bio_type_once, bio_type_init) || bio_type == -1)
        goto ssl_fail;
    d->bio_meth = BIO_meth_new(bio_type | BIO_TYPE_SOURCE_SINK, "el_dtls datagram");
    if (!d->bio_meth || BIO_meth_set_write(d->bio_meth, bio_write) != 1 ||
        BIO_meth_set_ctrl(d->bio_meth, bio_ctrl) != 1 ||
        BIO_meth_set_create(d->bio_meth, bio_create) != 1 ||
        BIO_meth_set_destroy(d->bio_meth, bio_destroy) != 1)
        goto ssl_fail;
    d->rbio = BIO_new(BIO_s_mem());
    if (!d->rbio)
        goto ssl_fail;
    BIO_set_mem_eof_return(d->rbio, -1);
    wbio = BIO_new(d->bio_meth);
    if (!wbio) {
        BIO_free(d->rbio);
        d->rbio = NULL;
        goto ssl_fail;
    }
    BIO_set_data(wbio, d);
    SSL_set_bio(d->ssl, d->rbio, wbio); /* ssl owns both now */
    if (SSL_set_mtu(d->ssl, EL_DTLS_MTU) <= 0) /* returns the MTU set */
        goto ssl_fail;
    DTLS_set_timer_cb(d->ssl, timer_cb);
    if (d->client)
        SSL_set_connect_state(d->ssl);
    else
        SSL_set_accept_state(d->ssl);
    return d;

ssl_fail:
    ctx_fail(err, errlen, "DTLS setup failed");
    destroy(d);
    return NULL;
}

static void destroy(el_dtls *d)
{
    SSL_free(d->ssl); /* frees rbio and wbio */
    SSL_CTX_free(d->ctx);
    BIO_meth_free(d->bio_meth);
    held_clear(d);
    OPENSSL_cleanse(d, sizeof *d);
    free(d);
}

void el_dtls_free(el_dtls *d)
{
    if (!d)
        return;
    if (d->depth > 0) {
        d->free_pending = 1; /* a callback freed us: the outermost call will */
        return;
    }
    destroy(d);
}

int el_dtls_start(el_dtls *d)
{
    int rc = enter(d);
    if (rc)
        return rc;
    if (ended(d)) {
        rc = EL_ERR_INVALID;
    } else {
        rc = start(d);
        timer_update(d);
    }
    leave(d);
    return rc;
}

int el_dtls_input(el_dtls *d, const uint8_t *dgram, size_t len)
{
    int rc = enter(d);
    if (rc)
        return rc;
    if (ended(d) || !dgram || len == 0) {
        rc = EL_ERR_INVALID;
    } else if (len > EL_DTLS_MAX_DATAGRAM) {
        rc = EL_ERR_TOO_LARGE;
    } else if (!el_dtls_is_dtls_packet(dgram, len) || !framing_ok(dgram, len)) {
        rc = EL_ERR_INVALID;
    } else {
        rc = start(d);
        if (rc == EL_OK && !d->free_pending && !ended(d)) {
            (void)BIO_reset(d->rbio);
            if (BIO_write(d->rbio, dgram, (int)len) != (int)len) {
                rc = end_session(d, EL_DTLS_FAILED, EL_ERR_NOMEM,
                                 "DTLS cannot buffer an incoming datagram");
            } else {
                if (d->state == EL_DTLS_HANDSHAKING)
                    rc = do_handshake(d);
                if (rc == EL_OK)
                    rc = read_records(d);
            }
            if (!d->free_pending)
                (void)BIO_reset(d->rbio); /* one datagram at a time */
        }
        timer_update(d);
    }
    leave(d);
    return rc;
}

int el_dtls_send(el_dtls *d, const uint8_t *data, size_t len)
{
    int rc = enter(d);
    if (rc)
        return rc;
    if (!data || len == 0) {
        rc = EL_ERR_INVALID;
    } else if (len > EL_DTLS_MAX_SEND) {
        rc = EL_ERR_TOO_LARGE;
    } else if (d->state != EL_DTLS_CONNECTED) {
        rc = EL_ERR_INVALID;
    } else {
        err_clear();
        d->in_ssl = 1;
        int n = SSL_write(d->ssl, data, (int)len);
        d->in_ssl = 0;
        if (n == (int)len) {
            rc = EL_OK;
        } else if (d->free_pending) {
            rc = EL_ERR_INVALID;
        } else {
            rc = fail_ssl(d, SSL_get_error(d->ssl, n), "send failed");
        }
    }
    leave(d);
    return rc;
}

int el_dtls_handle_timeout(el_dtls *d)
{
    int rc = enter(d);
    if (rc)
        return rc;
    if (ended(d)) {
        rc = EL_ERR_INVALID;
    } else if (d->state != EL_DTLS_NEW) {
        ERR_clear_error();
        d->in_ssl = 1;
        int r = DTLSv1_handle_timeout(d->ssl); /* 0 when not due yet */
        d->in_ssl = 0;
        if (r < 0 && !d->free_pending)
            rc = fail_ssl(d, SSL_ERROR_SSL, "handshake timed out");
        else
            ERR_clear_error();
        timer_update(d);
    }
    leave(d);
    return rc;
}

int64_t el_dtls_timeout_ms(const el_dtls *d)
{
    if (!d || d->free_pending)
        return -1;
    return timeout_ms(d);
}

void el_dtls_close(el_dtls *d)
{
    if (enter(d) != EL_OK)
        return;
    if (!ended(d)) {
        send_close_notify(d);
        d->state = EL_DTLS_CLOSED;
        held_clear(d);
        timer_cancel(d);
    }
    leave(d);
}

int el_dtls_set_remote_fingerprint(el_dtls *d, const uint8_t fp[EL_CERT_FP_LEN])
{
    if (!fp)
        return EL_ERR_INVALID;
    int rc = enter(d);
    if (rc)
        return rc;
    if (ended(d)) {
        rc = EL_ERR_INVALID;
    } else if (d->state == EL_DTLS_CONNECTED) {
        /* verified already: only the same value is acceptable */
        rc = CRYPTO_memcmp(fp, d->remote_fp, EL_CERT_FP_LEN) == 0 ? EL_OK : EL_ERR_INVALID;
    } else {
        memcpy(d->remote_fp, fp, EL_CERT_FP_LEN);
        d->have_remote_fp = 1;
        if (d->state == EL_DTLS_VERIFYING)
            rc = verify(d);
        timer_update(d);
    }
    leave(d);
    return rc;
}

int el_dtls_peer_fingerprint(const el_dtls *d, uint8_t out[EL_CERT_FP_LEN])
{
    if (!out)
        return EL_ERR_INVALID;
    memset(out, 0, EL_CERT_FP_LEN);
    if (!d || d->free_pending)
        return EL_ERR_INVALID;
    if (!d->have_peer_fp)
        return EL_ERR_NOT_FOUND;
    memcpy(out, d->peer_fp, EL_CERT_FP_LEN);
    return EL_OK;
}

el_dtls_state el_dtls_get_state(const el_dtls *d)
{
    return d ? d->state : EL_DTLS_FAILED;
}

const char *el_dtls_state_name(el_dtls_state s)
{
    switch (s) {
    case EL_DTLS_NEW: return "new";
    case EL_DTLS_HANDSHAKING: return "handshaking";
    case EL_DTLS_VERIFYING: return "verifying";
    case EL_DTLS_CONNECTED: return "connected";
    case EL_DTLS_CLOSED: return "closed";
    case EL_DTLS_FAILED: return "failed";
    }
    return "unknown";
}

size_t el_dtls_data_mtu(const el_dtls *d)
{
    if (!d || d->free_pending || !d->have_peer_fp || ended(d))
        return 0;
    return DTLS_get_data_mtu(d->ssl);
}

const char *el_dtls_version_name(const el_dtls *d)
{
    if (!d || d->free_pending || !d->have_peer_fp)
        return "";
    return SSL_get_version(d->ssl);
}

const char *el_dtls_cipher_name(const el_dtls *d)
{
    if (!d || d->free_pending || !d->have_peer_fp)
        return "";
    const char *name = SSL_CIPHER_get_name(SSL_get_current_cipher(d->ssl));
    return name ? name : "";
}

int el_dtls_is_dtls_packet(const uint8_t *p, size_t len)
{
    return p && len > 0 && p[0] >= 20 && p[0] <= 63;
}
