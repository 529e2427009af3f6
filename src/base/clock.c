/* clock.c - see clock.h. */
#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

/* The longest offset file we read: a decimal int64 with sign and spaces. */
#define OFFSET_FILE_MAX 64

/* The process's one clock (see clock.h): a true singleton. */
static struct {
    _Atomic int64_t set_offset;   /* el_clock_set_offset_ms */
    _Atomic int64_t file_offset;  /* last good value of the offset file */
    _Atomic int64_t next_read_us; /* monotonic time of the next file read */
    atomic_int state;             /* 0 not initialised, 1 being, 2 done */
    atomic_bool bad_logged;       /* the file's bad content was reported */
    const char *path;             /* getenv's string: lives as long as the process */
} clk;

int64_t el_clock_mono_us(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Parses "[spaces][+-]digits[spaces]"; 0 on success. */
static int parse_offset(const char *s, int64_t *out)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (!*s)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
        end++;
    if (*end)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Reads the offset file into clk.file_offset. A missing file is offset 0
 * (the test removed it: the clock is back); unreadable or malformed content
 * keeps the last value, since a writer may be half-way through. */
static void read_offset_file(void)
{
    int fd = open(clk.path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            atomic_store(&clk.file_offset, 0);
        return;
    }
    char buf[OFFSET_FILE_MAX + 1];
    ssize_t n = read(fd, buf, OFFSET_FILE_MAX);
    close(fd);
    if (n < 0)
        return;
    buf[n] = '\0';
    int64_t v = 0;
    if (n == 0 || parse_offset(buf, &v) != 0) {
        if (n > 0 && !atomic_exchange(&clk.bad_logged, true))
            EL_WARN("clock: %s does not hold an offset in ms; keeping %lld ms", clk.path,
                    (long long)atomic_load(&clk.file_offset));
        if (n == 0)
            atomic_store(&clk.file_offset, 0);
        return;
    }
    atomic_store(&clk.file_offset, v);
}

void el_clock_init(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&clk.state, &expected, 1))
        return;
    const char *p = getenv(EL_CLOCK_ENV);
    if (p && *p) {
        clk.path = p;
        read_offset_file();
        /* Loud on purpose: a production process with a moved clock would
         * stamp wrong times on messages and expire envelopes early. */
        EL_WARN("clock: %s=%s is set: the wall clock is offset by that file's content "
                "(now %lld ms); for fault tests only",
                EL_CLOCK_ENV, p, (long long)atomic_load(&clk.file_offset));
        atomic_store(&clk.next_read_us, el_clock_mono_us() + EL_CLOCK_REREAD_US);
    }
    atomic_store(&clk.state, 2);
}

static int64_t file_offset_now(void)
{
    if (atomic_load(&clk.state) != 2)
        el_clock_init();
    if (!clk.path)
        return 0;
    int64_t now = el_clock_mono_us();
    int64_t next = atomic_load(&clk.next_read_us);
    if (now >= next && atomic_compare_exchange_strong(&clk.next_read_us, &next,
                                                      now + EL_CLOCK_REREAD_US))
        read_offset_file();
    return atomic_load(&clk.file_offset);
}

int64_t el_clock_offset_ms(void)
{
    return atomic_load(&clk.set_offset) + file_offset_now();
}

int64_t el_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return ms + el_clock_offset_ms();
}

void el_clock_set_offset_ms(int64_t offset_ms)
{
    atomic_store(&clk.set_offset, offset_ms);
}
