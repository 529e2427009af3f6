/* sio.c - Socket.IO v5 codec (see sio.h). */
#include "proto/sio.h"

#include "base/err.h"

#include <stdio.h>
#include <string.h>

int el_sio_parse(const char *buf, size_t len, el_sio_packet *out, char *err, size_t errlen)
{
    size_t i = 0;
    if (len == 0)
        return el_seterr(err, errlen, -1, "empty packet");
    if (buf[0] < '0' || buf[0] > '6')
        return el_seterr(err, errlen, -1, "unknown packet type '%c'", buf[0]);
    out->type = (el_sio_type)(buf[i++] - '0');
    out->attachments = 0;
    out->nsp = "/";
    out->nsp_len = 1;
    out->id = EL_SIO_NO_ID;
    out->data = NULL;
    out->data_len = 0;

    if (out->type == EL_SIO_BINARY_EVENT || out->type == EL_SIO_BINARY_ACK) {
        size_t start = i;
        unsigned n = 0;
        while (i < len && buf[i] >= '0' && buf[i] <= '9' && i - start < 3)
            n = n * 10 + (unsigned)(buf[i++] - '0');
        if (i == start || i >= len || buf[i] != '-')
            return el_seterr(err, errlen, -1, "bad attachment count");
        if (n > EL_SIO_MAX_ATTACHMENTS)
            return el_seterr(err, errlen, -1, "too many attachments");
        out->attachments = n;
        i++;
    }
    if (i < len && buf[i] == '/') {
        size_t start = i;
        while (i < len && buf[i] != ',')
            i++;
        out->nsp = buf + start;
        out->nsp_len = i - start;
        if (i < len)
            i++; /* the comma */
    }
    if (i < len && buf[i] >= '0' && buf[i] <= '9') {
        int64_t id = 0;
        size_t start = i;
        while (i < len && buf[i] >= '0' && buf[i] <= '9') {
            if (i - start >= 15)
                return el_seterr(err, errlen, -1, "ack id too long");
            id = id * 10 + (buf[i++] - '0');
        }
        out->id = id;
    }
    if (i < len) {
        out->data = buf + i;
        out->data_len = len - i;
    }
    switch (out->type) {
    case EL_SIO_DISCONNECT:
        if (out->data_len)
            return el_seterr(err, errlen, -1, "DISCONNECT carries no data");
        break;
    case EL_SIO_EVENT:
    case EL_SIO_BINARY_EVENT:
    case EL_SIO_ACK:
    case EL_SIO_BINARY_ACK:
        if (!out->data_len || out->data[0] != '[')
            return el_seterr(err, errlen, -1, "payload must be an array");
        break;
    case EL_SIO_CONNECT:
        if (out->data_len && out->data[0] != '{')
            return el_seterr(err, errlen, -1, "CONNECT payload must be an object");
        break;
    case EL_SIO_CONNECT_ERROR:
        return el_seterr(err, errlen, -1, "clients do not send CONNECT_ERROR");
    }
    if ((out->type == EL_SIO_ACK || out->type == EL_SIO_BINARY_ACK) && out->id == EL_SIO_NO_ID)
        return el_seterr(err, errlen, -1, "ACK without id");
    return 0;
}

int el_sio_nsp_is(const el_sio_packet *p, const char *name)
{
    size_t n = strlen(name);
    return p->nsp_len == n && memcmp(p->nsp, name, n) == 0;
}

/* Appends what to out[*n], if it fits before outlen - 1. */
static int put(char *out, size_t outlen, size_t *n, const char *what, size_t len)
{
    if (*n + len >= outlen)
        return -1;
    memcpy(out + *n, what, len);
    *n += len;
    return 0;
}

/* Every ack goes through here: no snprintf (a quarter of a microsecond per
 * call on the relay path). */
int el_sio_header(char *out, size_t outlen, el_sio_type type, const char *nsp, int64_t id)
{
    size_t n = 0;
    char d = (char)('0' + (int)type);
    if (put(out, outlen, &n, &d, 1) < 0)
        return -1;
    if (nsp && strcmp(nsp, "/") != 0 &&
        (put(out, outlen, &n, nsp, strlen(nsp)) < 0 || put(out, outlen, &n, ",", 1) < 0))
        return -1;
    if (id >= 0) {
        char digits[24];
        size_t k = sizeof digits;
        uint64_t v = (uint64_t)id;
        do {
            digits[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (put(out, outlen, &n, digits + k, sizeof digits - k) < 0)
            return -1;
    }
    if (n >= outlen)
        return -1;
    out[n] = '\0';
    return (int)n;
}
