/* enc.h - text encodings of binary data: base64url (RFC 4648 §5, no padding),
 * standard base64 (with padding), lower-case base32 (no padding) and hex.
 *
 * Encoders write a NUL-terminated string into `out` and return its length, or
 * -1 when `outlen` is too small. Decoders return the number of bytes written
 * to `out`, or -1 on any character outside the alphabet, a bad length, or
 * `outlen` too small. Nothing allocates. */
#ifndef EL_ENC_H
#define EL_ENC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EL_B64URL_LEN(n) (((n) * 4 + 2) / 3)          /* without NUL */
#define EL_B64_LEN(n) ((((n) + 2) / 3) * 4)           /* without NUL */
#define EL_BASE32_LEN(n) (((n) * 8 + 4) / 5)          /* without NUL */

ssize_t el_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
ssize_t el_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen);
ssize_t el_b64_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
ssize_t el_b64_decode(const char *in, size_t n, uint8_t *out, size_t outlen);
ssize_t el_base32_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
ssize_t el_hex_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
/* 1 when s is 1..max characters of the base64url alphabet [A-Za-z0-9_-]
 * (the shape of our ids: group and envelope ids, cluster node ids). */
int el_b64url_token(const char *s, size_t max);
/* 1 when s[0..len) is only the digits 0-9a-f (the lowercase hex of IDs). */
int el_is_lower_hex(const char *s, size_t len);
/* either case; an odd length is an error */
ssize_t el_hex_decode(const char *in, size_t n, uint8_t *out, size_t outlen);

#endif
