/* dcep.c - see dcep.h. Pure: no I/O, no allocation. */
#include "rtc/dcep.h"

#include "base/err.h"
#include "base/utf8.h"

#include <string.h>

bool el_dcep_channel_type_valid(unsigned type)
{
    switch (type) {
    case EL_DCEP_RELIABLE:
    case EL_DCEP_RELIABLE_UNORDERED:
    case EL_DCEP_PARTIAL_RELIABLE_REXMIT:
    case EL_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED:
    case EL_DCEP_PARTIAL_RELIABLE_TIMED:
    case EL_DCEP_PARTIAL_RELIABLE_TIMED_UNORDERED:
        return true;
    }
    return false;
}

bool el_dcep_is_ordered(el_dcep_channel_type type)
{
    return ((unsigned)type & EL_DCEP_UNORDERED_BIT) == 0;
}

bool el_dcep_is_reliable(el_dcep_channel_type type)
{
    return ((unsigned)type & 0x7f) == 0;
}

bool el_dcep_stream_is_ours(uint16_t sid, bool dtls_client)
{
    return sid <= EL_DCEP_MAX_STREAM_ID && (sid % 2 == 0) == dtls_client;
}

uint16_t el_dcep_first_stream_id(bool dtls_client)
{
    return dtls_client ? 0 : 1;
}

uint32_t el_dcep_ppid_for(bool binary, size_t len)
{
    if (len == 0)
        return binary ? EL_PPID_BINARY_EMPTY : EL_PPID_STRING_EMPTY;
    return binary ? EL_PPID_BINARY : EL_PPID_STRING;
}

bool el_dcep_ppid_is_data(uint32_t ppid, bool *binary, bool *empty)
{
    switch (ppid) {
    case EL_PPID_STRING: *binary = false, *empty = false; return true;
    case EL_PPID_BINARY: *binary = true, *empty = false; return true;
    case EL_PPID_STRING_EMPTY: *binary = false, *empty = true; return true;
    case EL_PPID_BINARY_EMPTY: *binary = true, *empty = true; return true;
    }
    return false;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int el_dcep_parse(const uint8_t *buf, size_t len, el_dcep_msg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "empty DCEP message");
    out->type = buf[0];
    if (buf[0] == EL_DCEP_MSG_ACK) {
        if (len != 1)
            return el_seterr(err, errlen, EL_ERR_INVALID, "ACK: %zu bytes, expected 1", len);
        return EL_OK;
    }
    if (buf[0] != EL_DCEP_MSG_OPEN)
        return el_seterr(err, errlen, EL_ERR_INVALID, "unknown DCEP message type 0x%02x",
                         buf[0]);
    if (len < EL_DCEP_OPEN_HEADER)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "OPEN: truncated header (%zu of %d bytes)", len, EL_DCEP_OPEN_HEADER);
    el_dcep_open *o = &out->open;
    if (!el_dcep_channel_type_valid(buf[1]))
        return el_seterr(err, errlen, EL_ERR_INVALID, "OPEN: unknown channel type 0x%02x",
                         buf[1]);
    o->channel_type = (el_dcep_channel_type)buf[1];
    o->priority = rd16(buf + 2);
    o->reliability = el_dcep_is_reliable(o->channel_type) ? 0 : rd32(buf + 4);
    o->label_len = rd16(buf + 8);
    o->protocol_len = rd16(buf + 10);
    size_t left = len - EL_DCEP_OPEN_HEADER;
    if (o->label_len > left)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "OPEN: label length %u exceeds the %zu bytes left",
                         (unsigned)o->label_len, left);
    left -= o->label_len;
    if (o->protocol_len > left)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "OPEN: protocol length %u exceeds the %zu bytes left",
                         (unsigned)o->protocol_len, left);
    left -= o->protocol_len;
    if (left)
        return el_seterr(err, errlen, EL_ERR_INVALID, "OPEN: %zu trailing bytes", left);
    o->label = o->label_len ? buf + EL_DCEP_OPEN_HEADER : NULL;
    o->protocol = o->protocol_len ? buf + EL_DCEP_OPEN_HEADER + o->label_len : NULL;
    if (o->label_len && !el_utf8_valid(o->label, o->label_len))
        return el_seterr(err, errlen, EL_ERR_INVALID, "OPEN: label is not UTF-8");
    if (o->protocol_len && !el_utf8_valid(o->protocol, o->protocol_len))
        return el_seterr(err, errlen, EL_ERR_INVALID, "OPEN: protocol is not UTF-8");
    return EL_OK;
}

size_t el_dcep_size(const el_dcep_msg *msg)
{
    if (msg->type == EL_DCEP_MSG_ACK)
        return 1;
    if (msg->type == EL_DCEP_MSG_OPEN)
        return EL_DCEP_OPEN_HEADER + (size_t)msg->open.label_len + msg->open.protocol_len;
    return 0;
}

int el_dcep_write(const el_dcep_msg *msg, uint8_t *out, size_t outlen)
{
    size_t need = el_dcep_size(msg);
    if (need == 0)
        return EL_ERR_INVALID;
    if (msg->type == EL_DCEP_MSG_OPEN) {
        const el_dcep_open *o = &msg->open;
        if (!el_dcep_channel_type_valid(o->channel_type) || (o->label_len && !o->label) ||
            (o->protocol_len && !o->protocol) ||
            (o->label_len && !el_utf8_valid(o->label, o->label_len)) ||
            (o->protocol_len && !el_utf8_valid(o->protocol, o->protocol_len)))
            return EL_ERR_INVALID;
    }
    if (outlen < need)
        return EL_ERR_TOO_LARGE;
    out[0] = msg->type;
    if (msg->type == EL_DCEP_MSG_OPEN) {
        const el_dcep_open *o = &msg->open;
        out[1] = (uint8_t)o->channel_type;
        wr16(out + 2, o->priority);
        wr32(out + 4, el_dcep_is_reliable(o->channel_type) ? 0 : o->reliability);
        wr16(out + 8, o->label_len);
        wr16(out + 10, o->protocol_len);
        if (o->label_len)
            memmove(out + EL_DCEP_OPEN_HEADER, o->label, o->label_len);
        if (o->protocol_len)
            memmove(out + EL_DCEP_OPEN_HEADER + o->label_len, o->protocol, o->protocol_len);
    }
    return (int)need;
}
