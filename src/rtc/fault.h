/* fault.h - network fault injection for the datagram path (a test hook).
 *
 * c-toxcore tests its transport on a fake network that loses, delays and
 * reorders packets; this is the same idea at our own packet boundary: an
 * el_fault sits between el_ice and libnice and lets each datagram through
 * late, twice, out of order or not at all. It is configured by a spec
 * string (ice.c reads it from ECHOLINK_NETFAULT):
 *
 *   "loss=5,delay=40,jitter=30,reorder=10,dup=1,seed=7,dir=both"
 *
 *   | key     | unit    | meaning                                             |
 *   |---------|---------|-----------------------------------------------------|
 *   | loss    | % 0-100 | datagram dropped                                    |
 *   | delay   | ms      | fixed delay added to every datagram                 |
 *   | jitter  | ms      | plus a uniform random 0..jitter ms (reorders too,   |
 *   |         |         | when datagrams are closer than the jitter)          |
 *   | reorder | % 0-100 | datagram held until the next one has gone out       |
 *   |         |         | (or EL_FAULT_REORDER_WAIT_MS later if none comes)   |
 *   | dup     | % 0-100 | datagram also sent a second time (own delay)        |
 *   | seed    | integer | PRNG seed; 0 or absent: a random seed               |
 *   | dir     | word    | send, recv or both: where ice.c applies it (send)   |
 *   | held    | count   | cap on datagrams held at once (EL_FAULT_HELD_MAX)   |
 *   | bytes   | bytes   | cap on bytes held at once (EL_FAULT_BYTES_MAX)      |
 *
 * Keys may come in any order, each at most once; values are decimal
 * integers (percentages 0..100, times 0..EL_FAULT_MS_MAX). An empty spec is
 * valid and changes nothing. Anything else is an error with a message that
 * names the offending key.
 *
 * Decisions for one datagram, in this order, from one seeded xorshift
 * stream, so one seed and one sequence of pushes give one outcome: loss,
 * dup, then per copy: delay + jitter, reorder. A datagram that neither
 * waits nor is reordered, with nothing held before it, goes out at once
 * (inside el_fault_push); otherwise it is held and goes out from a source on
 * the GMainContext, in due-time order (ties: push order). Held datagrams
 * beyond the caps are dropped (counted as cap drops), as a full queue would.
 *
 * Threads and lifetime: an el_fault belongs to the thread iterating its ctx
 * (referenced until el_fault_free). `out` runs from el_fault_push or from
 * that source; it may call el_fault_free on this el_fault (then nothing more
 * is emitted). el_fault_free drops what is held; `out` never runs after it.
 * The data pointer given to `out` is valid only during the call. */
#ifndef EL_RTC_FAULT_H
#define EL_RTC_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define EL_FAULT_MS_MAX 60000               /* largest delay or jitter */
#define EL_FAULT_HELD_MAX 4096              /* default cap on held datagrams */
#define EL_FAULT_BYTES_MAX (8u << 20)       /* default cap on held bytes */
#define EL_FAULT_REORDER_WAIT_MS 20         /* a reordered datagram waits at most this for a successor */
#define EL_FAULT_SPEC_MAX 256               /* longest spec string */

enum { EL_FAULT_SEND = 1, EL_FAULT_RECV = 2 };

typedef struct {
    unsigned loss, reorder, dup;   /* percent */
    unsigned delay_ms, jitter_ms;
    uint64_t seed;                 /* 0: random */
    unsigned dir;                  /* EL_FAULT_SEND | EL_FAULT_RECV */
    size_t held_max, bytes_max;
} el_fault_spec;

typedef struct {
    uint64_t pushed;      /* datagrams given to el_fault_push */
    uint64_t emitted;     /* datagrams given to out (copies included) */
    uint64_t lost;        /* dropped by "loss" */
    uint64_t dup;         /* extra copies made */
    uint64_t delayed;     /* copies held for delay/jitter */
    uint64_t reordered;   /* copies held until a successor went out */
    uint64_t cap_drops;   /* copies dropped because the caps were reached */
    size_t held_peak;     /* most datagrams held at once */
} el_fault_stats;

typedef struct el_fault el_fault;
typedef void (*el_fault_out)(void *user, const uint8_t *data, size_t len);

/* Parses a spec (see the table; NULL is the empty spec). Returns EL_OK or
 * EL_ERR_INVALID with the reason in err. *out is written only on success. */
int el_fault_parse(const char *spec, el_fault_spec *out, char *err, size_t errlen);

/* True when the spec changes anything (some fault above 0). */
int el_fault_spec_active(const el_fault_spec *spec);

/* Writes the spec back as "loss=..,delay=..,..." (for logs). */
void el_fault_spec_write(const el_fault_spec *spec, char *out, size_t outlen);

/* A fault stage on ctx (referenced) that passes datagrams to out(user, ...).
 * spec is copied. Never NULL (GLib aborts on OOM). */
el_fault *el_fault_new(GMainContext *ctx, const el_fault_spec *spec, el_fault_out out,
                       void *user);

/* Applies the faults to one datagram (len >= 1; copied if held). */
void el_fault_push(el_fault *f, const uint8_t *data, size_t len);

/* Datagrams held right now. */
size_t el_fault_held(const el_fault *f);

void el_fault_get_stats(const el_fault *f, el_fault_stats *st);

/* Drops what is held and frees (later, if inside out: never touch f after
 * calling it). NULL is a no-op. */
void el_fault_free(el_fault *f);

#endif
