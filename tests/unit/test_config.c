/* test_config.c - src/server/config: defaults, --opt value, --opt=value,
 * ECHOLINK_* environment, command line over environment, errors, the
 * --conformance preset, --help/--version. Every test starts with no
 * ECHOLINK_* variable set (whatever the caller's environment holds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test.h"

#include "server/config.h"

extern char **environ;

static void clear_echolink_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (!strncmp(*e, "ECHOLINK_", 9)) {
                const char *eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n < sizeof name) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        }
        if (!name[0])
            return;
        unsetenv(name);
    }
}

static int setup(void **state)
{
    (void)state;
    clear_echolink_env();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_echolink_env();
    return 0;
}

/* el_config_load with argv = {"echolinkd", args..., NULL}. */
static int load(el_server_config *cfg, char *err, size_t errlen, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"echolinkd";
    va_list ap;
    va_start(ap, errlen);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 63)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    if (err && errlen)
        err[0] = '\0';
    return el_config_load(cfg, argc, argv, err, errlen);
}

#define LOAD_OK(cfg, ...)                                                          \
    do {                                                                           \
        char lo_err_[256];                                                         \
        int lo_rc_ = load((cfg), lo_err_, sizeof lo_err_, __VA_ARGS__, NULL);      \
        if (lo_rc_ != 0) {                                                         \
            el_config_clear(cfg);                                                  \
            fail_msg("el_config_load returned %d: %s", lo_rc_, lo_err_);           \
        }                                                                          \
    } while (0)

/* Expects -1 and an error text containing `want`. */
#define LOAD_FAILS(want, ...)                                                       \
    do {                                                                            \
        el_server_config lf_cfg_;                                                   \
        char lf_err_[256];                                                          \
        int lf_rc_ = load(&lf_cfg_, lf_err_, sizeof lf_err_, __VA_ARGS__, NULL);    \
        el_config_clear(&lf_cfg_);                                                  \
        if (lf_rc_ != -1)                                                           \
            fail_msg("expected -1 (\"%s\"), got %d", (want), lf_rc_);               \
        if (!strstr(lf_err_, (want)))                                               \
            fail_msg("error \"%s\" does not contain \"%s\"", lf_err_, (want));      \
    } while (0)

static void test_defaults(void **state)
{
    (void)state;
    el_server_config cfg;
    memset(&cfg, 0x5a, sizeof cfg); /* load must not depend on prior contents */
    assert_int_equal(load(&cfg, NULL, 0, NULL), 0);
    assert_int_equal(cfg.port, 5000);
    assert_null(cfg.bind);
    assert_null(cfg.port_file);
    assert_string_equal(cfg.db, "sqlite:data/echolink.db");
    assert_null(cfg.web);
    assert_string_equal(cfg.log_level, "info");
    assert_null(cfg.tls_cert);
    assert_null(cfg.tls_key);
    assert_int_equal(cfg.conformance, 0);
    assert_int_equal(cfg.open_presence, 0);
    assert_int_equal(cfg.ping_interval_ms, 25000);
    assert_int_equal(cfg.ping_timeout_ms, 20000);
    assert_int_equal(cfg.connect_timeout_ms, 45000);
    assert_int_equal(cfg.login_timeout_ms, 10000);
    assert_int_equal(cfg.max_payload, 1000000);
    assert_int_equal(cfg.max_event_size, 65536);
    assert_int_equal(cfg.rate, 50);
    assert_int_equal(cfg.burst, 100);
    assert_int_equal(cfg.max_conns, 10000);
    assert_int_equal(cfg.max_conns_per_ip, 64);
    assert_null(cfg.turn_secret);
    assert_null(cfg.turn_urls);
    assert_null(cfg.stun_urls);
    assert_int_equal(cfg.turn_ttl, 3600);
    assert_int_equal(cfg.queue_max, 1000);
    assert_int_equal(cfg.envelope_ttl, 604800);
    el_config_clear(&cfg);
    assert_null(cfg.db);
    assert_null(cfg.log_level);
    el_config_clear(&cfg); /* twice is harmless */
}

static void test_separate_and_equals_forms(void **state)
{
    (void)state;
    el_server_config cfg;
    LOAD_OK(&cfg, "--port", "8080", "--bind=127.0.0.1", "--db", "sqlite::memory:",
            "--web=web", "--log-level", "debug", "--max-payload=5000", "--max-event-size", "2048",
            "--rate=7", "--burst", "9", "--max-conns-per-ip=0", "--turn-secret", "s3cr=t",
            "--turn-urls=turn:a:3478,turn:b:3478", "--stun-urls", "stun:c", "--turn-ttl=60",
            "--queue-max", "5", "--envelope-ttl=86400", "--port-file", "/tmp/p",
            "--connect-timeout=1", "--login-timeout", "2", "--max-conns", "3");
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.bind, "127.0.0.1");
    assert_string_equal(cfg.db, "sqlite::memory:");
    assert_string_equal(cfg.web, "web");
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(cfg.max_payload, 5000);
    assert_int_equal(cfg.max_event_size, 2048);
    assert_int_equal(cfg.rate, 7);
    assert_int_equal(cfg.burst, 9);
    assert_int_equal(cfg.max_conns_per_ip, 0);
    assert_string_equal(cfg.turn_secret, "s3cr=t"); /* only the first '=' splits */
    assert_string_equal(cfg.turn_urls, "turn:a:3478,turn:b:3478");
    assert_string_equal(cfg.stun_urls, "stun:c");
    assert_int_equal(cfg.turn_ttl, 60);
    assert_int_equal(cfg.queue_max, 5);
    assert_int_equal(cfg.envelope_ttl, 86400);
    assert_string_equal(cfg.port_file, "/tmp/p");
    assert_int_equal(cfg.connect_timeout_ms, 1);
    assert_int_equal(cfg.login_timeout_ms, 2);
    assert_int_equal(cfg.max_conns, 3);
    el_config_clear(&cfg);
    assert_null(cfg.bind);
    assert_null(cfg.turn_secret);
}

static void test_repeat_and_flags(void **state)
{
    (void)state;
    el_server_config cfg;
    /* the last occurrence wins; the replaced string is freed (LeakSanitizer) */
    LOAD_OK(&cfg, "--db", "sqlite:a.db", "--db=sqlite:b.db", "--port", "1", "--port=2");
    assert_string_equal(cfg.db, "sqlite:b.db");
    assert_int_equal(cfg.port, 2);
    el_config_clear(&cfg);

    LOAD_OK(&cfg, "--open-presence");
    assert_int_equal(cfg.open_presence, 1);
    el_config_clear(&cfg);
    static const char *const on[] = {"--open-presence=1", "--open-presence=true",
                                     "--open-presence=yes"};
    static const char *const off[] = {"--open-presence=0", "--open-presence=false",
                                      "--open-presence=no"};
    for (size_t i = 0; i < 3; i++) {
        LOAD_OK(&cfg, on[i]);
        assert_int_equal(cfg.open_presence, 1);
        el_config_clear(&cfg);
        LOAD_OK(&cfg, "--open-presence", off[i]);
        assert_int_equal(cfg.open_presence, 0);
        el_config_clear(&cfg);
    }
    /* a flag does not swallow the next argument */
    LOAD_OK(&cfg, "--open-presence", "--port", "6000");
    assert_int_equal(cfg.open_presence, 1);
    assert_int_equal(cfg.port, 6000);
    el_config_clear(&cfg);
    LOAD_FAILS("takes no value", "--open-presence=maybe");
    LOAD_FAILS("takes no value", "--conformance=");
    LOAD_FAILS("unexpected argument '1'", "--open-presence", "1");
}

static void test_environment(void **state)
{
    (void)state;
    el_server_config cfg;
    setenv("ECHOLINK_PORT", "7000", 1);
    setenv("ECHOLINK_LOG_LEVEL", "debug", 1);
    setenv("ECHOLINK_OPEN_PRESENCE", "1", 1);
    setenv("ECHOLINK_MAX_CONNS_PER_IP", "0", 1);
    setenv("ECHOLINK_TURN_SECRET", "from-env", 1);
    setenv("ECHOLINK_MAX_EVENT_SIZE", "4096", 1);
    setenv("ECHOLINK_PORT_FILE", "/tmp/pf", 1);
    setenv("ECHOLINK_port", "1234", 1); /* names are upper case */
    LOAD_OK(&cfg, "--db", "sqlite::memory:");
    assert_int_equal(cfg.port, 7000);
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(cfg.open_presence, 1);
    assert_int_equal(cfg.max_conns_per_ip, 0);
    assert_string_equal(cfg.turn_secret, "from-env");
    assert_int_equal(cfg.max_event_size, 4096);
    assert_string_equal(cfg.port_file, "/tmp/pf");
    assert_string_equal(cfg.db, "sqlite::memory:");
    el_config_clear(&cfg);
}

static void test_command_line_beats_environment(void **state)
{
    (void)state;
    el_server_config cfg;
    setenv("ECHOLINK_PORT", "7000", 1);
    setenv("ECHOLINK_DB", "sqlite:env.db", 1);
    setenv("ECHOLINK_OPEN_PRESENCE", "1", 1);
    LOAD_OK(&cfg, "--port", "7001", "--db=sqlite:cli.db", "--open-presence=0");
    assert_int_equal(cfg.port, 7001);
    assert_string_equal(cfg.db, "sqlite:cli.db");
    assert_int_equal(cfg.open_presence, 0);
    el_config_clear(&cfg);
}

static void test_unknown_and_positional(void **state)
{
    (void)state;
    LOAD_FAILS("unknown option '--nope' (see --help)", "--nope");
    LOAD_FAILS("unknown option '--nope=1' (see --help)", "--nope=1");
    LOAD_FAILS("unknown option '--por'", "--por", "1");       /* no prefix matching */
    LOAD_FAILS("unknown option '--ports'", "--ports", "1");
    LOAD_FAILS("unknown option '--PORT'", "--PORT", "1");
    LOAD_FAILS("unknown option '--port-files'", "--port-files", "x");
    LOAD_FAILS("unknown option '--'", "--");
    LOAD_FAILS("unexpected argument 'foo' (see --help)", "foo");
    LOAD_FAILS("unexpected argument '-p'", "-p", "1");
    LOAD_FAILS("unexpected argument 'x'", "--port", "1", "x");
    /* errors stop at the first bad argument, even before --help */
    LOAD_FAILS("unknown option '--nope'", "--nope", "--help");
}

static void test_missing_value(void **state)
{
    (void)state;
    LOAD_FAILS("--port needs a value", "--port");
    LOAD_FAILS("--db needs a value", "--db");
    LOAD_FAILS("--turn-ttl needs a value", "--open-presence", "--turn-ttl");
}

static void test_bad_numbers(void **state)
{
    (void)state;
    LOAD_FAILS("--port needs a non-negative number, not 'abc'", "--port", "abc");
    LOAD_FAILS("--port needs a non-negative number, not '-1'", "--port=-1");
    LOAD_FAILS("--port needs a non-negative number, not '12x'", "--port", "12x");
    LOAD_FAILS("--port needs a non-negative number, not ''", "--port=");
    LOAD_FAILS("--port needs a non-negative number", "--port", "1.5");
    LOAD_FAILS("--rate needs a non-negative number", "--rate", "2147483648"); /* > INT_MAX */
    LOAD_FAILS("--max-payload needs a non-negative number", "--max-payload",
               "99999999999999999999999"); /* > LONG_MAX */
    LOAD_FAILS("--port must be at most 65535", "--port", "65536");
    LOAD_FAILS("ping interval and timeout must be positive", "--ping-interval", "0");
    LOAD_FAILS("ping interval and timeout must be positive", "--ping-timeout=0");
    LOAD_FAILS("--rate and --burst must be at least 1", "--rate", "0");
    LOAD_FAILS("--rate and --burst must be at least 1", "--burst=0");
    LOAD_FAILS("--max-event-size must be at least 1024", "--max-event-size", "1023");

    el_server_config cfg;
    LOAD_OK(&cfg, "--port", "65535", "--max-event-size", "1024", "--rate", "2147483647");
    assert_int_equal(cfg.port, 65535);
    assert_int_equal(cfg.max_event_size, 1024);
    assert_int_equal(cfg.rate, 2147483647);
    el_config_clear(&cfg);
    LOAD_OK(&cfg, "--port", "0"); /* any free port */
    assert_int_equal(cfg.port, 0);
    el_config_clear(&cfg);

    /* an error leaves strings that el_config_clear frees (LeakSanitizer) */
    LOAD_FAILS("--port needs", "--web", "w", "--turn-secret=t", "--port", "x");
    /* err may be NULL */
    el_server_config c2;
    assert_int_equal(load(&c2, NULL, 0, "--port", "x", NULL), -1);
    el_config_clear(&c2);
}

/* A bad environment value names the variable and keeps the option's reason.
 * Regression: config.c used to format the message with
 * el_seterr(err, errlen, -1, "%s: %s", env, err) - err both the output and
 * an input of one vsnprintf (undefined behaviour) - and glibc produced
 * "ECHOLINK_PORT: ECHOLINK_PORT: non-negative number, not 'abc'". */
static void test_bad_environment_value(void **state)
{
    (void)state;
    setenv("ECHOLINK_PORT", "abc", 1);
    el_server_config cfg;
    char err[256];
    assert_int_equal(load(&cfg, err, sizeof err, NULL), -1);
    el_config_clear(&cfg);
    assert_string_equal(err, "ECHOLINK_PORT: --port needs a non-negative number, not 'abc'");
}

static void test_bad_environment_value_rejected(void **state)
{
    (void)state;
    el_server_config cfg;
    char err[256];
    setenv("ECHOLINK_OPEN_PRESENCE", "maybe", 1);
    assert_int_equal(load(&cfg, err, sizeof err, NULL), -1);
    el_config_clear(&cfg);
    assert_non_null(strstr(err, "ECHOLINK_OPEN_PRESENCE"));
    unsetenv("ECHOLINK_OPEN_PRESENCE");
    setenv("ECHOLINK_MAX_PAYLOAD", "-5", 1);
    assert_int_equal(load(&cfg, NULL, 0, NULL), -1); /* NULL err on the env path */
    el_config_clear(&cfg);
}

static void test_conformance(void **state)
{
    (void)state;
    el_server_config cfg;
    LOAD_OK(&cfg, "--conformance");
    assert_int_equal(cfg.conformance, 1);
    assert_int_equal(cfg.port, 3000);
    assert_int_equal(cfg.ping_interval_ms, 300);
    assert_int_equal(cfg.ping_timeout_ms, 200);
    assert_int_equal(cfg.connect_timeout_ms, 1000);
    assert_int_equal(cfg.max_payload, 1000000);
    el_config_clear(&cfg);

    /* --port wins, before or after, even when equal to the default 5000 */
    LOAD_OK(&cfg, "--conformance", "--port", "4000");
    assert_int_equal(cfg.port, 4000);
    el_config_clear(&cfg);
    LOAD_OK(&cfg, "--port=4001", "--conformance");
    assert_int_equal(cfg.port, 4001);
    assert_int_equal(cfg.ping_interval_ms, 300);
    el_config_clear(&cfg);
    LOAD_OK(&cfg, "--port", "5000", "--conformance");
    assert_int_equal(cfg.port, 5000);
    el_config_clear(&cfg);
    LOAD_OK(&cfg, "--port", "0", "--conformance");
    assert_int_equal(cfg.port, 0);
    el_config_clear(&cfg);

    /* the preset's timings win over explicit ones */
    LOAD_OK(&cfg, "--ping-interval", "9999", "--conformance", "--max-payload", "5");
    assert_int_equal(cfg.ping_interval_ms, 300);
    assert_int_equal(cfg.max_payload, 1000000);
    el_config_clear(&cfg);

    /* from the environment; ECHOLINK_PORT counts as "port given" */
    setenv("ECHOLINK_CONFORMANCE", "1", 1);
    LOAD_OK(&cfg, "--log-level", "warn");
    assert_int_equal(cfg.conformance, 1);
    assert_int_equal(cfg.port, 3000);
    el_config_clear(&cfg);
    setenv("ECHOLINK_PORT", "4100", 1);
    LOAD_OK(&cfg, "--log-level", "warn");
    assert_int_equal(cfg.port, 4100);
    el_config_clear(&cfg);
    LOAD_OK(&cfg, "--conformance=0");
    assert_int_equal(cfg.conformance, 0);
    assert_int_equal(cfg.ping_interval_ms, 25000);
    el_config_clear(&cfg);
}

static void test_tls_pair(void **state)
{
    (void)state;
    LOAD_FAILS("--tls-cert and --tls-key go together", "--tls-cert", "c.pem");
    LOAD_FAILS("--tls-cert and --tls-key go together", "--tls-key=k.pem");
    setenv("ECHOLINK_TLS_CERT", "c.pem", 1);
    LOAD_FAILS("--tls-cert and --tls-key go together", "--port", "1");
    el_server_config cfg;
    LOAD_OK(&cfg, "--tls-key", "k.pem");
    assert_string_equal(cfg.tls_cert, "c.pem");
    assert_string_equal(cfg.tls_key, "k.pem");
    el_config_clear(&cfg);
    assert_null(cfg.tls_cert);
    assert_null(cfg.tls_key);
}

static char *run_capturing(int *rc, const char *arg1, const char *arg2)
{
    el_test_capture cap;
    assert_int_equal(el_test_stdout_capture_begin(&cap), 0);
    el_server_config cfg;
    char err[128];
    *rc = load(&cfg, err, sizeof err, arg1, arg2, NULL);
    char *out = el_test_stdout_capture_end(&cap);
    el_config_clear(&cfg);
    assert_non_null(out);
    return out;
}

static void test_help_and_version(void **state)
{
    (void)state;
    int rc;
    char *out = run_capturing(&rc, "--help", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "usage: echolinkd"));
    /* every option, its environment name, and a default in brackets */
    static const char *const names[] = {"--port", "--db", "--tls-cert", "--conformance",
                                        "--max-conns-per-ip", "--envelope-ttl", "--version"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strstr(out, names[i]))
            fail_msg("--help does not mention %s", names[i]);
    assert_non_null(strstr(out, "ECHOLINK_MAX_CONNS_PER_IP"));
    assert_non_null(strstr(out, "[25000]"));
    free(out);

    out = run_capturing(&rc, "-h", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "usage: echolinkd"));
    free(out);

    out = run_capturing(&rc, "--port", "1"); /* sanity: normal runs print nothing */
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    free(out);

    out = run_capturing(&rc, "--version", NULL);
    assert_int_equal(rc, 1);
    char want[64];
    snprintf(want, sizeof want, "echolinkd %s\n", EL_VERSION);
    assert_string_equal(out, want);
    free(out);

    /* --help wins over later bad arguments, and silence works for the
     * remaining cases */
    int saved = el_test_stdout_silence();
    el_server_config cfg;
    assert_int_equal(load(&cfg, NULL, 0, "--port", "80", "--help", "--nope", NULL), 1);
    el_config_clear(&cfg);
    assert_int_equal(load(&cfg, NULL, 0, "--version", "--port", "x", NULL), 1);
    el_config_clear(&cfg);
    el_test_stdout_restore(saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_separate_and_equals_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_line_beats_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_positional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_environment_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_environment_value_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conformance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_and_version, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
