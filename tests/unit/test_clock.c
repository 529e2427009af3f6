/* test_clock.c - src/base/clock: the injectable wall clock.
 *
 * The in-process offset moves el_clock_wall_ms and nothing else; the offset
 * file named by ECHOLINK_CLOCK_FILE (set in main before the first clock
 * read, as a process-level test does) is followed within its re-read
 * interval, both ways (+1 day, -1 day), a missing file is 0, a malformed one
 * keeps the last offset; monotonic time never moves with any of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"

#define DAY_MS 86400000LL
/* Slack for the gap between our own CLOCK_REALTIME read and the module's. */
#define SLACK_MS 1000

static char offset_file[64];

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_offset(const char *text)
{
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.tmp", offset_file);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, offset_file), 0); /* whole, never half-written */
}

/* Waits (bounded: 2 s) until the applied offset is `want`. */
static void expect_offset(int64_t want)
{
    int64_t got = 0;
    for (int i = 0; i < 200; i++) {
        got = el_clock_offset_ms();
        if (got == want)
            break;
        usleep(10000);
    }
    assert_int_equal(got, want);
    int64_t d = el_clock_wall_ms() - real_ms() - want;
    assert_true(d > -SLACK_MS && d < SLACK_MS);
}

static void test_offset_file(void **state)
{
    (void)state;
    expect_offset(0); /* no file yet */
    write_offset("86400000\n");
    expect_offset(DAY_MS);
    write_offset("  -86400000  ");
    expect_offset(-DAY_MS);
    write_offset("tomorrow");
    usleep(250000); /* at least two re-reads */
    assert_int_equal(el_clock_offset_ms(), -DAY_MS);
    write_offset("");
    expect_offset(0);
    write_offset("+5000");
    expect_offset(5000);
    assert_int_equal(unlink(offset_file), 0);
    expect_offset(0);
}

static void test_set_offset_adds(void **state)
{
    (void)state;
    el_clock_set_offset_ms(DAY_MS);
    expect_offset(DAY_MS);
    write_offset("-3000");
    expect_offset(DAY_MS - 3000);
    assert_int_equal(unlink(offset_file), 0);
    el_clock_set_offset_ms(-DAY_MS);
    expect_offset(-DAY_MS);
    el_clock_set_offset_ms(0);
    expect_offset(0);
}

static void test_monotonic_ignores_jumps(void **state)
{
    (void)state;
    int64_t m0 = el_clock_mono_us();
    el_clock_set_offset_ms(DAY_MS);
    int64_t w1 = el_clock_wall_ms();
    int64_t m1 = el_clock_mono_us();
    el_clock_set_offset_ms(-DAY_MS);
    int64_t w2 = el_clock_wall_ms();
    int64_t m2 = el_clock_mono_us();
    el_clock_set_offset_ms(0);
    assert_true(w1 - w2 > 2 * DAY_MS - SLACK_MS); /* the wall clock went back two days */
    assert_true(m1 >= m0 && m2 >= m1);             /* the monotonic one did not */
    assert_true(m2 - m0 < (int64_t)SLACK_MS * 1000);
}

int main(void)
{
    snprintf(offset_file, sizeof offset_file, "/tmp/el-clock-%d", (int)getpid());
    unlink(offset_file);
    /* before the first clock read: the module reads the variable once */
    setenv(EL_CLOCK_ENV, offset_file, 1);
    el_clock_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offset_file),
        cmocka_unit_test(test_set_offset_adds),
        cmocka_unit_test(test_monotonic_ignores_jumps),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.tmp", offset_file);
    unlink(tmp);
    unlink(offset_file);
    return rc;
}
