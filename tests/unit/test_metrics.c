/* test_metrics.c - src/server/metrics: Prometheus text rendering (every
 * family has HELP and TYPE before its samples; each counter shows its value)
 * and the too-small-buffer contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/metrics.h"

static el_metrics sample(void)
{
    el_metrics m;
    memset(&m, 0, sizeof m);
    m.connections_total = 11;
    m.connections_open = 12;
    m.websocket_open = 13;
    m.peers_online = 14;
    m.logins_total = 15;
    m.logins_failed = 16;
    m.events_total = 17;
    m.relayed[EL_RELAY_OFFER] = 21;
    m.relayed[EL_RELAY_ANSWER] = 22;
    m.relayed[EL_RELAY_ICE] = 23;
    for (int i = 0; i < EL_REJ__COUNT; i++)
        m.rejected[i] = 100 + (uint64_t)i;
    m.envelopes_stored = 31;
    m.envelopes_delivered = 32;
    m.http_requests = UINT64_MAX;
    return m;
}

static char *render(const el_metrics *m, int *len)
{
    size_t cap = 16384;
    char *out = malloc(cap);
    assert_non_null(out);
    *len = el_metrics_render(m, out, cap);
    assert_true(*len > 0 && (size_t)*len < cap);
    assert_int_equal(strlen(out), (size_t)*len);
    return out;
}

/* True when `line` (without newline) is a whole line of text. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

#define ASSERT_LINE(text, line)                                                   \
    do {                                                                          \
        if (!has_line((text), (line)))                                            \
            fail_msg("metrics output lacks the line \"%s\":\n%s", (line), (text)); \
    } while (0)

static void test_samples(void **state)
{
    (void)state;
    el_metrics m = sample();
    int len;
    char *out = render(&m, &len);
    ASSERT_LINE(out, "echolink_connections_total 11");
    ASSERT_LINE(out, "echolink_connections{transport=\"any\"} 12");
    ASSERT_LINE(out, "echolink_connections{transport=\"websocket\"} 13");
    ASSERT_LINE(out, "echolink_peers_online 14");
    ASSERT_LINE(out, "echolink_logins_total{result=\"ok\"} 15");
    ASSERT_LINE(out, "echolink_logins_total{result=\"failed\"} 16");
    ASSERT_LINE(out, "echolink_events_total 17");
    ASSERT_LINE(out, "echolink_relayed_total{type=\"offer\"} 21");
    ASSERT_LINE(out, "echolink_relayed_total{type=\"answer\"} 22");
    ASSERT_LINE(out, "echolink_relayed_total{type=\"ice_candidate\"} 23");
    ASSERT_LINE(out, "echolink_envelopes_total{stage=\"stored\"} 31");
    ASSERT_LINE(out, "echolink_envelopes_total{stage=\"delivered\"} 32");
    ASSERT_LINE(out, "echolink_http_requests_total 18446744073709551615");
    for (int i = 0; i < EL_REJ__COUNT; i++) {
        char line[128];
        snprintf(line, sizeof line, "echolink_rejected_total{reason=\"%s\"} %d",
                 el_reject_code((el_reject)i), 100 + i);
        ASSERT_LINE(out, line);
    }
    assert_int_equal(out[len - 1], '\n');
    free(out);
}

static void test_help_and_type(void **state)
{
    (void)state;
    static const struct {
        const char *name, *type;
    } families[] = {
        {"echolink_connections_total", "counter"}, {"echolink_connections", "gauge"},
        {"echolink_peers_online", "gauge"},        {"echolink_logins_total", "counter"},
        {"echolink_events_total", "counter"},      {"echolink_relayed_total", "counter"},
        {"echolink_rejected_total", "counter"},    {"echolink_envelopes_total", "counter"},
        {"echolink_http_requests_total", "counter"},
    };
    el_metrics m = sample();
    int len;
    char *out = render(&m, &len);
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        char type[128], help[128];
        snprintf(type, sizeof type, "# TYPE %s %s", families[f].name, families[f].type);
        ASSERT_LINE(out, type);
        snprintf(help, sizeof help, "# HELP %s ", families[f].name);
        const char *h = strstr(out, help);
        assert_non_null(h);
        assert_true(h[strlen(help)] != '\n'); /* some help text */
        const char *t = strstr(out, type);
        assert_true(h < t);
    }

    /* Every sample belongs to a family declared by the TYPE line above it,
     * and every line is a comment or "name[{labels}] value". */
    char family[128] = "";
    for (char *line = out; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        if (!strncmp(line, "# TYPE ", 7)) {
            assert_int_equal(sscanf(line + 7, "%127s", family), 1);
        } else if (strncmp(line, "# HELP ", 7) != 0) {
            size_t fl = strlen(family);
            if (!fl || strncmp(line, family, fl) != 0 || (line[fl] != ' ' && line[fl] != '{'))
                fail_msg("sample \"%s\" outside its family (%s)", line, family);
            const char *sp = strrchr(line, ' ');
            assert_non_null(sp);
            char *end;
            strtoull(sp + 1, &end, 10);
            assert_true(end > sp + 1 && *end == '\0');
        }
        line = nl + 1;
    }
    free(out);
}

static void test_gauges_can_be_negative(void **state)
{
    (void)state;
    el_metrics m;
    memset(&m, 0, sizeof m);
    m.connections_open = -2; /* a gauge bookkeeping bug must show, not wrap */
    int len;
    char *out = render(&m, &len);
    ASSERT_LINE(out, "echolink_connections{transport=\"any\"} -2");
    ASSERT_LINE(out, "echolink_connections_total 0");
    free(out);
}

static void test_buffer_too_small(void **state)
{
    (void)state;
    el_metrics m = sample();
    int len;
    char *full = render(&m, &len);
    /* exact fit (heap: ASan catches an overrun) */
    char *exact = malloc((size_t)len + 1);
    assert_non_null(exact);
    assert_int_equal(el_metrics_render(&m, exact, (size_t)len + 1), len);
    assert_string_equal(exact, full);
    assert_int_equal(el_metrics_render(&m, exact, (size_t)len), -1);
    assert_int_equal(el_metrics_render(&m, exact, 100), -1);
    assert_int_equal(el_metrics_render(&m, exact, 1), -1);
    free(exact);
    /* every size in between fails too (overflow in a later section) */
    char *buf = malloc((size_t)len);
    assert_non_null(buf);
    for (size_t cap = 1; cap < (size_t)len; cap += 37)
        assert_int_equal(el_metrics_render(&m, buf, cap), -1);
    free(buf);
    free(full);
}

static void test_reject_codes(void **state)
{
    (void)state;
    static const char *const want[EL_REJ__COUNT] = {
        "bad_request", "unknown_event", "not_logged_in", "bad_signature", "offline",
        "unknown_peer", "not_allowed", "rate_limited", "too_large", "invalid_json",
        "binary_unsupported", "quota_exceeded", "not_found", "internal", "protocol_error",
        "connection_limit",
    };
    for (int i = 0; i < EL_REJ__COUNT; i++) {
        if (!want[i])
            fail_msg("reject reason %d (%s) is new: list it here", i, el_reject_code((el_reject)i));
        assert_string_equal(el_reject_code((el_reject)i), want[i]);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(el_reject_code((el_reject)i), el_reject_code((el_reject)k));
    }
    assert_string_equal(el_reject_code(EL_REJ__COUNT), "internal");
    assert_string_equal(el_reject_code((el_reject)1000), "internal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_help_and_type),
        cmocka_unit_test(test_gauges_can_be_negative),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_reject_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
