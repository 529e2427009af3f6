/* eio.h - Engine.IO v4 packet codec (pure: no I/O, no allocation).
 *
 * Text packets are one type digit followed by data ("4hello"). Over
 * HTTP long-polling several packets travel in one body, separated by the
 * record separator 0x1e; a binary packet there is "b" + standard base64 of
 * the bytes. Over WebSocket each frame is one packet, and a binary frame is a
 * message packet whose bytes are the frame. */
#ifndef EL_EIO_H
#define EL_EIO_H

#include <stddef.h>

typedef enum {
    EL_EIO_OPEN = 0,
    EL_EIO_CLOSE = 1,
    EL_EIO_PING = 2,
    EL_EIO_PONG = 3,
    EL_EIO_MESSAGE = 4,
    EL_EIO_UPGRADE = 5,
    EL_EIO_NOOP = 6,
} el_eio_type;

#define EL_EIO_RS '\x1e'

/* One decoded packet. `data` points into the parsed buffer (text packets) and
 * lives as long as that buffer. For a polling binary record ("b..."), `binary`
 * is 1 and `data` is the base64 text, which the caller decodes. */
typedef struct {
    el_eio_type type;
    int binary;
    const char *data;
    size_t len;
} el_eio_packet;

/* Parses one text packet (a WebSocket text frame or one polling record).
 * Returns 0, or -1 when the packet is empty or its type is unknown. */
int el_eio_parse(const char *buf, size_t len, el_eio_packet *out);

/* Iterates the records of a polling body: call with *pos = 0 first; returns 1
 * with the next packet, 0 at the end, -1 on a malformed record. */
int el_eio_payload_next(const char *body, size_t len, size_t *pos, el_eio_packet *out);

/* Writes the open packet's JSON into out (NUL-terminated); returns its length
 * or -1 if outlen is too small. */
int el_eio_open_json(char *out, size_t outlen, const char *sid, int can_upgrade,
                     unsigned ping_interval_ms, unsigned ping_timeout_ms,
                     unsigned long max_payload);

#endif
