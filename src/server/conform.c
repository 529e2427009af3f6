/* conform.c - the handlers the official Socket.IO protocol suites expect
 * (`echolinkd --conformance`): on connect emit "auth" with the CONNECT
 * payload; echo "message" as "message-back"; answer "message-with-ack" with
 * its own arguments. Replies reuse the received JSON bytes, because the
 * suites compare packets as strings. */
#include "server/server_int.h"

#include "proto/json.h"
#include "proto/sio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int el_conform_connect(el_conn *c, const char *nsp, const char *auth, size_t auth_len)
{
    char hdr[96];
    int n = el_sio_header(hdr, sizeof hdr, EL_SIO_EVENT, nsp, EL_SIO_NO_ID);
    if (!auth_len) {
        auth = "{}";
        auth_len = 2;
    }
    size_t total = 1 + (size_t)n + 8 + auth_len + 1;
    el_pkt *p = el_pkt_new(total);
    if (!p)
        return -1;
    int m = snprintf((char *)p->buf + LWS_PRE, total + 1, "4%s[\"auth\",%.*s]", hdr, (int)auth_len, auth);
    p->len = (size_t)m;
    return el_conn_send_pkt(c, p);
}

static int send_parts(el_conn *c, const char *hdr, const char *mid, const char *rest, size_t rlen,
                      el_pkt *bins)
{
    size_t hl = strlen(hdr), ml = strlen(mid);
    el_pkt *p = el_pkt_new(1 + hl + ml + rlen);
    if (!p)
        return -1;
    char *o = (char *)p->buf + LWS_PRE;
    o[0] = '4';
    memcpy(o + 1, hdr, hl);
    memcpy(o + 1 + hl, mid, ml);
    memcpy(o + 1 + hl + ml, rest, rlen);
    if (el_conn_send_pkt(c, p) < 0)
        return -1;
    while (bins) {
        el_pkt *next = bins->next;
        if (el_conn_send_pkt(c, bins) < 0) {
            bins = next;
            while (bins) {
                next = bins->next;
                free(bins);
                bins = next;
            }
            return -1;
        }
        bins = next;
    }
    return 0;
}

int el_conform_event(el_conn *c, const char *nsp, const char *data, size_t len, int64_t id,
                     int binary_type, unsigned attachments, el_pkt *bins)
{
    jsmntok_t tok[256];
    el_json j;
    char err[64];
    int ok = el_json_scan(&j, data, len, tok, 256, 32, err, sizeof err) == 0 &&
             j.tok[0].type == JSMN_ARRAY && j.tok[0].size >= 1;
    int name = ok ? 1 : -1;
    int is_msg = ok && el_json_str_is(&j, name, "message") && !strcmp(nsp, "/");
    int is_ack = ok && el_json_str_is(&j, name, "message-with-ack") && !strcmp(nsp, "/");
    if (!is_msg && !(is_ack && id >= 0)) {
        while (bins) {
            el_pkt *n = bins->next;
            free(bins);
            bins = n;
        }
        return 0;
    }
    /* rest = everything after the event name, up to and including ']' */
    size_t name_end = (size_t)j.tok[name].end + 1;
    const char *rest = data + name_end;
    size_t rlen = len - name_end;
    char hdr[96];
    if (is_msg) {
        int n = binary_type ? snprintf(hdr, sizeof hdr, "5%u-", attachments)
                            : el_sio_header(hdr, sizeof hdr, EL_SIO_EVENT, nsp, EL_SIO_NO_ID);
        (void)n;
        return send_parts(c, hdr, "[\"message-back\"", rest, rlen, bins);
    }
    /* ack: the arguments without the event name: "[" + rest minus its comma */
    if (binary_type)
        snprintf(hdr, sizeof hdr, "6%u-%lld", attachments, (long long)id);
    else
        el_sio_header(hdr, sizeof hdr, EL_SIO_ACK, nsp, id);
    if (rlen && rest[0] == ',') {
        rest++;
        rlen--;
    }
    return send_parts(c, hdr, "[", rest, rlen, bins);
}
