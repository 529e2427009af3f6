/* cert.h - the self-signed DTLS certificate of a WebRTC endpoint and its
 * SHA-256 fingerprint (RFC 8122 a=fingerprint, RFC 8827 §6.5).
 *
 * WebRTC does not use PKI: each side makes a throwaway self-signed
 * certificate, announces its SHA-256 fingerprint in the SDP, and the peer
 * checks the certificate it received in the DTLS handshake against that
 * fingerprint (src/rtc/dtls does the check).
 *
 * The certificate (what Chromium and libwebrtc make too):
 *
 *   | field        | value                                                 |
 *   |--------------|-------------------------------------------------------|
 *   | version      | X.509 v3, no extensions                               |
 *   | key          | ECDSA P-256 (prime256v1), fresh per certificate       |
 *   | signature    | ecdsa-with-SHA256, self-signed                        |
 *   | serial       | 63 random bits, positive, never 0                     |
 *   | subject      | CN=EchoLink (issuer the same)                         |
 *   | validity     | now - 1 day .. now + 30 days (EL_CERT_VALID_DAYS)     |
 *
 * Fingerprint = SHA-256 over the certificate's DER encoding, 32 bytes; in SDP
 * it is written "sha-256 AA:BB:...:FF" (el_cert_fingerprint_hex gives the
 * second part).
 *
 * An el_cert is immutable after creation and keeps no global state; it may be
 * shared by several DTLS sessions and threads. A DTLS session takes its own
 * OpenSSL references, so the el_cert may be freed while sessions made from it
 * are still alive. */
#ifndef EL_CRYPTO_CERT_H
#define EL_CRYPTO_CERT_H

#include <stddef.h>
#include <stdint.h>

#define EL_CERT_FP_LEN 32                       /* SHA-256 fingerprint, bytes */
#define EL_CERT_FP_HEX_SIZE (EL_CERT_FP_LEN * 3) /* "AA:..:FF" + NUL = 96 */
#define EL_CERT_VALID_DAYS 30                   /* notAfter = now + 30 days */

typedef struct el_cert el_cert;

/* Generates a fresh key pair and self-signed certificate (see the table). On
 * success *out owns it, for el_cert_free(). Returns EL_OK, EL_ERR_INVALID
 * (NULL out), EL_ERR_NOMEM or EL_ERR_CRYPTO (OpenSSL failure, reason in err);
 * on failure *out is NULL. */
int el_cert_new(el_cert **out, char *err, size_t errlen);

/* Frees the certificate and its private key; NULL is a no-op. */
void el_cert_free(el_cert *cert);

/* Copies the certificate's SHA-256 fingerprint (computed once at creation)
 * into out. Returns EL_OK, or EL_ERR_INVALID for a NULL argument (then out, if
 * not NULL, is zeroed). */
int el_cert_fingerprint(const el_cert *cert, uint8_t out[EL_CERT_FP_LEN]);

/* Writes the DER encoding of the certificate into a new malloc'ed buffer that
 * the caller frees with free(). Returns EL_OK, EL_ERR_INVALID (NULL argument),
 * EL_ERR_NOMEM or EL_ERR_CRYPTO; on failure *der is NULL and *len 0. */
int el_cert_der(const el_cert *cert, uint8_t **der, size_t *len);

/* Formats a fingerprint the SDP way: upper-case hex pairs joined by ':'
 * ("0A:1B:...", 95 characters + NUL). NULL fp gives the empty string. */
void el_cert_fingerprint_hex(const uint8_t fp[EL_CERT_FP_LEN], char out[EL_CERT_FP_HEX_SIZE]);

/* ---- internal: for src/rtc/dtls.c and tests ----------------------------
 * OpenSSL types are named by their struct tags so that this header does not
 * pull in OpenSSL: struct x509_st is X509, struct evp_pkey_st is EVP_PKEY. */
struct x509_st;
struct evp_pkey_st;

/* Borrowed pointers, owned by `cert` and valid until el_cert_free(cert). A
 * user that keeps them longer takes its own reference (X509_up_ref,
 * EVP_PKEY_up_ref; SSL_CTX_use_certificate / _use_PrivateKey do so). NULL for
 * a NULL cert. */
struct x509_st *el_cert_x509(const el_cert *cert);
struct evp_pkey_st *el_cert_pkey(const el_cert *cert);

/* SHA-256 over the DER encoding of any certificate, e.g. the one the peer
 * presented in the DTLS handshake. Returns EL_OK, EL_ERR_INVALID (NULL
 * argument) or EL_ERR_CRYPTO; on failure out (if not NULL) is zeroed. */
int el_cert_x509_fingerprint(const struct x509_st *x509, uint8_t out[EL_CERT_FP_LEN]);

#endif
