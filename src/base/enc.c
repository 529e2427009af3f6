/* enc.c - base64url / base64 / base32 / hex codecs (see enc.h). */
#include "base/enc.h"

#include <string.h>

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static ssize_t b64_encode(const char *alpha, int pad, const uint8_t *in, size_t n,
                          char *out, size_t outlen)
{
    size_t need = pad ? EL_B64_LEN(n) : EL_B64URL_LEN(n);
    if (outlen < need + 1)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        out[o++] = alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        if (pad) { out[o++] = '='; out[o++] = '='; }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alpha[v >> 18 & 63];
        out[o++] = alpha[v >> 12 & 63];
        out[o++] = alpha[v >> 6 & 63];
        if (pad) out[o++] = '=';
    }
    out[o] = '\0';
    return (ssize_t)o;
}

static int b64_value(char c, int url)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

/* Decodes unpadded input; rejects non-canonical trailing bits so that each
 * byte string has exactly one encoding (keys and signatures compare as text). */
static ssize_t b64_decode(int url, const char *in, size_t n, uint8_t *out, size_t outlen)
{
    if (n % 4 == 1)
        return -1;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (outlen < need)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in[i], url);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (ssize_t)o;
}

ssize_t el_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    return b64_encode(b64url_alpha, 0, in, n, out, outlen);
}

ssize_t el_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
    return b64_decode(1, in, n, out, outlen);
}

ssize_t el_b64_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    return b64_encode(b64_alpha, 1, in, n, out, outlen);
}

ssize_t el_b64_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
    if (n % 4 != 0)
        return -1;
    size_t pad = 0;
    while (pad < 2 && n > pad && in[n - 1 - pad] == '=')
        pad++;
    return b64_decode(0, in, n - pad, out, outlen);
}

ssize_t el_base32_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
    if (outlen < EL_BASE32_LEN(n) + 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | in[i]) & 0xffff;
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = alpha[acc >> bits & 31];
        }
    }
    if (bits > 0)
        out[o++] = alpha[acc << (5 - bits) & 31];
    out[o] = '\0';
    return (ssize_t)o;
}

ssize_t el_hex_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
    static const char digits[] = "0123456789abcdef";
    if (outlen < 2 * n + 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return (ssize_t)(2 * n);
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t el_hex_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
    if (n % 2 || outlen < n / 2)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_val(in[2 * i]), lo = hex_val(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (ssize_t)(n / 2);
}

int el_is_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int el_b64url_token(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}
