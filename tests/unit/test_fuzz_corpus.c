/* test_fuzz_corpus.c - runs every seed in tests/fuzz/corpus/<target>/ through
 * the same invariants as the libFuzzer targets (tests/fuzz/fuzz_checks.h),
 * so fuzz inputs stay exercised in the ordinary ASan+UBSan test build. A
 * crash input that fuzzing found, once fixed, belongs in the corpus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include <cmocka.h>

#include "test.h"

#include "../fuzz/fuzz_checks.h"
#include "../fuzz/fuzz_checks_rtc.h"

/* The targets added for issue 8 keep their checks in the target files. */
#define EL_FUZZ_NO_MAIN
#include "../fuzz/fuzz_event.c"
#include "../fuzz/fuzz_hist.c"
#include "../fuzz/fuzz_http.c"
#include "../fuzz/fuzz_seal.c"
#include "../fuzz/fuzz_ws.c"

#ifndef EL_TEST_DATA
#error "EL_TEST_DATA must name the tests/data directory"
#endif

#define CORPUS EL_TEST_DATA "/../fuzz/corpus"

typedef const char *(*check_fn)(const uint8_t *, size_t);

/* Runs check on every file of CORPUS/<name>; at least min_files. */
static void run_corpus(const char *name, check_fn check, size_t min_files)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", CORPUS, name);
    el_test_run_corpus(dir, check, min_files);
}

static void test_json_corpus(void **state)
{
    (void)state;
    run_corpus("json", el_fuzz_check_json, 10);
}

static void test_sio_corpus(void **state)
{
    (void)state;
    run_corpus("sio", el_fuzz_check_sio, 10);
}

static void test_eio_corpus(void **state)
{
    (void)state;
    run_corpus("eio", el_fuzz_check_eio, 10);
}

static void test_sdp_corpus(void **state)
{
    (void)state;
    run_corpus("sdp", el_fuzz_check_sdp, 8);
}

static void test_dcep_corpus(void **state)
{
    (void)state;
    run_corpus("dcep", el_fuzz_check_dcep, 5);
}

static void test_http_corpus(void **state)
{
    (void)state;
    run_corpus("http", el_fuzz_check_http, 20);
}

static void test_event_corpus(void **state)
{
    (void)state;
    run_corpus("event", el_fuzz_check_event, 30);
}

static void test_ws_corpus(void **state)
{
    (void)state;
    run_corpus("ws", el_fuzz_check_ws, 20);
}

static void test_seal_corpus(void **state)
{
    (void)state;
    run_corpus("seal", el_fuzz_check_seal, 15);
    el_fuzz_seal_done();
}

static void test_hist_corpus(void **state)
{
    (void)state;
    run_corpus("hist", el_fuzz_check_hist, 15);
}

/* Runs steps 1-3 of evcheck.h on one event as the server does; returns the
 * refusal's message, or NULL when accepted (*a then filled). The argument,
 * which *a points into, lives until the next call (event NULL: frees it). */
static const char *event_message(const char *event, el_evargs *a, el_evcheck *ev)
{
    static jsmntok_t tok[64];
    static json_t *arg;
    el_json j;
    const char *msg = NULL;
    json_decref(arg);
    arg = NULL;
    if (!event)
        return NULL;
    if (el_evcheck_event(&j, event, strlen(event), tok, 64, ev) != 0)
        return ev->message;
    if (ev->handler < 0)
        return NULL;
    if (el_evcheck_arg(&j, event, &arg, ev) != 0)
        return ev->message;
    if (el_evcheck_fields((el_ev_handler)ev->handler, EL_FUZZ_EVENT_ME, arg, a, ev) != 0)
        msg = ev->message;
    return msg;
}

/* The messages the clients read (the handlers' wording, which the js suites
 * assert) and what the checks hand over to the handlers. */
static void test_event_messages(void)
{
    static el_evargs a;
    el_evcheck ev;
    const char *m = event_message("[\"login\",", &a, &ev);
    assert_int_equal(ev.reject, EL_REJ_INVALID_JSON);
    assert_true(m && !strncmp(m, "invalid JSON: ", 14) && strlen(m) > 14);
    assert_string_equal(event_message("[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u00e9\"]", &a, &ev),
                        "no such event");
    assert_string_equal(ev.name, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"); /* 39: é not cut */
    assert_int_equal(ev.reject, EL_REJ_UNKNOWN_EVENT);
    assert_string_equal(event_message("[\"unblock\",{}]", &a, &ev), "unblock needs peer_id");
    assert_string_equal(event_message("[\"contact_remove\",{}]", &a, &ev), "contact_remove needs peer_id");
    assert_string_equal(event_message("[\"profile_get\",{}]", &a, &ev), "profile_get needs peer_id");
    assert_string_equal(event_message("[\"block\",{\"peer_id\":\"" EL_FUZZ_EVENT_ME "\"}]", &a, &ev),
                        "block needs another peer's peer_id");
    assert_string_equal(event_message("[\"group_leave\",[]]", &a, &ev), "the argument must be an object");
    ev.login_failed = 0;
    assert_string_equal(event_message("[\"login\",{\"ik\":\"a\",\"sk\":\"b\",\"sk_sig\":\"c\",\"sig\":\"d\"}]",
                                      &a, &ev),
                        "malformed key or signature");
    assert_int_equal(ev.login_failed, 1);
    assert_int_equal(ev.reject, EL_REJ_BAD_REQUEST);
    assert_string_equal(event_message("[\"login\",{\"ik\":\"a\"}]", &a, &ev),
                        "login needs ik, sk, sk_sig and sig strings");
    assert_null(event_message("[\"envelope_ack\",{\"ids\":[\"a-1\",\"B_2\"]}]", &a, &ev));
    assert_int_equal(a.n, 2);
    assert_string_equal(a.ids[1], "B_2");
    assert_string_equal(event_message("[\"envelope_ack\",{\"ids\":[\"a.1\"]}]", &a, &ev),
                        "ids must be envelope id strings");
    assert_null(event_message("[\"group_update\",{\"group_id\":\"g1\",\"remove\":[\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2\"]}]",
                              &a, &ev));
    assert_int_equal(a.n, 0);
    assert_int_equal(a.nrem, 1);
    assert_string_equal(a.group_id, "g1");
    assert_null(a.admin);
    assert_null(event_message("[\"contact_request\",{\"to\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2\"}]", &a, &ev));
    assert_string_equal(a.text, "");
    assert_string_equal(a.peer, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2");
    assert_string_equal(event_message("[\"envelope_send\",{\"to\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2\",\"envelope\":\"Zh\"}]",
                                      &a, &ev),
                        "envelope must be canonical base64url");
    event_message(NULL, &a, &ev);
}

/* The new targets' facts on known inputs: what is served, what is relayed,
 * which envelopes open. */
static void test_new_targets_facts(void **state)
{
    (void)state;
    assert_null(el_fuzz_http_setup());
    const char *root = el_fuzz_http_t.root;
    char out[PATH_MAX];
    assert_int_equal(el_req_map_path(root, "/in.js", out, sizeof out), EL_REQ_FOUND);
    assert_string_equal(out + strlen(root), "/app.js");
    assert_int_equal(el_req_map_path(root, "/sub/", out, sizeof out), EL_REQ_FOUND);
    assert_string_equal(out + strlen(root), "/sub/index.html");
    assert_int_equal(el_req_map_path(root, "/out/secret.txt", out, sizeof out), EL_REQ_NOT_FOUND);
    assert_int_equal(el_req_map_path(root, "/pre/secret.txt", out, sizeof out), EL_REQ_NOT_FOUND);
    assert_int_equal(el_req_map_path(root, "/sub/up/outside/secret.txt", out, sizeof out), EL_REQ_NOT_FOUND);
    assert_int_equal(el_req_map_path(root, "/sub/../index.html", out, sizeof out), EL_REQ_NOT_FOUND);
    assert_int_equal(el_req_map_path(root, "/noindex/", out, sizeof out), EL_REQ_NOT_FOUND);
    assert_int_equal(el_req_map_path(root, "/loop", out, sizeof out), EL_REQ_NOT_FOUND);
    assert_int_equal(el_req_map_path("", "/index.html", out, sizeof out), EL_REQ_NOT_FOUND);
    char *long_path = malloc(PATH_MAX + 2);
    assert_non_null(long_path);
    memset(long_path, 'a', PATH_MAX + 1);
    long_path[0] = '/';
    long_path[PATH_MAX + 1] = '\0';
    assert_int_equal(el_req_map_path(root, long_path, out, sizeof out), EL_REQ_TOO_LONG);
    free(long_path);

    el_req_query q;
    el_req_query_init(&q);
    char a1[] = "EIO=4", a2[] = "transport=polling", a3[] = "sid=0123456789012345678901234567890123";
    el_req_query_arg(&q, a1);
    el_req_query_arg(&q, a2);
    assert_int_equal(el_req_query_poll(&q, 1), EL_REQ_Q_HANDSHAKE);
    assert_int_equal(el_req_query_poll(&q, 0), EL_REQ_Q_BAD_METHOD);
    assert_int_equal(el_req_query_ws_ok(&q), 0);
    el_req_query_arg(&q, a3);
    assert_int_equal(strlen(q.sid), sizeof q.sid - 1); /* cut, so never a live sid */
    assert_int_equal(el_req_query_poll(&q, 0), EL_REQ_Q_SESSION);

    static jsmntok_t tok[64];
    el_json j;
    el_evcheck ev;
    static const char offer[] = "[\"offer\",{\"from\":\"x\",\"to\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2\",\"sdp\":1}]";
    assert_int_equal(el_evcheck_event(&j, offer, sizeof offer - 1, tok, 64, &ev), 0);
    char buf[256], to[33];
    size_t n = 0;
    assert_int_equal(el_evcheck_relay_to(&j, EL_FUZZ_EVENT_ME, to, &ev), 0);
    assert_string_equal(to, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2");
    assert_true(el_evcheck_relay_cap(&j, &ev) <= sizeof buf);
    assert_int_equal(el_evcheck_relay_write(&j, EL_FUZZ_EVENT_ME, buf, sizeof buf, &n, &ev), 0);
    static const char want[] = "42[\"offer\",{\"from\":\"" EL_FUZZ_EVENT_ME "\",\"to\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2\",\"sdp\":1}]";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(buf, want, n);
    static const char dup[] = "[\"answer\",{\"to\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2\",\"to\":\"x\"}]";
    assert_int_equal(el_evcheck_event(&j, dup, sizeof dup - 1, tok, 64, &ev), 0);
    assert_int_equal(el_evcheck_relay_to(&j, EL_FUZZ_EVENT_ME, to, &ev), 0);
    assert_int_equal(el_evcheck_relay_write(&j, EL_FUZZ_EVENT_ME, buf, sizeof buf, &n, &ev), -1);
    assert_int_equal(ev.reject, EL_REJ_BAD_REQUEST);
    assert_string_equal(ev.message, "duplicate 'to'");
    assert_int_equal(n, 0);
    test_event_messages();

    /* an envelope of the corpus opens, with one bit flipped it does not */
    size_t len = 0;
    char *env = el_test_read_file(CORPUS "/seal/alice-ok-chat", &len);
    assert_non_null(env);
    assert_null(el_fuzz_seal_setup());
    uint8_t pt[4096];
    size_t ptlen = 0;
    char pid[33];
    assert_int_equal(el_seal_open(el_fuzz_seal_ids[1], (uint8_t *)env, len, NULL, pid, pt, sizeof pt, &ptlen), EL_OK);
    assert_string_equal(pid, el_identity_peer_id(el_fuzz_seal_ids[0]));
    env[len / 2] ^= 1;
    assert_int_equal(el_seal_open(el_fuzz_seal_ids[1], (uint8_t *)env, len, NULL, pid, pt, sizeof pt, &ptlen),
                     EL_ERR_CRYPTO);
    free(env);
    el_fuzz_seal_done();
}

#define LIT(x) (const uint8_t *)(x), sizeof(x) - 1

/* The checks take both paths (accept and reject) on known inputs, and the
 * independent facts they rely on to excuse jansson's differences (lone
 * surrogate escapes, numbers too big for jansson, depth) are computed
 * correctly. */
static void test_check_helpers(void **state)
{
    (void)state;
    assert_null(el_fuzz_check_json(LIT("[1,{\"a\":\"b\"}]")));
    assert_null(el_fuzz_check_json(LIT("[1,")));
    assert_null(el_fuzz_check_sio(LIT("2/chat,5[\"x\"]")));
    assert_null(el_fuzz_check_sio(LIT("2{}")));
    assert_null(el_fuzz_check_eio(LIT("42[\"a\"]\x1e" "bAQID")));

    el_fuzz_json_facts f;
    static const char a[] = "[\"\\ud800\",1e400,[[]]]";
    el_fuzz_json_scan_facts(a, sizeof a - 1, &f);
    assert_int_equal(f.lone_surrogate, 1);
    assert_int_equal(f.number_overflow, 1);
    assert_int_equal(f.depth, 3);
    static const char b[] = "[\"\\ud83d\\ude00\",123,\"[[[\"]";
    el_fuzz_json_scan_facts(b, sizeof b - 1, &f);
    assert_int_equal(f.lone_surrogate, 0);
    assert_int_equal(f.number_overflow, 0);
    assert_int_equal(f.depth, 1);
    static const char c[] = "\"\\ude00\\ud83d\"";
    el_fuzz_json_scan_facts(c, sizeof c - 1, &f);
    assert_int_equal(f.lone_surrogate, 1);
    static const char d[] = "\"\\ud83d\\n\"";
    el_fuzz_json_scan_facts(d, sizeof d - 1, &f);
    assert_int_equal(f.lone_surrogate, 1);
    static const char e[] = "[9223372036854775808,-9223372036854775808]";
    el_fuzz_json_scan_facts(e, sizeof e - 1, &f);
    assert_int_equal(f.number_overflow, 1);
    static const char g[] = "[9223372036854775807,-9223372036854775808,1e308,1e-400]";
    el_fuzz_json_scan_facts(g, sizeof g - 1, &f);
    assert_int_equal(f.number_overflow, 0);

    assert_null(el_fuzz_check_b64("Zg==", 4, 0));
    assert_null(el_fuzz_check_b64("Zh==", 4, 0)); /* rejected, as it must be */
    assert_null(el_fuzz_check_b64("Zg", 2, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_corpus),
        cmocka_unit_test(test_sio_corpus),
        cmocka_unit_test(test_eio_corpus),
        cmocka_unit_test(test_sdp_corpus),
        cmocka_unit_test(test_dcep_corpus),
        cmocka_unit_test(test_check_helpers),
        cmocka_unit_test(test_http_corpus),
        cmocka_unit_test(test_event_corpus),
        cmocka_unit_test(test_seal_corpus),
        cmocka_unit_test(test_ws_corpus),
        cmocka_unit_test(test_hist_corpus),
        cmocka_unit_test(test_new_targets_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
