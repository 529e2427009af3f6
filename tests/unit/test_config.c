/* test_config.c - src/server/config: defaults, --opt value, --opt=value,
 * ECHOLINK_* environment, the --config file (format, every error with its
 * file:line, precedence command line > environment > file > defaults,
 * ECHOLINK_CONFIG), the --conformance preset, --help/--version, and that
 * etc/echolinkd.conf.example and docs/man/echolinkd.8 list every option of
 * the table. Every test starts with no ECHOLINK_* variable set (whatever the
 * caller's environment holds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    assert_int_equal(cfg.max_new_ids_per_ip, 100);
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
    LOAD_FAILS("unknown option '--help-me'", "--help-me");
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
    LOAD_FAILS("--port needs a non-negative number, not '+1'", "--port", "+1");
    LOAD_FAILS("--port needs a non-negative number, not ' 1'", "--port", " 1");
    LOAD_FAILS("--rate must be at most 2147483647, not '2147483648'", "--rate",
               "2147483648"); /* > INT_MAX */
    LOAD_FAILS("--max-payload must be at most", "--max-payload",
               "99999999999999999999999"); /* > LONG_MAX */
    LOAD_FAILS("--port must be at most 65535, not '65536'", "--port", "65536");
    LOAD_FAILS("--ping-interval must be at least 1, not '0'", "--ping-interval", "0");
    LOAD_FAILS("--ping-timeout must be at least 1, not '0'", "--ping-timeout=0");
    LOAD_FAILS("--rate must be at least 1, not '0'", "--rate", "0");
    LOAD_FAILS("--burst must be at least 1, not '0'", "--burst=0");
    LOAD_FAILS("--max-event-size must be at least 1024, not '1023'", "--max-event-size", "1023");
    LOAD_FAILS("--log-level must be one of error, warn, info, debug; not 'loud'", "--log-level",
               "loud");

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
                                        "--max-conns-per-ip", "--envelope-ttl", "--version",
                                        "--config", "--help"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strstr(out, names[i]))
            fail_msg("--help does not mention %s", names[i]);
    assert_non_null(strstr(out, "ECHOLINK_MAX_CONNS_PER_IP"));
    assert_non_null(strstr(out, "every option but --config is a `name = value` line"));
    assert_non_null(strstr(out, "(env ECHOLINK_CONFIG)"));
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

/* ---- the configuration file ---- */

/* A temporary file holding `text`; *path receives its name (unlink it). */
static void write_temp(char *path, size_t pathlen, const char *text)
{
    snprintf(path, pathlen, "/tmp/el_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* Loads `text` as the --config file with the extra arguments given, and
 * expects an error that is exactly "PATH:" followed by `want`. */
static void file_fails(const char *text, const char *want)
{
    char path[64], err[512], full[512];
    write_temp(path, sizeof path, text);
    el_server_config cfg;
    int rc = load(&cfg, err, sizeof err, "--config", path, NULL);
    el_config_clear(&cfg);
    unlink(path);
    snprintf(full, sizeof full, "%s:%s", path, want);
    if (rc != -1)
        fail_msg("expected -1 for \"%s\", got %d", want, rc);
    if (strcmp(err, full) != 0)
        fail_msg("error \"%s\", expected \"%s\"", err, full);
}

static void test_file_valid(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, sizeof path,
               "\xEF\xBB\xBF# echolinkd test configuration\n"
               "\n"
               "   # an indented comment\n"
               "port = 8443\n"
               "bind=127.0.0.1\n"
               "\tdb\t=\tsqlite:/var/lib/echolink/e.db  \n"
               "log-level = debug\r\n"
               "open-presence = yes\n"
               "conformance = false\n"
               "max-payload = 5000\n"
               "max-event-size = 2048\n"
               "turn-secret = a=b#c d\n" /* '=' and '#' belong to the value */
               "turn-urls = turn:a:3478,turn:b:3478\n"
               "tls-cert = /etc/echolink/cert.pem\n"
               "tls-key = /etc/echolink/key.pem\n"
               "envelope-ttl = 60"); /* no newline at the end */
    el_server_config cfg;
    LOAD_OK(&cfg, "--config", path);
    assert_string_equal(cfg.config, path);
    assert_int_equal(cfg.port, 8443);
    assert_string_equal(cfg.bind, "127.0.0.1");
    assert_string_equal(cfg.db, "sqlite:/var/lib/echolink/e.db");
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(cfg.open_presence, 1);
    assert_int_equal(cfg.conformance, 0);
    assert_int_equal(cfg.max_payload, 5000);
    assert_int_equal(cfg.max_event_size, 2048);
    assert_string_equal(cfg.turn_secret, "a=b#c d");
    assert_string_equal(cfg.turn_urls, "turn:a:3478,turn:b:3478");
    assert_string_equal(cfg.tls_cert, "/etc/echolink/cert.pem");
    assert_int_equal(cfg.envelope_ttl, 60);
    /* keys not in the file keep their defaults */
    assert_int_equal(cfg.rate, 50);
    assert_null(cfg.web);
    el_config_clear(&cfg);
    assert_null(cfg.config);

    /* --config=PATH, and a file of comments only gives the defaults */
    char empty[64], arg[80];
    write_temp(empty, sizeof empty, "# nothing\n\n#port = 1\n");
    snprintf(arg, sizeof arg, "--config=%s", empty);
    LOAD_OK(&cfg, arg);
    assert_int_equal(cfg.port, 5000);
    assert_string_equal(cfg.db, "sqlite:data/echolink.db");
    el_config_clear(&cfg);

    /* --conformance in the file: its port only if the file has none */
    char conf[64];
    write_temp(conf, sizeof conf, "conformance = 1\n");
    LOAD_OK(&cfg, "--config", conf);
    assert_int_equal(cfg.port, 3000);
    assert_int_equal(cfg.ping_interval_ms, 300);
    el_config_clear(&cfg);
    LOAD_OK(&cfg, "--config", path, "--conformance");
    assert_int_equal(cfg.port, 8443);
    el_config_clear(&cfg);
    unlink(conf);
    unlink(empty);
    unlink(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    file_fails("port = 1\nprot = 2\n", "2: unknown key 'prot'");
    file_fails("Port = 1\n", "1: unknown key 'Port'"); /* keys are lower case */
    file_fails("--port = 1\n", "1: unknown key '--port' (keys have no leading dashes)");
    file_fails("# words for numbers\nmax-conns = many\n",
               "2: max-conns needs a non-negative number, not 'many'");
    file_fails("port = 80 # web\n", "1: port needs a non-negative number, not '80 # web'");
    file_fails("port = -1\n", "1: port needs a non-negative number, not '-1'");
    file_fails("port = 70000\n", "1: port must be at most 65535, not '70000'");
    file_fails("rate = 0\n", "1: rate must be at least 1, not '0'");
    file_fails("max-event-size = 100\n", "1: max-event-size must be at least 1024, not '100'");
    file_fails("open-presence = maybe\n",
               "1: open-presence needs 1/0, true/false or yes/no, not 'maybe'");
    file_fails("log-level = loud\n",
               "1: log-level must be one of error, warn, info, debug; not 'loud'");
    file_fails("port = 1\n\ndb = sqlite::memory:\nport = 1\n",
               "4: duplicate key 'port' (first set on line 1)");
    file_fails("port 80\n", "1: expected 'key = value', not 'port 80'");
    file_fails("port: 80\n", "1: expected 'key = value', not 'port: 80'");
    file_fails("= 80\n", "1: expected 'key = value', not '= 80'");
    file_fails("[server]\n", "1: expected 'key = value', not '[server]'");
    file_fails("web =\n", "1: web has no value");
    file_fails("config = /etc/other.conf\n", "1: 'config' is not valid in a configuration file");
    file_fails("help = 1\n", "1: 'help' is a command-line action, not a configuration key");
    file_fails("version = yes\n", "1: 'version' is a command-line action, not a configuration key");

    /* a line longer than EL_CONFIG_MAX_LINE */
    size_t n = EL_CONFIG_MAX_LINE + 100;
    char *big = malloc(n + 16);
    assert_non_null(big);
    strcpy(big, "# ok\nweb = ");
    size_t len = strlen(big);
    memset(big + len, 'w', n - len);
    big[n] = '\0';
    char want[64];
    snprintf(want, sizeof want, "2: line longer than %d bytes", EL_CONFIG_MAX_LINE);
    file_fails(big, want);
    free(big);

    /* a file that cannot be read */
    LOAD_FAILS("cannot read configuration file '/nonexistent/echolinkd.conf': No such file",
               "--config", "/nonexistent/echolinkd.conf");
    LOAD_FAILS("--config needs a value", "--config");

    /* strings set before the bad line are freed by el_config_clear (LSan) */
    file_fails("web = w\nturn-secret = s\nport = x\n",
               "3: port needs a non-negative number, not 'x'");
}

static void test_file_precedence(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, sizeof path,
               "port = 1111\ndb = sqlite:file.db\nopen-presence = yes\nrate = 11\n"
               "turn-secret = file\n");
    el_server_config cfg;

    /* file over defaults */
    LOAD_OK(&cfg, "--config", path);
    assert_int_equal(cfg.port, 1111);
    assert_string_equal(cfg.db, "sqlite:file.db");
    assert_int_equal(cfg.open_presence, 1);
    assert_int_equal(cfg.rate, 11);
    assert_int_equal(cfg.burst, 100);
    el_config_clear(&cfg);

    /* environment over file */
    setenv("ECHOLINK_PORT", "2222", 1);
    setenv("ECHOLINK_DB", "sqlite:env.db", 1);
    setenv("ECHOLINK_OPEN_PRESENCE", "0", 1);
    LOAD_OK(&cfg, "--config", path);
    assert_int_equal(cfg.port, 2222);
    assert_string_equal(cfg.db, "sqlite:env.db");
    assert_int_equal(cfg.open_presence, 0);
    assert_int_equal(cfg.rate, 11);
    assert_string_equal(cfg.turn_secret, "file");
    el_config_clear(&cfg);

    /* command line over environment over file, whatever the argument order */
    LOAD_OK(&cfg, "--port", "3333", "--config", path, "--turn-secret=cli", "--open-presence");
    assert_int_equal(cfg.port, 3333);
    assert_string_equal(cfg.db, "sqlite:env.db");
    assert_int_equal(cfg.open_presence, 1);
    assert_string_equal(cfg.turn_secret, "cli");
    assert_int_equal(cfg.rate, 11);
    el_config_clear(&cfg);

    /* a bad value in the file is an error even when a flag overrides it:
     * the file is wrong, and saying so early beats a surprise later */
    char bad[64];
    write_temp(bad, sizeof bad, "port = 99999\n");
    char err[256];
    assert_int_equal(load(&cfg, err, sizeof err, "--config", bad, "--port", "1", NULL), -1);
    el_config_clear(&cfg);
    assert_non_null(strstr(err, ":1: port must be at most 65535"));
    unlink(bad);
    unlink(path);
}

static void test_config_from_environment(void **state)
{
    (void)state;
    char a[64], b[64];
    write_temp(a, sizeof a, "port = 4001\nweb = a\n");
    write_temp(b, sizeof b, "port = 4002\n");
    el_server_config cfg;

    setenv("ECHOLINK_CONFIG", a, 1);
    LOAD_OK(&cfg, "--log-level", "warn");
    assert_string_equal(cfg.config, a);
    assert_int_equal(cfg.port, 4001);
    assert_string_equal(cfg.web, "a");
    el_config_clear(&cfg);

    /* --config beats ECHOLINK_CONFIG: only one file is read */
    LOAD_OK(&cfg, "--config", b);
    assert_string_equal(cfg.config, b);
    assert_int_equal(cfg.port, 4002);
    assert_null(cfg.web);
    el_config_clear(&cfg);

    /* a missing file named by the environment is an error, with the name */
    setenv("ECHOLINK_CONFIG", "/nonexistent/e.conf", 1);
    LOAD_FAILS("cannot read configuration file '/nonexistent/e.conf'", "--port", "1");

    /* --help and --version do not read the file */
    int saved = el_test_stdout_silence();
    assert_int_equal(load(&cfg, NULL, 0, "--help", NULL), 1);
    el_config_clear(&cfg);
    assert_int_equal(load(&cfg, NULL, 0, "--config", "/nonexistent/x", "--version", NULL), 1);
    el_config_clear(&cfg);
    el_test_stdout_restore(saved);
    unlink(a);
    unlink(b);
}

/* The option table as el_config_option_get() shows it. */
static void test_option_table(void **state)
{
    (void)state;
    el_config_option o;
    size_t n = 0, actions = 0;
    int saw_config = 0;
    while (el_config_option_get(n, &o) == 0) {
        assert_non_null(o.name);
        assert_non_null(o.help);
        if (!strcmp(o.type, "action")) {
            actions++;
            assert_false(o.file_key);
        } else if (!strcmp(o.name, "config")) {
            saw_config = 1;
            assert_false(o.file_key);
        } else {
            assert_true(o.file_key);
        }
        if (!strcmp(o.type, "number"))
            assert_true(o.min <= o.max);
        n++;
    }
    assert_true(n > 20);
    assert_int_equal(actions, 2); /* --help, --version */
    assert_true(saw_config);
    assert_int_equal(el_config_option_get(n + 100, &o), -1);
}

#define EXAMPLE_FILE EL_TEST_DATA "/../../etc/echolinkd.conf.example"

/* etc/echolinkd.conf.example cannot drift from the table: every file key
 * appears in it as a commented line `#key = value` (no space after '#'; prose
 * comments have one), with the table's default when there is one; no action
 * or --config appears as a key; and with every such line uncommented the
 * file loads (so every example value is valid and every key still exists). */
static void test_example_file(void **state)
{
    (void)state;
    size_t len;
    char *text = el_test_read_file(EXAMPLE_FILE, &len);
    if (!text)
        fail_msg("cannot read %s", EXAMPLE_FILE);

    /* problems are collected, not failed on at once: fail_msg() jumps out
     * and would leak `text` (LeakSanitizer) */
    char problem[512] = "";
    el_config_option o;
    for (size_t i = 0; !problem[0] && el_config_option_get(i, &o) == 0; i++) {
        char want[256];
        snprintf(want, sizeof want, "\n#%s = ", o.name);
        const char *hit = strstr(text, want);
        if (!o.file_key) {
            if (hit)
                snprintf(problem, sizeof problem, "lists '%s', which is not a file key", o.name);
        } else if (!hit) {
            snprintf(problem, sizeof problem, "does not list the key '%s' (as \"#%s = ...\")",
                     o.name, o.name);
        } else if (strstr(hit + 1, want)) {
            snprintf(problem, sizeof problem, "lists '%s' twice", o.name);
        } else if (o.def) {
            snprintf(want, sizeof want, "\n#%s = %s\n", o.name, o.def);
            if (!strstr(text, want))
                snprintf(problem, sizeof problem, "'%s' should show its default %s", o.name,
                         o.def);
        }
    }
    if (problem[0]) {
        free(text);
        fail_msg("%s %s", EXAMPLE_FILE, problem);
    }

    /* uncomment "#key = value" lines and load the result */
    char *out = malloc(len + 1);
    assert_non_null(out);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int bol = i == 0 || text[i - 1] == '\n';
        if (bol && text[i] == '#' && i + 1 < len && text[i + 1] >= 'a' && text[i + 1] <= 'z')
            continue;
        out[n++] = text[i];
    }
    out[n] = '\0';
    char path[64];
    write_temp(path, sizeof path, out);
    free(out);
    free(text);
    el_server_config cfg;
    char err[512];
    int rc = load(&cfg, err, sizeof err, "--config", path, NULL);
    el_config_clear(&cfg);
    unlink(path);
    if (rc != 0)
        fail_msg("the example file, uncommented, does not load: %s", err);
}

#define MAN_PAGE EL_TEST_DATA "/../../docs/man/echolinkd.8"

/* docs/man/echolinkd.8 documents every option of the table: roff spells
 * --max-conns as \-\-max\-conns. */
static void test_man_page(void **state)
{
    (void)state;
    size_t len;
    char *text = el_test_read_file(MAN_PAGE, &len);
    if (!text)
        fail_msg("cannot read %s", MAN_PAGE);
    char missing[64] = "";
    el_config_option o;
    for (size_t i = 0; !missing[0] && el_config_option_get(i, &o) == 0; i++) {
        char want[128] = "\\-\\-";
        size_t n = strlen(want);
        for (const char *c = o.name; *c && n + 3 < sizeof want; c++) {
            if (*c == '-')
                want[n++] = '\\';
            want[n++] = *c;
        }
        want[n] = '\0';
        if (!strstr(text, want))
            snprintf(missing, sizeof missing, "%s", o.name);
    }
    int has_file_section = strstr(text, ".SH CONFIGURATION FILE") != NULL;
    free(text);
    if (missing[0])
        fail_msg("%s does not document --%s", MAN_PAGE, missing);
    assert_true(has_file_section);
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
        cmocka_unit_test_setup_teardown(test_file_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_from_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_man_page, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
