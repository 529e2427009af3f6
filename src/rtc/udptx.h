/* udptx.h - batched UDP sends on ICE's selected pair.
 *
 * Why. A bulk transfer sends one ~1.2 KB datagram per SCTP packet; through
 * libnice that is one sendmsg() each, and the kernel's per-datagram send path
 * was 43 % of the sending peer's CPU (bench/rtc.sh). el_udptx queues the
 * datagrams of one main-loop turn and sends them at its end in one
 * sendmmsg(): each run of equal-sized datagrams (a bulk burst is nearly all
 * full-size packets) goes as one UDP GSO message (UDP_SEGMENT, Linux 4.18+),
 * so the stack is walked once per run, not once per datagram. The receiver
 * still gets ordinary datagrams.
 *
 * When. Only for a selected pair that libnice exposes as a plain UDP socket
 * (nice_agent_get_selected_socket: not TURN-relayed, not TCP); everything
 * else keeps going through nice_agent_send(). The socket stays libnice's:
 * el_udptx holds a reference to the GSocket and checks it is still open
 * before each flush.
 *
 * Flush. A GSource on the caller's context flushes from its prepare()
 * (called before every poll of the context) at a priority above every other
 * source, so its prepare always runs: datagrams queued during one
 * iteration's dispatches leave before the thread sleeps. The queue is also
 * flushed when it is full, when the path changes and on free. el_ice
 * flushes too after the first datagram a loop turn receives (see
 * el_udptx_turn): its answer (a pong, a SACK) leaves at once instead of
 * after the rest of libnice's receive loop, ~10 µs later, while the answers
 * to the rest of a burst are still sent together.
 *
 * Errors. Best effort, like UDP: a datagram the kernel refuses (EAGAIN with a
 * full send buffer, a route that went away) is dropped and counted. If the
 * kernel refuses GSO itself (EIO: a device without checksum offload;
 * EMSGSIZE or EINVAL: segments over the path MTU), GSO is turned off for
 * this sender and the runs are sent again as single datagrams, which IP
 * fragments if it must, as it would libnice's (test_ice test_gso_refused).
 * A kernel older than 4.18 would not refuse: it ignores the UDP_SEGMENT
 * control message and sends each run as one IP-fragmented datagram, so GSO
 * is used only on a socket that answers getsockopt(UDP_SEGMENT). */
#ifndef EL_RTC_UDPTX_H
#define EL_RTC_UDPTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <gio/gio.h>

typedef struct el_udptx el_udptx;

#define EL_UDPTX_MAX_DATAGRAM 65507 /* largest UDP payload over IPv4 */

typedef struct {
    uint64_t datagrams; /* handed to the kernel */
    uint64_t syscalls;  /* sendmmsg/sendmsg calls that did it */
    uint64_t gso_runs;  /* messages that carried more than one datagram */
    uint64_t dropped;   /* refused by the kernel or by a closed socket */
    bool gso;           /* runs go as GSO messages now: asked for, not turned
                         * off, and the path's socket knows UDP_SEGMENT */
} el_udptx_stats;

/* A sender flushing on `ctx` (referenced). Never NULL (GLib aborts on OOM).
 * `gso`: false never uses UDP_SEGMENT (tests; ECHOLINK_UDP_GSO=0 does the
 * same for any sender). */
el_udptx *el_udptx_new(GMainContext *ctx, bool gso);

/* Flushes what is queued, then frees. NULL is a no-op. */
void el_udptx_free(el_udptx *tx);

/* Sets the path: libnice's socket and the remote address (IPv4 or IPv6).
 * Flushes what was queued for the previous path first. sock NULL clears the
 * path (el_udptx_send then refuses). Returns false (path cleared) for an
 * address family other than IPv4/IPv6. */
bool el_udptx_set_path(el_udptx *tx, GSocket *sock, const struct sockaddr *to);

/* True when a path is set. */
bool el_udptx_has_path(const el_udptx *tx);

/* Queues one datagram of 1..EL_UDPTX_MAX_DATAGRAM bytes (copied). Returns
 * false, queuing nothing, without a path or for a bad length. */
bool el_udptx_send(el_udptx *tx, const uint8_t *data, size_t len);

/* Sends everything queued now. */
void el_udptx_flush(el_udptx *tx);

/* Counts the turns of the context's loop (prepare() calls); 0 for NULL. */
uint64_t el_udptx_turn(const el_udptx *tx);

void el_udptx_get_stats(const el_udptx *tx, el_udptx_stats *out);

#endif
