/* socket.c - Socket.IO v5 on top of an Engine.IO session.
 *
 * Framing errors (an unknown packet type, an event whose payload is not an
 * array, attachments out of order) end the whole connection, as the
 * reference server does; content errors in a well-framed event (bad JSON,
 * too large, rate limit) get an error ack and the connection stays. */
#include "server/server_int.h"

#include "base/log.h"
#include "proto/json.h"
#include "proto/sio.h"

#include <stdlib.h>
#include <string.h>

#define NSP_MAIN 1u
#define NSP_CUSTOM 2u /* conformance suite only */
#define FLOOD_WINDOW_US (10 * 1000000)
#define FLOOD_MAX_REJECTED 200

struct el_binpend {
    el_sio_type type;
    char nsp[64];
    int64_t id;
    unsigned need;
    unsigned have;
    char *data;
    size_t data_len;
    el_pkt *bins, *bins_tail;
};

static void binpend_free(el_binpend *b)
{
    if (!b)
        return;
    el_pkt *p = b->bins;
    while (p) {
        el_pkt *n = p->next;
        free(p);
        p = n;
    }
    free(b->data);
    free(b);
}

static int protocol_error(el_conn *c, const char *why)
{
    c->srv->metrics.rejected[EL_REJ_PROTOCOL]++;
    EL_DEBUG("session %s: Socket.IO protocol error: %s", c->sid, why);
    el_conn_close(c, why, '1');
    return -1;
}

void el_socket_open(el_conn *c)
{
    (void)c; /* nothing is sent before the client's CONNECT */
}

void el_socket_closed(el_conn *c)
{
    binpend_free(c->binpend);
    c->binpend = NULL;
    if (c->nsps & NSP_MAIN)
        el_handlers_closed(c);
    c->nsps = 0;
}

static unsigned nsp_bit(el_conn *c, const el_sio_packet *p)
{
    if (el_sio_nsp_is(p, "/"))
        return NSP_MAIN;
    if (c->srv->cfg->conformance && el_sio_nsp_is(p, "/custom"))
        return NSP_CUSTOM;
    return 0;
}

/* Builds "4" + header + body into a packet and queues it. */
static int send_sio(el_conn *c, const char *hdr, size_t hlen, const char *a, size_t alen,
                    const char *b, size_t blen, const char *z, size_t zlen)
{
    el_pkt *p = el_pkt_new(1 + hlen + alen + blen + zlen);
    if (!p) {
        el_conn_close(c, "out of memory", '1');
        return -1;
    }
    unsigned char *o = p->buf + LWS_PRE;
    *o++ = '4';
    memcpy(o, hdr, hlen), o += hlen;
    if (alen)
        memcpy(o, a, alen), o += alen;
    if (blen)
        memcpy(o, b, blen), o += blen;
    if (zlen)
        memcpy(o, z, zlen);
    return el_conn_send_pkt(c, p);
}

static int on_connect(el_conn *c, const el_sio_packet *p)
{
    unsigned bit = nsp_bit(c, p);
    char hdr[96];
    if (!bit) {
        char nsp[64];
        snprintf(nsp, sizeof nsp, "%.*s", (int)(p->nsp_len < 60 ? p->nsp_len : 60), p->nsp);
        int n = el_sio_header(hdr, sizeof hdr, EL_SIO_CONNECT_ERROR, nsp, EL_SIO_NO_ID);
        static const char msg[] = "{\"message\":\"Invalid namespace\"}";
        return send_sio(c, hdr, (size_t)n, msg, sizeof msg - 1, NULL, 0, NULL, 0);
    }
    if (!c->sio_id[0])
        el_random_id(c->sio_id, EL_SID_LEN);
    c->nsps |= bit;
    const char *nsp = bit == NSP_CUSTOM ? "/custom" : "/";
    int n = el_sio_header(hdr, sizeof hdr, EL_SIO_CONNECT, nsp, EL_SIO_NO_ID);
    char body[64];
    int bn = snprintf(body, sizeof body, "{\"sid\":\"%s\"}", c->sio_id);
    if (send_sio(c, hdr, (size_t)n, body, (size_t)bn, NULL, 0, NULL, 0) < 0)
        return -1;
    if (c->srv->cfg->conformance) {
        c->guard_done = 1;
        el_tnode_cancel(&c->n_guard);
        return el_conform_connect(c, nsp, p->data, p->data_len);
    }
    return el_handlers_connect(c);
}

/* Token bucket: `rate` events per second, `burst` at once. */
static int rate_ok(el_conn *c)
{
    const el_server_config *cfg = c->srv->cfg;
    int64_t now = el_now_us();
    int64_t refill = (now - c->bucket_us) * cfg->rate / 1000;
    c->bucket_us = now;
    int64_t b = c->bucket + refill;
    if (b > (int64_t)cfg->burst * 1000)
        b = (int64_t)cfg->burst * 1000;
    if (b >= 1000) {
        c->bucket = (int32_t)(b - 1000);
        return 1;
    }
    c->bucket = (int32_t)b;
    if (now - c->reject_window_us > FLOOD_WINDOW_US) {
        c->reject_window_us = now;
        c->rejected = 0;
    }
    c->rejected++;
    return 0;
}

static int on_event(el_conn *c, const el_sio_packet *p)
{
    el_server *srv = c->srv;
    unsigned bit = nsp_bit(c, p);
    if (!bit || !(c->nsps & bit))
        return 0; /* not joined: ignored, as the reference server does */
    srv->metrics.events_total++;
    if (srv->cfg->conformance)
        return el_conform_event(c, bit == NSP_CUSTOM ? "/custom" : "/", p->data, p->data_len,
                                p->id, 0, 0, NULL);
    if (!rate_ok(c)) {
        if (c->rejected > FLOOD_MAX_REJECTED) {
            el_handlers_kick(c, "flood");
            return 0;
        }
        return el_handlers_reply_error(c, p->id, NULL, EL_REJ_RATE_LIMITED,
                                       "too many events; slow down");
    }
    if ((long)p->data_len > srv->cfg->max_event_size)
        return el_handlers_reply_error(c, p->id, NULL, EL_REJ_TOO_LARGE,
                                       "event larger than the server's limit");
    return el_handlers_event(c, p->data, p->data_len, p->id);
}

static int finish_binary(el_conn *c)
{
    el_binpend *b = c->binpend;
    c->binpend = NULL;
    int rc = 0;
    el_sio_packet p = {.nsp = b->nsp, .nsp_len = strlen(b->nsp), .id = b->id};
    unsigned bit = nsp_bit(c, &p);
    if (b->type == EL_SIO_BINARY_EVENT && bit && (c->nsps & bit)) {
        if (c->srv->cfg->conformance) {
            rc = el_conform_event(c, b->nsp, b->data, b->data_len, b->id, 1, b->need, b->bins);
            b->bins = NULL; /* taken */
        } else if (!rate_ok(c)) { /* a refused packet still counts */
            if (c->rejected > FLOOD_MAX_REJECTED)
                el_handlers_kick(c, "flood");
            else
                rc = el_handlers_reply_error(c, b->id, NULL, EL_REJ_RATE_LIMITED,
                                             "too many events; slow down");
        } else {
            rc = el_handlers_reply_error(c, b->id, NULL, EL_REJ_BINARY,
                                         "binary attachments are not accepted");
        }
    }
    binpend_free(b);
    return rc;
}

static int on_binary(el_conn *c, const char *data, size_t len)
{
    el_binpend *b = c->binpend;
    if (!b)
        return protocol_error(c, "binary message without a binary packet");
    if (!c->srv->cfg->conformance) {
        /* refused in any case (finish_binary): counted, never held, so
         * that 16 attachments of 1 MiB cannot pin 16 MiB per connection */
        if (++b->have < b->need)
            return 0;
        return finish_binary(c);
    }
    el_pkt *pk = el_pkt_new(len);
    if (!pk)
        return protocol_error(c, "out of memory");
    pk->binary = 1;
    memcpy(pk->buf + LWS_PRE, data, len);
    if (b->bins_tail)
        b->bins_tail->next = pk;
    else
        b->bins = pk;
    b->bins_tail = pk;
    if (++b->have < b->need)
        return 0;
    return finish_binary(c);
}

static int start_binary(el_conn *c, const el_sio_packet *p)
{
    el_binpend *b = calloc(1, sizeof *b);
    if (!b)
        return protocol_error(c, "out of memory");
    b->type = p->type;
    snprintf(b->nsp, sizeof b->nsp, "%.*s", (int)(p->nsp_len < 60 ? p->nsp_len : 60), p->nsp);
    b->id = p->id;
    b->need = p->attachments;
    if (c->srv->cfg->conformance) { /* only the conformance server reads them */
        b->data = malloc(p->data_len + 1);
        if (!b->data) {
            free(b);
            return protocol_error(c, "out of memory");
        }
        memcpy(b->data, p->data, p->data_len);
        b->data_len = p->data_len;
    }
    c->binpend = b;
    if (b->need == 0)
        return finish_binary(c);
    return 0;
}

int el_socket_message(el_conn *c, const char *data, size_t len, int binary)
{
    if (binary)
        return on_binary(c, data, len);
    if (c->binpend)
        return protocol_error(c, "text packet while attachments were expected");
    el_sio_packet p;
    char err[96];
    if (el_sio_parse(data, len, &p, err, sizeof err) < 0)
        return protocol_error(c, err);
    switch (p.type) {
    case EL_SIO_CONNECT:
        return on_connect(c, &p);
    case EL_SIO_DISCONNECT: {
        unsigned bit = nsp_bit(c, &p);
        if (bit == NSP_MAIN && (c->nsps & NSP_MAIN) && !c->srv->cfg->conformance)
            el_handlers_closed(c);
        c->nsps &= ~bit;
        return 0;
    }
    case EL_SIO_EVENT:
        return on_event(c, &p);
    case EL_SIO_BINARY_EVENT:
    case EL_SIO_BINARY_ACK:
        return start_binary(c, &p);
    case EL_SIO_ACK:
        return 0; /* the server never asks clients for acks */
    default:
        return protocol_error(c, "unexpected packet type");
    }
}

int el_socket_emit(el_conn *c, const char *name, const char *json, size_t len)
{
    if (c->closed)
        return -1;
    size_t nlen = strlen(name);
    el_pkt *p = el_pkt_new(2 + 2 + nlen + 2 + len + 1);
    if (!p) {
        el_conn_close(c, "out of memory", '1');
        return -1;
    }
    unsigned char *o = p->buf + LWS_PRE;
    memcpy(o, "42[\"", 4), o += 4;
    memcpy(o, name, nlen), o += nlen;
    *o++ = '"';
    if (len) {
        *o++ = ',';
        memcpy(o, json, len), o += len;
    }
    *o++ = ']';
    p->len = (size_t)(o - (p->buf + LWS_PRE));
    return el_conn_send_pkt(c, p);
}

int el_socket_ack(el_conn *c, const char *nsp, int64_t id, const char *json, size_t len)
{
    if (c->closed)
        return -1;
    char hdr[96];
    int n = el_sio_header(hdr, sizeof hdr, EL_SIO_ACK, nsp, id);
    return send_sio(c, hdr, (size_t)n, "[", 1, json, len, "]", 1);
}

int el_socket_disconnect(el_conn *c)
{
    if (c->closed)
        return -1;
    if (c->nsps & NSP_MAIN)
        el_handlers_closed(c);
    c->nsps &= ~NSP_MAIN;
    return el_conn_send(c, EL_EIO_MESSAGE, "1", 1);
}
