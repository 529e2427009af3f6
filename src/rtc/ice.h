/* ice.h - one ICE agent for a WebRTC data channel: one stream, one
 * component, full ICE (RFC 8445) with trickle (RFC 8838) and consent
 * freshness (RFC 7675), built on libnice on the caller's GMainContext.
 *
 *   signaling --credentials, "candidate:..." strings--> el_ice
 *   el_ice    --on_candidate("candidate:..."), on_state--> signaling / peer
 *   dtls      --el_ice_send(datagram)--> el_ice --on_data(datagram)--> dtls
 *
 * Candidates travel as RTCIceCandidate.candidate carries them, written by
 * sdp.h's el_sdp_candidate_write, e.g.
 *   "candidate:1 1 udp 2015363583 10.77.1.1 57321 typ host ufrag Ab3x"
 * (lower-case transport as Chromium; the ufrag extension names the ICE
 * generation, so a peer can tell candidates from before and after a
 * restart apart). Only UDP candidates of component 1 are used: ICE-TCP is
 * off, and a remote "tcp" candidate, an mDNS ("....local") or other host
 * name candidate (libnice cannot resolve them) is ignored with a logged
 * note; the peer is still reachable through the peer-reflexive candidate
 * its checks create.
 *
 * libnice settings: NICE_COMPATIBILITY_RFC5245, full mode (no LITE_MODE
 * option), trickle, aggressive nomination (libnice's default: the first
 * working pair is nominated at once, which cut connection setup from ~75 ms
 * to ~33 ms in bench/rtc.sh; Chromium and libwebrtc accept it), consent freshness
 * (RFC 7675) with keepalive-conncheck, no ICE-TCP, no UPnP, no mDNS.
 * STUN transactions (checks, STUN/TURN server requests) are sent 3 times
 * ("stun-max-retransmissions"), the first timeout 500 ms
 * ("stun-initial-timeout"; for checks max(500 ms, 20 ms x pending pairs)),
 * about 2 s per transaction in all. Gathering uses only cfg->local_addrs
 * when given (tests), else every non-loopback interface.
 *
 * States (el_ice_state) from libnice's component states:
 *   | libnice                | el_ice                 | notes                   |
 *   |------------------------|------------------------|-------------------------|
 *   | DISCONNECTED/GATHERING | NEW                    | no path yet; after a    |
 *   |                        |                        | restart of a working    |
 *   |                        |                        | agent: unchanged (*)    |
 *   | CONNECTING             | CHECKING               | likewise (*)            |
 *   | CONNECTED              | CONNECTED              | a usable pair; checks   |
 *   |                        |                        | may continue            |
 *   | READY                  | COMPLETED              | nominated pair, checks  |
 *   |                        |                        | done                    |
 *   | FAILED                 | FAILED                 | all checks failed, or   |
 *   |                        |                        | consent lost (below)    |
 * (*) during an ICE restart of a CONNECTED/COMPLETED agent the old selected
 * pair stays in use until the new one is chosen, so the state is not moved
 * back to NEW/CHECKING.
 * A dead path, by default: the selected pair is re-checked every 4-6 s
 * (RFC 7675 consent); 10 s after the last response libnice declares the
 * component FAILED, so a link that dies is reported as FAILED 4..10 s later
 * (7-10 s measured in tests/unit/test_ice.c). Those checks are never
 * retransmitted, so random loss (two lost in a row) fails healthy paths too.
 * A dead path with cfg.silence_ms > 0, for callers whose own traffic never
 * pauses for long (el_peer: SCTP heartbeats): libnice's consent option is
 * off; after silence_ms without a received datagram the state is
 * DISCONNECTED (from CONNECTED or COMPLETED), and the next datagram brings it
 * back to CONNECTED (COMPLETED if libnice's pair is nominated) with no
 * restart. libnice's keepalive checks still run; 50 s without an answer is
 * FAILED. The agent does not recover from FAILED by itself; el_ice_restart()
 * (both sides, new credentials exchanged) brings it back; a restart of a
 * DISCONNECTED agent keeps it DISCONNECTED until the new pair is chosen.
 * EL_ICE_CLOSED exists for parity with RTCIceConnectionState and is never
 * reported. el_ice_send() is usable in CONNECTED, COMPLETED and DISCONNECTED
 * (and, until the new pair is chosen, during a restart).
 *
 * Callbacks. All run on the thread that iterates ctx, never from inside an
 * el_ice_* call: candidates, end-of-candidates and state changes are queued
 * and delivered from an idle source on ctx; received datagrams are delivered
 * as libnice reads them, after any queued events (so on_state(CONNECTED)
 * comes before the first on_data). A callback may call any el_ice_*
 * function on this agent, el_ice_free() included (then no further callback
 * fires). Pointers passed to callbacks are valid only during the call.
 * Callbacks may be NULL.
 *
 * Restart. el_ice_restart() makes new local credentials (libnice keeps its
 * sockets and local candidates), then re-announces every local candidate
 * with the new ufrag followed by end-of-candidates. The remote candidates
 * are forgotten except the selected pair, which keeps carrying data. The
 * peer must learn the new credentials and candidates; when a peer restarts
 * (its ufrag changes), JSEP (RFC 8829 §5.3) has this side restart too:
 * call el_ice_restart() and then el_ice_set_remote_credentials(); the new
 * local credentials go back in the answer. (libnice 0.1.21 keeps the peer's
 * end-of-candidates across a restart; its 5 s idle timeout still gives the
 * new generation's candidates time to arrive before checks are declared
 * failed.)
 *
 * Remote candidates. Before remote credentials are set, and while a
 * candidate's ufrag names a generation whose credentials have not arrived,
 * candidates are held (at most EL_ICE_MAX_PENDING) and applied when
 * el_ice_set_remote_credentials() supplies the matching ufrag; held
 * candidates of any other generation are then dropped. Candidates whose ufrag
 * names an older generation are dropped. End-of-candidates (it carries no
 * ufrag) is held while credentials are missing or candidates are held, and
 * applied with them.
 *
 * Fault injection (a test hook, docs/ARCHITECTURE.md "Testing hooks"). When
 * the environment variable ECHOLINK_NETFAULT holds a fault spec (rtc/fault.h)
 * as el_ice_new runs, the agent's datagrams - those given to el_ice_send
 * (dir=send, the default) and/or those handed to on_data (dir=recv) - pass
 * through an el_fault stage on ctx that loses, delays, reorders or
 * duplicates them; STUN traffic is not touched. el_ice_send then returns
 * EL_OK for a datagram it accepted even if it goes out later or never, and
 * EL_ERR_IO only while the state is NEW or CHECKING. A spec that does not
 * parse makes el_ice_new fail (EL_ERR_INVALID, reason in err); an active
 * one is logged as a warning once per process. Held datagrams are dropped
 * by el_ice_free.
 *
 * Threads. An el_ice belongs to the thread that iterates ctx; call every
 * function from that thread.
 *
 * Lifetime. cfg is not kept (libnice copies what it needs); ctx is referenced.
 * el_ice_free(NULL) is a no-op. With TURN configured, el_ice_free starts
 * releasing the allocations (libnice's nice_agent_close_async): keep
 * iterating ctx for a moment after it, or the allocations simply expire on
 * the server; the libnice agent is released when that finishes. */
#ifndef EL_RTC_ICE_H
#define EL_RTC_ICE_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "rtc/udptx.h"

#define EL_ICE_MAX_PENDING 64     /* remote candidates held for later credentials */
#define EL_ICE_MAX_LOCAL_ADDRS 16 /* entries of el_ice_config.local_addrs */
#define EL_ICE_RCVBUF (4 * 1024 * 1024) /* receive buffer of the selected socket */
#define EL_ICE_MAX_DATAGRAM 65535 /* largest el_ice_send(); keep to the path MTU */

typedef struct el_ice el_ice;

typedef enum {
    EL_ICE_NEW,
    EL_ICE_CHECKING,
    EL_ICE_CONNECTED,
    EL_ICE_COMPLETED,
    EL_ICE_DISCONNECTED, /* only with el_ice_config.silence_ms (see above) */
    EL_ICE_FAILED,
    EL_ICE_CLOSED,       /* never reported (see above) */
} el_ice_state;

/* Strings are copied by el_ice_new; every field may be 0/NULL. */
typedef struct {
    const char *stun_host; /* IP or host name (libnice resolves it); NULL: no STUN */
    uint16_t stun_port;    /* 0 means 3478 */
    const char *turn_host; /* IP or host name; NULL: no TURN */
    uint16_t turn_port;    /* 0 means 3478 */
    const char *turn_user, *turn_pass; /* required with turn_host */
    int turn_tcp;          /* to the TURN server: 0 UDP, 1 TCP, 2 TLS (relayed candidates stay UDP) */
    const char *const *local_addrs; /* NULL-terminated IP list restricting gathering (tests) */
    int relay_only;        /* 1: only relayed candidates ("force-relay"; needs TURN) */
    unsigned silence_ms;   /* >0: liveness by the caller's traffic, not consent (see above) */
} el_ice_config;

typedef struct {
    /* A local candidate to signal ("candidate:...", no "a=", no CRLF), or
     * NULL once all are signaled (end-of-candidates; after gathering and
     * after every restart). */
    void (*on_candidate)(void *user, const char *candidate);
    /* The state changed (each change once; never to the same state). */
    void (*on_state)(void *user, el_ice_state st);
    /* One datagram from the peer. */
    void (*on_data)(void *user, const uint8_t *data, size_t len);
} el_ice_callbacks;

/* Creates an agent on ctx (not NULL), controlling (1) or controlled (0).
 * cfg may be NULL (all defaults); cb is copied. Returns NULL with the reason
 * in err (bad address, TURN without credentials, libnice failure). No
 * network activity before el_ice_gather(). */
el_ice *el_ice_new(GMainContext *ctx, int controlling, const el_ice_config *cfg,
                   const el_ice_callbacks *cb, void *user, char *err, size_t errlen);

/* The current local credentials (they change with el_ice_restart), as
 * NUL-terminated ice-chars; libnice makes a 4-char ufrag and a 22-char pwd. */
void el_ice_local_credentials(const el_ice *ice, char ufrag[64], char pwd[256]);

/* Sets the peer's credentials (RFC 8839 ice-ufrag 4..256, ice-pwd 22..256
 * ice-chars) and applies the remote candidates held for them. Returns EL_OK
 * or EL_ERR_INVALID. */
int el_ice_set_remote_credentials(el_ice *ice, const char *ufrag, const char *pwd);

/* Starts gathering (host candidates now, server-reflexive and relayed ones
 * as the servers answer); candidates follow through on_candidate. A second
 * call does nothing. Returns EL_OK or EL_ERR_IO (no usable local address). */
int el_ice_gather(el_ice *ice);

/* Adds a remote candidate: "candidate:..." or "a=candidate:..." (a trailing
 * CRLF is allowed). NULL or "" is end-of-candidates. Returns EL_OK (also for
 * a candidate ignored or held as described above) or EL_ERR_INVALID (not a
 * candidate), EL_ERR_QUOTA (too many held). */
int el_ice_add_remote_candidate(el_ice *ice, const char *candidate);

/* Sends one datagram (1..EL_ICE_MAX_DATAGRAM bytes) on the selected pair.
 * Best effort, like UDP. Returns EL_OK, EL_ERR_INVALID (bad length) or
 * EL_ERR_IO (no selected pair yet, or the socket refused it). */
int el_ice_send(el_ice *ice, const uint8_t *data, size_t len);

/* ICE restart (see above). Returns EL_OK or EL_ERR_IO. */
int el_ice_restart(el_ice *ice);

/* The current state; it may be ahead of the on_state calls still queued.
 * EL_ICE_CLOSED for NULL. */
el_ice_state el_ice_get_state(const el_ice *ice);

/* What el_ice_send() passed to the batched sender (udptx.h) so far: all of
 * it on a plain UDP selected pair, none on a relayed one. Zeros for NULL. */
void el_ice_get_tx_stats(const el_ice *ice, el_udptx_stats *out);
/* "new", "checking", ... (RTCIceConnectionState's names). */
const char *el_ice_state_name(el_ice_state st);

/* Disconnects from libnice and frees the agent; no callback fires after it.
 * Safe inside a callback of this agent. */
void el_ice_free(el_ice *ice);

#endif
