/* dcep.h - pure codec for the Data Channel Establishment Protocol
 * (RFC 8832), the messages that open a WebRTC data channel on an SCTP
 * stream, plus the SCTP payload protocol identifiers of RFC 8831 §8 and the
 * stream-id parity rule. No I/O, no allocation.
 *
 * Messages travel on the channel's SCTP stream with PPID 50
 * (EL_PPID_DCEP), all integers in network byte order.
 *
 * DATA_CHANNEL_OPEN (RFC 8832 §5.1), 12 + label_len + protocol_len bytes:
 *
 *   | offset | size         | field              | notes                            |
 *   |--------|--------------|--------------------|----------------------------------|
 *   | 0      | 1            | message type       | 0x03                             |
 *   | 1      | 1            | channel type       | el_dcep_channel_type             |
 *   | 2      | 2            | priority           | 128/256/512/1024 (§6.4), any OK  |
 *   | 4      | 4            | reliability param. | rexmits (REXMIT), ms (TIMED);    |
 *   |        |              |                    | 0 for reliable (ignored on read) |
 *   | 8      | 2            | label length       | bytes                            |
 *   | 10     | 2            | protocol length    | bytes                            |
 *   | 12     | label len    | label              | UTF-8, not NUL-terminated        |
 *   | 12+L   | protocol len | protocol           | UTF-8, not NUL-terminated        |
 *
 * DATA_CHANNEL_ACK (RFC 8832 §5.2), 1 byte:
 *
 *   | offset | size | field        | notes |
 *   |--------|------|--------------|-------|
 *   | 0      | 1    | message type | 0x02  |
 *
 * Channel types (high bit 0x80 = unordered):
 *
 *   | value | name                                  | reliability parameter  |
 *   |-------|---------------------------------------|------------------------|
 *   | 0x00  | DATA_CHANNEL_RELIABLE                 | ignored (0)            |
 *   | 0x80  | DATA_CHANNEL_RELIABLE_UNORDERED       | ignored (0)            |
 *   | 0x01  | DATA_CHANNEL_PARTIAL_RELIABLE_REXMIT  | max retransmissions    |
 *   | 0x81  | ..._REXMIT_UNORDERED                  | max retransmissions    |
 *   | 0x02  | DATA_CHANNEL_PARTIAL_RELIABLE_TIMED   | lifetime in ms         |
 *   | 0x82  | ..._TIMED_UNORDERED                   | lifetime in ms         |
 *
 * The parser is strict: a frame must be exactly as long as its fields say,
 * the type must be one of the above, label and protocol must be UTF-8.
 * Stream ids (RFC 8832 §6): the DTLS client (a=setup:active side) opens
 * channels on even ids, the DTLS server on odd ones; 65535 is reserved. */
#ifndef EL_RTC_DCEP_H
#define EL_RTC_DCEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SCTP payload protocol identifiers (RFC 8831 §8, RFC 8832 §8.1). */
enum {
    EL_PPID_DCEP = 50,
    EL_PPID_STRING = 51,
    EL_PPID_BINARY_PARTIAL = 52, /* deprecated: never sent, refused on receipt */
    EL_PPID_BINARY = 53,
    EL_PPID_STRING_PARTIAL = 54, /* deprecated: never sent, refused on receipt */
    EL_PPID_STRING_EMPTY = 56,   /* an empty string; the payload is one ignored byte */
    EL_PPID_BINARY_EMPTY = 57,   /* an empty binary message; likewise */
};

/* DCEP message types. */
enum {
    EL_DCEP_MSG_ACK = 0x02,
    EL_DCEP_MSG_OPEN = 0x03,
};

typedef enum {
    EL_DCEP_RELIABLE = 0x00,
    EL_DCEP_RELIABLE_UNORDERED = 0x80,
    EL_DCEP_PARTIAL_RELIABLE_REXMIT = 0x01,
    EL_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED = 0x81,
    EL_DCEP_PARTIAL_RELIABLE_TIMED = 0x02,
    EL_DCEP_PARTIAL_RELIABLE_TIMED_UNORDERED = 0x82,
} el_dcep_channel_type;

#define EL_DCEP_UNORDERED_BIT 0x80

/* Priorities of RFC 8832 §6.4 (WebRTC priority very-low/low/medium/high). */
enum {
    EL_DCEP_PRIORITY_BELOW_NORMAL = 128,
    EL_DCEP_PRIORITY_NORMAL = 256,
    EL_DCEP_PRIORITY_HIGH = 512,
    EL_DCEP_PRIORITY_EXTRA_HIGH = 1024,
};

#define EL_DCEP_OPEN_HEADER 12           /* bytes before the label */
#define EL_DCEP_MAX_STREAM_ID 65534      /* 65535 is reserved (RFC 8831 §6.5) */

typedef struct {
    el_dcep_channel_type channel_type;
    uint16_t priority;
    uint32_t reliability; /* parse stores 0 for the reliable types */
    const uint8_t *label; /* borrowed: points into the parsed buffer (or the */
    uint16_t label_len;   /* caller's string for write); NULL allowed if len 0 */
    const uint8_t *protocol;
    uint16_t protocol_len;
} el_dcep_open;

typedef struct {
    uint8_t type;         /* EL_DCEP_MSG_OPEN or EL_DCEP_MSG_ACK */
    el_dcep_open open;    /* valid when type == EL_DCEP_MSG_OPEN */
} el_dcep_msg;

/* Parses one DCEP message (the whole SCTP message of PPID 50). On success
 * out->open.label/protocol point into buf, so they live as long as buf.
 * Returns EL_OK or EL_ERR_INVALID with the reason in err ("OPEN: label
 * length 9 exceeds the 4 bytes left"). */
int el_dcep_parse(const uint8_t *buf, size_t len, el_dcep_msg *out, char *err, size_t errlen);

/* Bytes el_dcep_write needs for msg (0 for an invalid message type). */
size_t el_dcep_size(const el_dcep_msg *msg);

/* Writes msg into out[0..outlen). Returns the number of bytes written,
 * EL_ERR_INVALID (unknown message or channel type, label/protocol not
 * UTF-8 or a NULL pointer with a length) or EL_ERR_TOO_LARGE (outlen too
 * small). A reliable type is written with reliability 0. */
int el_dcep_write(const el_dcep_msg *msg, uint8_t *out, size_t outlen);

/* Channel-type helpers. */
bool el_dcep_channel_type_valid(unsigned type);
bool el_dcep_is_ordered(el_dcep_channel_type type);
bool el_dcep_is_reliable(el_dcep_channel_type type);

/* Stream ids: true when sid belongs to the side whose DTLS role is given
 * (client: even, server: odd) and is not the reserved 65535. A peer's OPEN
 * on a stream id of our own parity is a protocol error (RFC 8832 §6). */
bool el_dcep_stream_is_ours(uint16_t sid, bool dtls_client);
/* First stream id a side may use: 0 for the DTLS client, 1 for the server. */
uint16_t el_dcep_first_stream_id(bool dtls_client);

/* PPID for an outgoing message (51/53, or 56/57 when len == 0; an empty
 * message is then sent as one byte, RFC 8831 §6.6). */
uint32_t el_dcep_ppid_for(bool binary, size_t len);

/* Classifies a received PPID: returns true for 51/53/56/57 and sets
 * *binary and *empty; false for anything else (50 is DCEP, 52/54 are the
 * deprecated partial PPIDs, other values unknown). */
bool el_dcep_ppid_is_data(uint32_t ppid, bool *binary, bool *empty);

#endif
