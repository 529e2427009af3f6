/* sio.h - Socket.IO v5 packet codec (pure: no I/O, no allocation).
 *
 * Wire form (inside an Engine.IO message packet):
 *
 *   <type> [<attachments> "-"] ["/" <nsp> ","] [<ack id>] [<JSON data>]
 *
 * | type | name          | data                                   |
 * |------|---------------|----------------------------------------|
 * | 0    | CONNECT       | optional object (auth); reply: {"sid"} |
 * | 1    | DISCONNECT    | none                                   |
 * | 2    | EVENT         | array, first element the event name    |
 * | 3    | ACK           | array                                  |
 * | 4    | CONNECT_ERROR | object {"message"}                     |
 * | 5    | BINARY_EVENT  | as EVENT, with placeholders            |
 * | 6    | BINARY_ACK    | as ACK, with placeholders              |
 */
#ifndef EL_SIO_H
#define EL_SIO_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    EL_SIO_CONNECT = 0,
    EL_SIO_DISCONNECT = 1,
    EL_SIO_EVENT = 2,
    EL_SIO_ACK = 3,
    EL_SIO_CONNECT_ERROR = 4,
    EL_SIO_BINARY_EVENT = 5,
    EL_SIO_BINARY_ACK = 6,
} el_sio_type;

#define EL_SIO_NO_ID (-1)
#define EL_SIO_MAX_ATTACHMENTS 16

/* A parsed packet; nsp and data point into the parsed buffer. nsp is "/"
 * (static) when absent. data_len is 0 when there is no payload. */
typedef struct {
    el_sio_type type;
    unsigned attachments;
    const char *nsp;
    size_t nsp_len;
    int64_t id;
    const char *data;
    size_t data_len;
} el_sio_packet;

/* Parses the framing only; the JSON payload is checked by the caller (see
 * proto/json.h). Returns 0, or -1 with a reason in err. */
int el_sio_parse(const char *buf, size_t len, el_sio_packet *out, char *err, size_t errlen);

/* True when the namespace of p equals the NUL-terminated name. */
int el_sio_nsp_is(const el_sio_packet *p, const char *name);

/* Writes the packet header "<type>[nsp,][id]" for namespace nsp (NULL or "/"
 * for the default) into out; returns its length or -1 if it does not fit. */
int el_sio_header(char *out, size_t outlen, el_sio_type type, const char *nsp, int64_t id);

#endif
