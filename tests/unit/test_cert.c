/* test_cert.c - src/crypto/cert: the self-signed ECDSA P-256 DTLS
 * certificate (fields, self-signature, validity window), its SHA-256
 * fingerprint (stable, 32 bytes, equal to SHA-256 of the DER, different per
 * certificate), the DER round trip and the SDP hex format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "test.h"

#include "base/err.h"
#include "crypto/cert.h"

static el_cert *make_cert(void)
{
    el_cert *c = NULL;
    char err[256] = "";
    int rc = el_cert_new(&c, err, sizeof err);
    if (rc != EL_OK || !c)
        fail_msg("el_cert_new: %d %s", rc, err);
    return c;
}

static void test_generate_fields(void **state)
{
    (void)state;
    el_cert *c = make_cert();
    X509 *x = el_cert_x509(c);
    EVP_PKEY *k = el_cert_pkey(c);
    assert_non_null(x);
    assert_non_null(k);

    assert_int_equal(X509_get_version(x), 2); /* v3 */

    /* ECDSA P-256 key, and it is the certificate's key */
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    char group[64] = "";
    size_t glen = 0;
    assert_int_equal(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof group, &glen),
                     1);
    assert_string_equal(group, "prime256v1");
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_eq(pub, k), 1);

    /* self-signed with ecdsa-with-SHA256, subject == issuer == CN=EchoLink */
    assert_int_equal(X509_verify(x, k), 1);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    char cn[64] = "";
    assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                               sizeof cn),
                     8);
    assert_string_equal(cn, "EchoLink");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);

    /* serial: positive and not zero */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    assert_non_null(bn);
    assert_false(BN_is_zero(bn));
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) <= 63);
    BN_free(bn);

    /* valid now; notBefore about a day ago, notAfter about 30 days ahead */
    time_t now = time(NULL);
    assert_true(X509_cmp_time(X509_get0_notBefore(x), &now) < 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(x), &now) > 0);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)),
                     1);
    assert_int_equal(days, EL_CERT_VALID_DAYS + 1);
    assert_int_equal(secs, 0);

    el_cert_free(c);
}

static void test_fingerprint_stable_and_der(void **state)
{
    (void)state;
    el_cert *c = make_cert();
    uint8_t fp1[EL_CERT_FP_LEN], fp2[EL_CERT_FP_LEN], fpx[EL_CERT_FP_LEN];
    assert_int_equal(el_cert_fingerprint(c, fp1), EL_OK);
    assert_int_equal(el_cert_fingerprint(c, fp2), EL_OK);
    assert_memory_equal(fp1, fp2, EL_CERT_FP_LEN);
    static const uint8_t zero[EL_CERT_FP_LEN];
    assert_memory_not_equal(fp1, zero, EL_CERT_FP_LEN);

    /* equals SHA-256 of the DER, computed independently */
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(el_cert_der(c, &der, &der_len), EL_OK);
    assert_non_null(der);
    assert_true(der_len > 100 && der_len < 1000);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    assert_int_equal(EVP_Digest(der, der_len, md, &md_len, EVP_sha256(), NULL), 1);
    assert_int_equal(md_len, EL_CERT_FP_LEN);
    assert_memory_equal(md, fp1, EL_CERT_FP_LEN);

    /* DER round trip: decode, fingerprint again, re-encode identically */
    const unsigned char *p = der;
    X509 *back = d2i_X509(NULL, &p, (long)der_len);
    assert_non_null(back);
    assert_ptr_equal(p, der + der_len);
    assert_int_equal(el_cert_x509_fingerprint(back, fpx), EL_OK);
    assert_memory_equal(fpx, fp1, EL_CERT_FP_LEN);
    assert_int_equal(X509_cmp(back, el_cert_x509(c)), 0);
    assert_int_equal(X509_verify(back, el_cert_pkey(c)), 1);
    unsigned char *der2 = NULL;
    int n2 = i2d_X509(back, &der2);
    assert_int_equal(n2, (int)der_len);
    assert_memory_equal(der2, der, der_len);
    OPENSSL_free(der2);
    X509_free(back);

    /* a certificate's fingerprint via the X509 accessor agrees too */
    assert_int_equal(el_cert_x509_fingerprint(el_cert_x509(c), fpx), EL_OK);
    assert_memory_equal(fpx, fp1, EL_CERT_FP_LEN);

    free(der);
    el_cert_free(c);
}

static void test_two_certs_differ(void **state)
{
    (void)state;
    el_cert *a = make_cert();
    el_cert *b = make_cert();
    uint8_t fa[EL_CERT_FP_LEN], fb[EL_CERT_FP_LEN];
    assert_int_equal(el_cert_fingerprint(a, fa), EL_OK);
    assert_int_equal(el_cert_fingerprint(b, fb), EL_OK);
    assert_memory_not_equal(fa, fb, EL_CERT_FP_LEN);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(el_cert_x509(a)),
                         X509_get0_serialNumber(el_cert_x509(b))),
        0);
    assert_int_equal(EVP_PKEY_eq(el_cert_pkey(a), el_cert_pkey(b)), 0);
    /* each is signed by its own key only */
    assert_int_equal(X509_verify(el_cert_x509(a), el_cert_pkey(b)), 0);
    el_cert_free(a);
    el_cert_free(b);
}

static void test_hex_format(void **state)
{
    (void)state;
    uint8_t fp[EL_CERT_FP_LEN];
    for (size_t i = 0; i < sizeof fp; i++)
        fp[i] = (uint8_t)(i * 0x11); /* 00 11 .. FF, then 10 21 32 .. */
    fp[31] = 0xfe;
    char hex[EL_CERT_FP_HEX_SIZE];
    memset(hex, 'x', sizeof hex);
    el_cert_fingerprint_hex(fp, hex);
    assert_int_equal(strlen(hex), EL_CERT_FP_HEX_SIZE - 1);
    assert_string_equal(hex, "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                             "10:21:32:43:54:65:76:87:98:A9:BA:CB:DC:ED:FE:FE");
    el_cert_fingerprint_hex(NULL, hex);
    assert_string_equal(hex, "");
}

static void test_null_args(void **state)
{
    (void)state;
    char err[128] = "";
    uint8_t fp[EL_CERT_FP_LEN];
    memset(fp, 0xaa, sizeof fp);
    assert_int_equal(el_cert_new(NULL, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_cert_fingerprint(NULL, fp), EL_ERR_INVALID);
    static const uint8_t zero[EL_CERT_FP_LEN];
    assert_memory_equal(fp, zero, sizeof fp);
    assert_int_equal(el_cert_x509_fingerprint(NULL, fp), EL_ERR_INVALID);
    uint8_t *der = (uint8_t *)1;
    size_t len = 7;
    assert_int_equal(el_cert_der(NULL, &der, &len), EL_ERR_INVALID);
    assert_null(der);
    assert_int_equal(len, 0);
    assert_null(el_cert_x509(NULL));
    assert_null(el_cert_pkey(NULL));
    el_cert_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_fields),
        cmocka_unit_test(test_fingerprint_stable_and_der),
        cmocka_unit_test(test_two_certs_differ),
        cmocka_unit_test(test_hex_format),
        cmocka_unit_test(test_null_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
