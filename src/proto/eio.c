/* eio.c - Engine.IO v4 codec (see eio.h). */
#include "proto/eio.h"

#include <stdio.h>
#include <string.h>

int el_eio_parse(const char *buf, size_t len, el_eio_packet *out)
{
    if (len == 0)
        return -1;
    if (buf[0] == 'b') {
        out->type = EL_EIO_MESSAGE;
        out->binary = 1;
        out->data = buf + 1;
        out->len = len - 1;
        return 0;
    }
    if (buf[0] < '0' || buf[0] > '6')
        return -1;
    out->type = (el_eio_type)(buf[0] - '0');
    out->binary = 0;
    out->data = buf + 1;
    out->len = len - 1;
    return 0;
}

int el_eio_payload_next(const char *body, size_t len, size_t *pos, el_eio_packet *out)
{
    if (*pos > len || (*pos == len && len > 0))
        return 0;
    if (len == 0) {
        *pos = 1;
        return -1; /* an empty body carries no packet: the client is broken */
    }
    const char *start = body + *pos;
    const char *rs = memchr(start, EL_EIO_RS, len - *pos);
    size_t n = rs ? (size_t)(rs - start) : len - *pos;
    *pos += n + 1; /* past the separator, or one past the end */
    if (rs && *pos == len)
        return -1; /* trailing separator: an empty final record */
    return el_eio_parse(start, n, out) == 0 ? 1 : -1;
}

int el_eio_open_json(char *out, size_t outlen, const char *sid, int can_upgrade,
                     unsigned ping_interval_ms, unsigned ping_timeout_ms,
                     unsigned long max_payload)
{
    int n = snprintf(out, outlen,
                     "{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,"
                     "\"pingTimeout\":%u,\"maxPayload\":%lu}",
                     sid, can_upgrade ? "\"websocket\"" : "", ping_interval_ms,
                     ping_timeout_ms, max_payload);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}
