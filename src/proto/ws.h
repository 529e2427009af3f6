/* ws.h - RFC 6455 WebSocket, server side: the opening handshake's request
 * head, the accept key, frames in (client frames, masked) and frames out
 * (server frames, unmasked). No I/O: the caller reads and writes.
 *
 * Why it exists: echolinkd speaks WebSocket itself on sockets libwebsockets
 * holds in its "raw" role (src/server/rawws.c), so that an idle connection
 * costs no lws receive buffer. The decoder state below is what each such
 * connection carries instead.
 *
 * Frame layout (RFC 6455 §5.2), all lengths big-endian:
 *
 *   byte 0   FIN(0x80) RSV1-3(0x70) opcode(0x0f)
 *   byte 1   MASK(0x80) len7(0x7f): 0..125 the length; 126: 16-bit length
 *            follows; 127: 64-bit length follows (top bit must be 0)
 *   [2 or 8] extended length
 *   [4]      masking key (client frames always, server frames never)
 *   payload  client: byte i XOR key[i % 4]
 *
 * A client header is 6, 8 or 14 bytes; a server header 2, 4 or 10. */
#ifndef EL_WS_H
#define EL_WS_H

#include <stddef.h>
#include <stdint.h>

/* --- handshake ------------------------------------------------------- */

typedef struct {
    const char *path;
    size_t path_len;    /* request target up to '?' (points into buf) */
    const char *query;
    size_t query_len;   /* after '?', or NULL/0 when there is no '?' */
    const char *key;
    size_t key_len;     /* Sec-WebSocket-Key value, trimmed; NULL/0 when absent or repeated */
    int version;        /* Sec-WebSocket-Version (1-3 digits, once), or 0 */
    int upgrade_websocket;  /* "websocket" among Upgrade's tokens (case-insensitive) */
    int connection_upgrade; /* "upgrade" among Connection's comma-separated tokens */
    int is_get;             /* method is GET */
} el_ws_head;

/* Parses an HTTP/1.1 request head at buf[0..len). Returns the head's length
 * including the final CRLFCRLF when complete (h filled; pointers into buf,
 * valid as long as buf), 0 when more bytes are needed, or -1 when it is not
 * a well-formed HTTP/1.x request head or no head ends within the first
 * EL_WS_HEAD_MAX bytes (so a head of exactly EL_WS_HEAD_MAX bytes is
 * accepted, and 0 is only returned while len < EL_WS_HEAD_MAX).
 *
 * Strict on purpose: what is refused goes to lws's own HTTP server, which
 * answers it as it always did. So:
 *   - lines end in CRLF only; a bare LF or a bare CR is -1 (RFC 9112 §2.2
 *     allows, not requires, accepting a bare LF; no client we serve sends
 *     one, and two readings of one head are how smuggling starts);
 *   - method is a token, target is 1+ visible ASCII bytes (0x21-0x7e),
 *     version is "HTTP/1." and one digit; one SP between them;
 *   - field names are tokens followed directly by ':' (no space before the
 *     colon), values are HT/SP/visible/obs-text (>= 0x80) bytes, obs-fold
 *     (a line starting with SP/HT) is -1, names are case-insensitive;
 *   - a request line or field line is refused (-1) as soon as a byte in it
 *     is wrong, before the line is complete: a TLS hello on the plain port
 *     is refused at its first byte.
 * h's contents are unspecified unless the result is > 0. */
#define EL_WS_HEAD_MAX 8192
int el_ws_head_parse(const char *buf, size_t len, el_ws_head *h);

/* The request line alone: 1 when it is complete and parsed (is_get, path,
 * query filled; the other fields zero), 0 when incomplete, -1 when
 * malformed (the same rules as above, and -1 when no line ends within
 * EL_WS_HEAD_MAX bytes). */
int el_ws_head_line(const char *buf, size_t len, el_ws_head *h);

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key + the RFC's
 * GUID)), 28 chars + NUL into out. Returns 0, or -1 when key is not the
 * canonical padded base64 of 16 bytes (24 chars; key may be NULL then) or
 * the hash fails (out is "" then). */
int el_ws_accept_key(const char *key, size_t key_len, char out[29]);

/* --- frames in ------------------------------------------------------- */

typedef enum {
    EL_WS_CONT = 0,
    EL_WS_TEXT = 1,
    EL_WS_BINARY = 2,
    EL_WS_CLOSE = 8,
    EL_WS_PING = 9,
    EL_WS_PONG = 10,
} el_ws_op;

/* Decoder state, embedded in the caller's per-connection struct: 48 bytes
 * on x86-64 (a static assert in ws.c keeps it so). Zeroed = ready. No
 * allocation while idle or for a frame that arrives whole in one feed; buf
 * exists only while a message or frame spans feeds or fragments, and is
 * freed as soon as it has been delivered.
 *
 * len/cap are 32-bit to stay within 48 bytes: the message limit is capped
 * at EL_WS_MAX_LIMIT (a larger max_message counts as that). While a control
 * frame that spans feeds interrupts a fragmented message, its payload (at
 * most 125 bytes) waits in buf after the message's bytes, so cap may reach
 * max_message + 125. Fields are private to ws.c. */
#define EL_WS_MAX_LIMIT ((size_t)UINT32_MAX - 256)
typedef struct {
    uint8_t *buf;      /* message (or control payload) being assembled */
    uint64_t left;     /* payload bytes of the current frame still to come;
                          0: a header is next (maybe partly in hdr) */
    uint32_t len, cap; /* bytes of the fragmented/spanning message in buf; buf's size */
    uint8_t hdr[14];   /* a frame header split across feeds */
    uint8_t hdr_len;
    uint8_t op;        /* opcode of the frame whose payload is being read */
    uint8_t fin;
    uint8_t msg_op;    /* TEXT/BINARY of a fragmented message in progress, or 0 */
    uint8_t mask[4];
    uint8_t mask_pos;  /* payload bytes of this frame seen so far, mod 4 */
    uint8_t ctl_got;   /* control payload bytes buffered after buf[len] */
} el_ws_rx;

/* A complete message (op TEXT or BINARY, fragments joined) or a control
 * frame (CLOSE, PING, PONG with its payload, at most 125 bytes). data is
 * writable and valid only during the call (never NULL, even when len is 0).
 * Return 0 to go on, anything else to stop: el_ws_rx_feed returns it. The
 * callback must not feed or reset the same el_ws_rx. */
typedef int (*el_ws_on_frame)(void *user, el_ws_op op, uint8_t *data, size_t len);

/* Feeds bytes read from the socket. `data` is writable: payloads are
 * unmasked in place, and a message whose whole frame (unfragmented) payload
 * lies in data is delivered straight from there with no copy (the common
 * case: one read holds whole frames); so is a control frame. Only a message
 * that spans feeds or fragments is copied into rx->buf (grown as needed,
 * never past max_message for the message itself).
 *
 * Returns 0 (all of data consumed), a non-zero value returned by the
 * callback, or an RFC 6455 close code with *why set to a short static
 * reason:
 *   1002 protocol error: unmasked client frame, RSV bits set (no
 *        extensions are negotiated), unknown opcode, control frame longer
 *        than 125 bytes or fragmented, CONT without a message in progress,
 *        TEXT/BINARY while a fragmented message is in progress, a 64-bit
 *        length with the top bit set, a CLOSE payload of 1 byte, a CLOSE
 *        code that may not be sent (RFC 6455 §7.4: valid are 1000-1003,
 *        1007-1014 and 3000-4999), so a caller may echo any code it gets.
 *        Non-minimal length encodings (126 + a 16-bit 5) are accepted.
 *   1009 message too big: a message (all its fragments) over max_message,
 *        detected at the header that would exceed it, before its payload.
 *   1011 out of memory growing rx->buf.
 * Errors are found as early as the bytes allow (the first two bytes of a
 * header decide most of them). After a non-zero return the state is
 * undefined until el_ws_rx_reset. Text is NOT checked for UTF-8 here, nor
 * is a CLOSE reason (the caller validates JSON/UTF-8). */
int el_ws_rx_feed(el_ws_rx *rx, uint8_t *data, size_t len, size_t max_message,
                  el_ws_on_frame cb, void *user, const char **why);

/* Frees rx->buf and zeroes the state (ready for a new stream). */
void el_ws_rx_reset(el_ws_rx *rx);

/* --- frames out ------------------------------------------------------ */

/* Writes the header of an unmasked, final server frame (2, 4 or 10 bytes)
 * for `op` and payload length `len` into out; returns its length. The
 * shortest length encoding is always used, as RFC 6455 §5.2 requires. */
size_t el_ws_frame_header(uint8_t out[10], el_ws_op op, uint64_t len);

/* A whole CLOSE frame with `code` and `reason` (NULL = none) into out,
 * which should hold 2 + 125 bytes; returns its length. The reason is cut
 * to fit 123 bytes and outlen, back to a UTF-8 character boundary (a cut
 * character would make the browser fail the close with 1007). code 0
 * writes a CLOSE with no payload (the peer then sees 1005, no status).
 * Returns 0 when outlen is too small for the header and code. */
size_t el_ws_close_frame(uint8_t *out, size_t outlen, uint16_t code, const char *reason);

#endif
