/* sctp.h - one SCTP association over an abstract packet transport (DTLS
 * below it), with WebRTC data channels on top: DCEP (RFC 8832) or
 * pre-negotiated stream ids, PPIDs and empty messages (RFC 8831 §6.6),
 * partial reliability, bufferedAmount, and closing by stream reset
 * (RFC 8831 §6.7).
 *
 * Built on usrsctp over AF_CONN, initialised once per process with
 * usrsctp_init_nothreads: usrsctp starts no timer or receive threads, and
 * the owner of the event loop drives its timers by calling el_sctp_tick()
 * about every 10 ms. All el_sctp functions must be called from that one
 * thread; nothing here locks.
 *
 * Layering (STYLE.md §10): packets from below enter through
 * el_sctp_input(); packets for below leave through cb->send; messages from
 * above enter through el_sctp_send(); messages for above leave through
 * cb->on_message.
 *
 * When callbacks run. cb->send runs inside usrsctp whenever it emits a
 * packet, so from any el_sctp_* call except el_sctp_buffered and
 * el_sctp_set_buffered_low; it must only hand the packet on (e.g.
 * SSL_write + send a datagram) and must not call any el_sctp function.
 * Every other callback runs only from el_sctp_input() and el_sctp_tick(),
 * never from inside usrsctp, so it may call any el_sctp function,
 * including el_sctp_free() on its own association (the free is then
 * deferred until the callback returns). After el_sctp_free only cb->send
 * still runs, once, for the ABORT, before the free returns (or, deferred,
 * before the el_sctp call that ran the callback returns): free the
 * association before its transport. Work started by el_sctp_open_channel,
 * _send or _close_channel that ends in a callback (a negotiated channel
 * becoming open, a close completing) reports at the next el_sctp_input or
 * el_sctp_tick.
 *
 * Ids, not pointers (STYLE.md §8). usrsctp is handed a small integer per
 * association (as its AF_CONN address and upcall argument), never our
 * pointer; conn_output and the upcall look the id up in a process-wide
 * table, so a packet emitted for an association that was freed is dropped.
 *
 * Channels. A channel is named by its SCTP stream id (sid). DCEP channels
 * take the lowest free id of our parity (DTLS client even, server odd). A
 * DCEP channel we open may be sent on at once: until the peer's ACK (or
 * any message from the peer on that stream) arrives its messages go
 * ordered, as RFC 8832 §6 requires; it is reported open (remote=0) on the
 * ACK or the first data. A channel the peer opens is reported with
 * remote=1 after we queued the ACK. A negotiated channel is reported open
 * (remote=0) once the association is up. A received OPEN that breaks the
 * rules (our parity, a used stream, malformed) is refused by resetting the
 * stream, without an ACK; user data on an unused stream likewise; so is an
 * OPEN that would make more than EL_SCTP_MAX_CHANNELS channels.
 *
 * Sending and bufferedAmount. usrsctp takes a whole message or nothing
 * (SCTP_EXPLICIT_EOR is not used), into a send buffer of
 * EL_SCTP_SNDBUF bytes. What it cannot take yet waits in our per-channel
 * queue, in order; el_sctp_buffered() is the user bytes in that queue (as
 * Chromium's usrsctp-era transport and libdatachannel count it), so it
 * rises once the association's send buffer is full. Queued messages go to
 * usrsctp as space frees (after every input packet, send-space upcall,
 * SCTP_SENDER_DRY event and tick); when a channel's amount falls from above
 * its threshold to at or below it, on_buffered_low fires. At most
 * EL_SCTP_MAX_QUEUED bytes wait per association (EL_ERR_QUOTA beyond).
 *
 * Receiving. Messages are reassembled until MSG_EOR, per stream, up to
 * EL_SCTP_MAX_MESSAGE_SIZE (what we advertise in a=max-message-size); a
 * larger one is dropped and its channel closed.
 *
 * Closing. el_sctp_close_channel() lets the channel's queued messages go
 * out, then resets the outgoing stream; the peer answers by resetting its
 * own. A reset of the incoming stream by the peer makes us reset ours.
 * When both directions are reset, on_channel_closed fires (on both sides)
 * and the id may be used again. If the association goes down, every
 * channel the user knows is reported closed, then on_state(0).
 *
 * Errors are el_err codes (base/err.h). */
#ifndef EL_RTC_SCTP_H
#define EL_RTC_SCTP_H

#include <stddef.h>
#include <stdint.h>

#define EL_SCTP_PORT 5000                 /* a=sctp-port, both ends */
#define EL_SCTP_MAX_MESSAGE_SIZE 262144   /* largest message we accept (a=max-message-size) */
#define EL_SCTP_DEFAULT_REMOTE_MAX 65536  /* peer's limit when its SDP has no a=max-message-size */
/* Largest SCTP packet handed to cb->send: one DTLS 1.2 AEAD record of it
 * (13 header + 8 nonce + 16 tag = 37 bytes more) fits a 1200-byte DTLS
 * datagram. Path-MTU discovery is off. */
#define EL_SCTP_MTU 1160
#define EL_SCTP_SNDBUF (1024 * 1024)      /* usrsctp send buffer (SO_SNDBUF) */
#define EL_SCTP_RCVBUF (1024 * 1024)      /* usrsctp receive buffer, our rwnd (SO_RCVBUF) */
#define EL_SCTP_STREAMS 1024              /* outgoing streams asked for in INIT; more are added on
                                             demand (SCTP_ADD_STREAMS); we accept up to 65535 in */
#define EL_SCTP_MAX_QUEUED (16u * 1024 * 1024) /* bytes we queue above usrsctp, per association */
/* Retransmission timer and SACK delay. usrsctp's defaults are RFC 4960's
 * (RTO 3 s initial, 1 s min, 60 s max; SACK after 200 ms), tuned for the
 * Internet of 2000 and for TCP-like links: on a lossy path (a phone on
 * Wi-Fi) one lost packet costs a second and a few in a row push the timer
 * to a minute, while our own ICE layer already decides when a path is
 * dead. These are the values TCP on Linux and other WebRTC stacks use:
 * first retransmission after 1 s before any RTT is known, never sooner
 * than 200 ms, never later than 10 s; SACK after 20 ms. */
#define EL_SCTP_RTO_INITIAL_MS 1000
#define EL_SCTP_RTO_MIN_MS 200
#define EL_SCTP_RTO_MAX_MS 10000
#define EL_SCTP_SACK_DELAY_MS 20
/* Liveness. A HEARTBEAT goes out every EL_SCTP_HB_INTERVAL_MS (plus 0.5-1.5
 * RTO) on an idle path, so an association never stays silent for long: an
 * el_peer's ICE layer reads silence as a dead path (rtc/ice.h silence_ms)
 * instead of libnice's unretransmitted consent checks. SCTP gives up on the
 * path and the association only after EL_SCTP_MAX_RETRANSMITS timeouts in a
 * row, about 4.5 minutes with the timers above: RFC 4960's 5 (path) and 10
 * (association) took 30 s and 75 s with a 10 s RTO cap, and whether a
 * connection is worth keeping through an outage is the application's call
 * (the client's link renegotiates after 12 s). */
#define EL_SCTP_HB_INTERVAL_MS 2000
#define EL_SCTP_MAX_RETRANSMITS 30
/* Channels alive at once per association, both sides' together (streams
 * being refused included). Each costs a struct, its label and protocol (up
 * to 64 KiB each) here and in el_peer; a peer that opens thousands would
 * otherwise make us hold them all. A DCEP OPEN from the peer that finds
 * this many is refused by resetting its stream (no ACK) and logged. Our
 * own opens count toward the cap but are never refused by it: they are
 * the application's choice. libwebrtc stops at 511 channels of its own;
 * 1024 is far above what EchoLink uses (chat + one channel per file
 * transfer). */
#define EL_SCTP_MAX_CHANNELS 1024

typedef struct el_sctp el_sctp;

/* Strings passed to callbacks are valid for the call only. */
typedef struct {
    /* an SCTP packet for the transport below (DTLS). See "When callbacks run". */
    void (*send)(void *user, const uint8_t *pkt, size_t len);
    /* the association is up (up=1) or gone for good (up=0, why says how) */
    void (*on_state)(void *user, int up, const char *why);
    /* remote=1: the peer opened sid by DCEP OPEN (we ACKed);
     * remote=0: our DCEP OPEN was ACKed (or data came first), or our
     * negotiated channel is ready */
    void (*on_channel_open)(void *user, uint16_t sid, const char *label, const char *protocol,
                            int remote);
    /* one complete message; empty messages (PPID 56/57) arrive as len 0 */
    void (*on_message)(void *user, uint16_t sid, int binary, const uint8_t *data, size_t len);
    /* both directions of sid are reset (or the association is gone, or our
     * OPEN was refused); the id is free again */
    void (*on_channel_closed)(void *user, uint16_t sid);
    /* el_sctp_buffered(sid) fell from above the threshold to at or below it */
    void (*on_buffered_low)(void *user, uint16_t sid);
} el_sctp_callbacks;

/* Creates an association endpoint. dtls_client: our DTLS role (stream
 * parity). remote_max_message_size: the peer's a=max-message-size (pass
 * EL_SCTP_DEFAULT_REMOTE_MAX when it had none; 0 means "no limit", which we
 * cap at EL_SCTP_SNDBUF). cb is copied; cb->send is required, the others
 * may be NULL. Initialises usrsctp on first use. Returns NULL with the
 * reason in err. */
el_sctp *el_sctp_new(int dtls_client, size_t remote_max_message_size, const el_sctp_callbacks *cb,
                     void *user, char *err, size_t errlen);

/* Sets what el_sctp_new was told (the DTLS role, which picks our stream
 * ids, and the peer's a=max-message-size) once the remote description has
 * said it, so that the endpoint can be made before negotiation. Only before
 * el_sctp_connect: EL_OK or EL_ERR_INVALID. */
int el_sctp_set_peer(el_sctp *s, int dtls_client, size_t remote_max_message_size);

/* Starts the association (INIT). Call it as soon as DTLS is connected and
 * before the first el_sctp_input; both sides call it (simultaneous open).
 * EL_OK, EL_ERR_INVALID (called twice) or EL_ERR_IO. */
int el_sctp_connect(el_sctp *s);

/* One SCTP packet from the transport (a decrypted DTLS record). usrsctp
 * checks it; a bad packet is dropped silently. EL_OK, EL_ERR_INVALID (not
 * connected yet, empty packet). May run any callback. */
int el_sctp_input(el_sctp *s, const uint8_t *pkt, size_t len);

/* Opens a channel. label/protocol: UTF-8, at most 65535 bytes each, copied
 * (NULL = ""). ordered: 0 for unordered. max_retransmits / max_lifetime_ms:
 * -1 for none; setting both is EL_ERR_INVALID. negotiated_id: -1 to
 * announce the channel with DCEP on the lowest free id of our parity, or a
 * stream id 0..65534 agreed out of band (no DCEP; the peer opens it with the
 * same id). May be called before the association is up. Stores the id in
 * *sid_out (may be NULL). Errors: EL_ERR_INVALID, EL_ERR_EXISTS (id in use),
 * EL_ERR_QUOTA (no id left), EL_ERR_IO (association gone), EL_ERR_NOMEM. */
int el_sctp_open_channel(el_sctp *s, const char *label, const char *protocol, int ordered,
                         int max_retransmits, int max_lifetime_ms, int negotiated_id,
                         uint16_t *sid_out);

/* Sends one message (binary: PPID 53/57, else text 51/56; len 0 is an empty
 * message). data is copied when it has to wait. Errors: EL_ERR_NOT_FOUND
 * (no such channel), EL_ERR_INVALID (channel closing), EL_ERR_TOO_LARGE
 * (len above the peer's max-message-size: refused, nothing sent),
 * EL_ERR_QUOTA (EL_SCTP_MAX_QUEUED reached), EL_ERR_IO (association gone),
 * EL_ERR_NOMEM. */
int el_sctp_send(el_sctp *s, uint16_t sid, int binary, const uint8_t *data, size_t len);
/* 0 when el_sctp_send of len bytes on sid would be taken now, else the
 * error it would give for a reason known beforehand (all but NOMEM).
 * Stricter than the send on one point: with the association's queue this
 * full, QUOTA even for a channel whose message could leave at once. */
int el_sctp_send_check(const el_sctp *s, uint16_t sid, size_t len);

/* User bytes queued on sid and not yet taken by usrsctp (0 for no channel). */
size_t el_sctp_buffered(const el_sctp *s, uint16_t sid);
/* Threshold for on_buffered_low (default 0). */
void el_sctp_set_buffered_low(el_sctp *s, uint16_t sid, size_t threshold);

/* Starts closing sid (outgoing stream reset after its queue drains);
 * on_channel_closed follows. EL_OK (also when already closing) or
 * EL_ERR_NOT_FOUND. */
int el_sctp_close_channel(el_sctp *s, uint16_t sid);

/* Aborts the association (an SCTP ABORT through cb->send, the only
 * callback that still runs) and frees everything; NULL is a no-op. From
 * inside one of s's callbacks the free is deferred until the callback
 * returns. The last free in the process shuts usrsctp down (or, if usrsctp
 * still has sockets closing, the next el_sctp_tick retries). */
void el_sctp_free(el_sctp *s);

/* Drives usrsctp's timers by elapsed_ms and services every association
 * (queued sends, events). usrsctp's clock is process-wide: exactly one
 * periodic caller per process (the loop owner's ~10 ms timer), not one per
 * association, or time runs too fast. Harmless when no el_sctp exists. */
void el_sctp_tick(uint32_t elapsed_ms);

#endif
