/* clock.h - the process's clocks: wall time that tests can move, and
 * monotonic time that nothing moves.
 *
 * Every wall-clock read of EchoLink (message `ts`, received_at, envelope
 * expiry, last-seen, TURN credential expiry) goes through el_clock_wall_ms();
 * every timer, deadline, backoff, rate limit and freshness check uses
 * monotonic time (el_clock_mono_us(), g_get_monotonic_time(), uv_now()),
 * so that a wall-clock jump cannot break them. Only src/base/log.c reads
 * CLOCK_REALTIME itself (log lines show the machine's time).
 *
 * Injection, for fault tests (the machine's time is never changed):
 *   - in-process: el_clock_set_offset_ms(off) adds `off` ms to the wall clock;
 *   - across processes: when the environment variable ECHOLINK_CLOCK_FILE
 *     names a file, its content (a decimal integer, may be negative, spaces
 *     and newline allowed) is the offset in ms. The file is read again at
 *     most every 100 ms of monotonic time; a missing or empty file means 0; a file
 *     that does not parse keeps the last offset (and is logged once). A
 *     warning is logged once, at el_clock_init() or at the first wall-clock
 *     read, when the variable is set.
 * The in-process offset and the file's offset add up.
 *
 * The state (offset, file name, last read) is a true process singleton: the
 * clock is one for the whole process. Thread-safe: reads and the setter use
 * atomics; two threads re-reading the file at once is harmless. */
#ifndef EL_CLOCK_H
#define EL_CLOCK_H

#include <stdint.h>

/* The environment variable naming the offset file. */
#define EL_CLOCK_ENV "ECHOLINK_CLOCK_FILE"
/* The shortest interval between two reads of the offset file. */
#define EL_CLOCK_REREAD_US 100000

/* Reads ECHOLINK_CLOCK_FILE and logs the warning now rather than at the
 * first wall-clock read; programs call it at startup. Idempotent. */
void el_clock_init(void);

/* Milliseconds since the Unix epoch, plus the injected offsets. */
int64_t el_clock_wall_ms(void);

/* Microseconds of CLOCK_MONOTONIC: never offset, never goes back. */
int64_t el_clock_mono_us(void);

/* The in-process offset (unit tests); 0 restores the real clock. */
void el_clock_set_offset_ms(int64_t offset_ms);

/* The offset applied now (in-process + file), in ms. */
int64_t el_clock_offset_ms(void);

#endif
