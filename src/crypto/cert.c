/* cert.c - self-signed ECDSA P-256 DTLS certificate (see cert.h). */
#include "crypto/cert.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "base/err.h"

#define CERT_CN "EchoLink"
#define SECONDS_PER_DAY (24L * 60 * 60)

struct el_cert {
    X509 *x509;
    EVP_PKEY *pkey;
    uint8_t fp[EL_CERT_FP_LEN];
};

/* Formats "<what>: <first OpenSSL reason>" into err and clears the OpenSSL
 * error queue (it is per thread and shared with every other user). */
static int crypto_fail(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_peek_error();
    char reason[160] = "";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    if (reason[0])
        return el_seterr(err, errlen, EL_ERR_CRYPTO, "%s: %s", what, reason);
    return el_seterr(err, errlen, EL_ERR_CRYPTO, "%s", what);
}

/* A positive, non-zero 63-bit random serial number (RFC 5280 §4.1.2.2). */
static int random_serial(X509 *x509)
{
    uint8_t b[8];
    uint64_t v = 0;
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    for (size_t i = 0; i < sizeof b; i++)
        v = (v << 8) | b[i];
    v &= UINT64_C(0x7fffffffffffffff);
    if (v == 0)
        v = 1;
    ASN1_INTEGER *serial = X509_get_serialNumber(x509); /* owned by x509 */
    return ASN1_INTEGER_set_uint64(serial, v) == 1 ? 0 : -1;
}

int el_cert_new(el_cert **out, char *err, size_t errlen)
{
    int rc;
    el_cert *c = NULL;
    X509_NAME *name = NULL;

    if (!out)
        return el_seterr(err, errlen, EL_ERR_INVALID, "NULL argument");
    *out = NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");

    ERR_clear_error();
    c->pkey = EVP_EC_gen("P-256");
    if (!c->pkey) {
        rc = crypto_fail(err, errlen, "cannot generate the P-256 key");
        goto fail;
    }
    c->x509 = X509_new();
    if (!c->x509) {
        rc = crypto_fail(err, errlen, "X509_new");
        goto fail;
    }
    /* version 3 (0-based 2), like libwebrtc's certificates */
    if (X509_set_version(c->x509, 2) != 1 || random_serial(c->x509) != 0) {
        rc = crypto_fail(err, errlen, "cannot set version/serial");
        goto fail;
    }
    if (!X509_gmtime_adj(X509_getm_notBefore(c->x509), -SECONDS_PER_DAY) ||
        !X509_gmtime_adj(X509_getm_notAfter(c->x509), EL_CERT_VALID_DAYS * SECONDS_PER_DAY)) {
        rc = crypto_fail(err, errlen, "cannot set the validity");
        goto fail;
    }
    name = X509_NAME_new();
    if (!name ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)CERT_CN, -1,
                                   -1, 0) != 1 ||
        X509_set_subject_name(c->x509, name) != 1 || X509_set_issuer_name(c->x509, name) != 1) {
        rc = crypto_fail(err, errlen, "cannot set the subject");
        goto fail;
    }
    if (X509_set_pubkey(c->x509, c->pkey) != 1) {
        rc = crypto_fail(err, errlen, "cannot set the public key");
        goto fail;
    }
    if (X509_sign(c->x509, c->pkey, EVP_sha256()) <= 0) {
        rc = crypto_fail(err, errlen, "cannot sign the certificate");
        goto fail;
    }
    rc = el_cert_x509_fingerprint(c->x509, c->fp);
    if (rc) {
        rc = crypto_fail(err, errlen, "cannot compute the fingerprint");
        goto fail;
    }
    X509_NAME_free(name);
    *out = c;
    return EL_OK;
fail:
    X509_NAME_free(name);
    el_cert_free(c);
    return rc;
}

void el_cert_free(el_cert *cert)
{
    if (!cert)
        return;
    X509_free(cert->x509);
    EVP_PKEY_free(cert->pkey); /* clears the private scalar itself */
    free(cert);
}

int el_cert_fingerprint(const el_cert *cert, uint8_t out[EL_CERT_FP_LEN])
{
    if (!out)
        return EL_ERR_INVALID;
    if (!cert) {
        memset(out, 0, EL_CERT_FP_LEN);
        return EL_ERR_INVALID;
    }
    memcpy(out, cert->fp, EL_CERT_FP_LEN);
    return EL_OK;
}

int el_cert_der(const el_cert *cert, uint8_t **der, size_t *len)
{
    if (!der || !len)
        return EL_ERR_INVALID;
    *der = NULL;
    *len = 0;
    if (!cert)
        return EL_ERR_INVALID;
    int n = i2d_X509(cert->x509, NULL);
    if (n <= 0) {
        ERR_clear_error();
        return EL_ERR_CRYPTO;
    }
    uint8_t *buf = malloc((size_t)n);
    if (!buf)
        return EL_ERR_NOMEM;
    uint8_t *p = buf; /* i2d advances p */
    if (i2d_X509(cert->x509, &p) != n) {
        ERR_clear_error();
        free(buf);
        return EL_ERR_CRYPTO;
    }
    *der = buf;
    *len = (size_t)n;
    return EL_OK;
}

void el_cert_fingerprint_hex(const uint8_t fp[EL_CERT_FP_LEN], char out[EL_CERT_FP_HEX_SIZE])
{
    static const char hex[] = "0123456789ABCDEF";
    if (!out)
        return;
    out[0] = '\0';
    if (!fp)
        return;
    char *p = out;
    for (size_t i = 0; i < EL_CERT_FP_LEN; i++) {
        if (i)
            *p++ = ':';
        *p++ = hex[fp[i] >> 4];
        *p++ = hex[fp[i] & 0x0f];
    }
    *p = '\0';
}

X509 *el_cert_x509(const el_cert *cert)
{
    return cert ? cert->x509 : NULL;
}

EVP_PKEY *el_cert_pkey(const el_cert *cert)
{
    return cert ? cert->pkey : NULL;
}

int el_cert_x509_fingerprint(const X509 *x509, uint8_t out[EL_CERT_FP_LEN])
{
    unsigned int n = 0;
    if (!out)
        return EL_ERR_INVALID;
    memset(out, 0, EL_CERT_FP_LEN);
    if (!x509)
        return EL_ERR_INVALID;
    if (X509_digest(x509, EVP_sha256(), out, &n) != 1 || n != EL_CERT_FP_LEN) {
        ERR_clear_error();
        memset(out, 0, EL_CERT_FP_LEN);
        return EL_ERR_CRYPTO;
    }
    return EL_OK;
}
