/* test_ctl.c - src/client/ctl: the control socket. The server runs on a
 * private GMainContext (never the global default, so a source attached to
 * the wrong context would never run) that the test iterates, while
 * el_ctl_call runs in a GThread, and raw clients speak the line protocol
 * directly: request/response, answers given later and out of order, invalid
 * JSON, the line limit, stale and live sockets at the path, subscribe and
 * broadcast, slow subscribers, the client limit, timeouts and the socket's
 * mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stdbool.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>

#include "base/err.h"
#include "client/ctl.h"

#define WAIT_MS 5000 /* upper bound for anything that should happen at once */

/* ---- fixture ------------------------------------------------------------------ */

typedef struct {
    int calls;            /* requests that reached the handler */
    el_ctl_conn conn;     /* of the last "later" request */
    json_int_t id;
    bool pending;         /* a "later" request waits for the test to answer */
} handler_state;

typedef struct {
    char dir[64];
    char path[128];
    GMainContext *ctx;
    el_ctl_server *srv;
    handler_state h;
} fixture;

/* echo: answers at once; fail: an error answer; later: the test answers;
 * never: nobody answers. */
static void handler(el_ctl_server *srv, el_ctl_conn conn, json_t *req, void *user)
{
    handler_state *h = user;
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    json_int_t id = json_integer_value(json_object_get(req, "id"));
    h->calls++;
    if (strcmp(cmd, "echo") == 0) {
        json_t *text = json_object_get(req, "text");
        assert_int_equal(el_ctl_reply(srv, conn, id,
                                      json_pack("{s:O?}", "echo", text)),
                         EL_OK);
    } else if (strcmp(cmd, "fail") == 0) {
        assert_int_equal(el_ctl_reply_error(srv, conn, id, "failed on purpose"), EL_OK);
    } else if (strcmp(cmd, "later") == 0) {
        h->conn = conn;
        h->id = id;
        h->pending = true;
    }
}

static el_ctl_server *server_ok(fixture *f)
{
    el_ctl_server *srv = NULL;
    char err[256] = "";
    int rc = el_ctl_server_new(f->ctx, f->path, handler, &f->h, &srv, err, sizeof err);
    if (rc != EL_OK)
        fail_msg("el_ctl_server_new: %d %s", rc, err);
    return srv;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/el_ctl_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/control.sock", f->dir);
    f->ctx = g_main_context_new();
    f->srv = server_ok(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    el_ctl_server_free(f->srv);
    /* nothing may stay attached to the context once the server is gone */
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    g_main_context_unref(f->ctx);
    unlink(f->path);
    if (rmdir(f->dir) != 0)
        fail_msg("rmdir %s: %s (left over files)", f->dir, strerror(errno));
    free(f);
    return 0;
}

static void pump(fixture *f)
{
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    g_usleep(500);
}

/* Iterates the server's context until *flag becomes true. */
static void pump_until(fixture *f, const gint *flag, const char *what)
{
    gint64 end = g_get_monotonic_time() + (gint64)WAIT_MS * 1000;
    while (!g_atomic_int_get(flag)) {
        if (g_get_monotonic_time() > end)
            fail_msg("timed out waiting for %s", what);
        pump(f);
    }
}

static void pump_clients(fixture *f, size_t want)
{
    gint64 end = g_get_monotonic_time() + (gint64)WAIT_MS * 1000;
    while (el_ctl_server_clients(f->srv) != want) {
        if (g_get_monotonic_time() > end)
            fail_msg("clients %zu, want %zu", el_ctl_server_clients(f->srv), want);
        pump(f);
    }
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)", needle);
}

/* ---- el_ctl_call in a thread ------------------------------------------------------ */

typedef struct {
    const char *path;
    json_t *req;
    unsigned timeout_ms;
    GMainContext *ctx;
    int rc;
    json_t *resp;
    char err[256];
    gint64 elapsed_us;
    gint done;
} call_job;

static gpointer call_thread(gpointer data)
{
    call_job *j = data;
    gint64 t0 = g_get_monotonic_time();
    j->rc = el_ctl_call(j->path, j->req, &j->resp, j->timeout_ms, j->err, sizeof j->err);
    j->elapsed_us = g_get_monotonic_time() - t0;
    g_atomic_int_set(&j->done, 1);
    g_main_context_wakeup(j->ctx);
    return NULL;
}

static GThread *call_start(fixture *f, call_job *j, json_t *req, unsigned timeout_ms)
{
    memset(j, 0, sizeof *j);
    j->path = f->path;
    j->req = req;
    j->timeout_ms = timeout_ms;
    j->ctx = f->ctx;
    return g_thread_new("ctl-call", call_thread, j);
}

static void call_finish(fixture *f, call_job *j, GThread *t)
{
    pump_until(f, &j->done, "el_ctl_call");
    g_thread_join(t);
    json_decref(j->req);
}

/* A whole call while the test serves: returns the response (owned). */
static json_t *call(fixture *f, json_t *req)
{
    call_job j;
    GThread *t = call_start(f, &j, req, WAIT_MS);
    call_finish(f, &j, t);
    if (j.rc != EL_OK)
        fail_msg("el_ctl_call: %d %s", j.rc, j.err);
    return j.resp;
}

/* ---- raw clients ------------------------------------------------------------------ */

typedef struct {
    int fd;
    GString *in;
} raw;

static raw raw_connect(fixture *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    raw r = {socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), g_string_new(NULL)};
    assert_true(r.fd >= 0);
    if (connect(r.fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        fail_msg("connect: %s", strerror(errno));
    return r;
}

static void raw_close(raw *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    g_string_free(r->in, TRUE);
    r->in = NULL;
}

static void raw_write(fixture *f, raw *r, const char *data, size_t len)
{
    gint64 end = g_get_monotonic_time() + (gint64)WAIT_MS * 1000;
    while (len) {
        ssize_t w = send(r->fd, data, len, MSG_NOSIGNAL);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN)
            fail_msg("send: %s", strerror(errno));
        if (g_get_monotonic_time() > end)
            fail_msg("server does not read");
        pump(f); /* let the server drain the socket */
    }
}

static void raw_puts(fixture *f, raw *r, const char *line)
{
    raw_write(f, r, line, strlen(line));
}

/* The next line (owned, without '\n'), or NULL at end of stream. Fails the
 * test when nothing comes within WAIT_MS. */
static char *raw_line(fixture *f, raw *r)
{
    gint64 end = g_get_monotonic_time() + (gint64)WAIT_MS * 1000;
    for (;;) {
        char *nl = memchr(r->in->str, '\n', r->in->len);
        if (nl) {
            char *line = g_strndup(r->in->str, (gsize)(nl - r->in->str));
            g_string_erase(r->in, 0, nl - r->in->str + 1);
            return line;
        }
        char buf[65536];
        ssize_t n = recv(r->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            g_string_append_len(r->in, buf, n);
            continue;
        }
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return NULL;
        if (errno != EAGAIN)
            fail_msg("recv: %s", strerror(errno));
        if (g_get_monotonic_time() > end)
            fail_msg("no line from the server");
        pump(f);
    }
}

static json_t *raw_json(fixture *f, raw *r)
{
    char *line = raw_line(f, r);
    if (!line)
        fail_msg("connection closed, a line was expected");
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    if (!o)
        fail_msg("server sent invalid JSON: %s", line);
    g_free(line);
    return o;
}

/* Nothing more arrives for a moment (while the server runs). */
static void raw_quiet(fixture *f, raw *r)
{
    for (int i = 0; i < 50; i++)
        pump(f);
    char b;
    ssize_t n = recv(r->fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    assert_true(n < 0 && errno == EAGAIN);
    assert_int_equal(r->in->len, 0);
}

/* {"id": null or want_id, "ok": false, "error": "...text..."} */
static void check_error(json_t *o, bool null_id, json_int_t want_id, const char *text)
{
    json_t *id = json_object_get(o, "id");
    assert_non_null(id);
    if (null_id)
        assert_true(json_is_null(id));
    else
        assert_int_equal(json_integer_value(id), want_id);
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_contains(json_string_value(json_object_get(o, "error")), text);
}

#define assert_error_reply(o, text) check_error((o), true, 0, (text))
#define assert_error_reply_id(o, id, text) check_error((o), false, (id), (text))

/* ---- tests ------------------------------------------------------------------------ */

static void test_request_response(void **state)
{
    fixture *f = *state;
    struct stat st;
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    json_t *r = call(f, json_pack("{s:I,s:s,s:s}", "id", (json_int_t)7, "cmd", "echo", "text",
                                  "hi"));
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
    assert_true(json_is_true(json_object_get(r, "ok")));
    assert_string_equal(json_string_value(json_object_get(r, "echo")), "hi");
    json_decref(r);

    /* no id in the request: el_ctl_call supplies one */
    r = call(f, json_pack("{s:s,s:s}", "cmd", "echo", "text", "no id"));
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(r, "echo")), "no id");
    json_decref(r);

    /* an error answer is still a successful call */
    r = call(f, json_pack("{s:I,s:s}", "id", (json_int_t)-3, "cmd", "fail"));
    assert_error_reply_id(r, -3, "failed on purpose");
    json_decref(r);

    /* built in: never reaches the handler */
    r = call(f, json_pack("{s:s}", "cmd", "ping"));
    assert_true(json_is_true(json_object_get(r, "ok")));
    assert_int_equal(json_integer_value(json_object_get(r, "pid")), getpid());
    json_decref(r);
    assert_int_equal(f->h.calls, 3);

    /* every call's connection is gone afterwards */
    pump_clients(f, 0);

    /* a server without a handler answers "unknown command" */
    el_ctl_server_free(f->srv);
    char err[256];
    assert_int_equal(el_ctl_server_new(f->ctx, f->path, NULL, NULL, &f->srv, err, sizeof err),
                     EL_OK);
    r = call(f, json_pack("{s:s}", "cmd", "echo"));
    assert_error_reply_id(r, 1, "unknown command");
    json_decref(r);
}

static void test_async_reply(void **state)
{
    fixture *f = *state;
    call_job j;
    GThread *t = call_start(f, &j, json_pack("{s:I,s:s}", "id", (json_int_t)41, "cmd", "later"),
                            WAIT_MS);
    while (!f->h.pending) {
        pump(f);
        if (g_atomic_int_get(&j.done))
            fail_msg("call ended before an answer: %s", j.err);
    }
    assert_int_equal(f->h.id, 41);
    for (int i = 0; i < 40; i++)
        pump(f);
    assert_false(g_atomic_int_get(&j.done)); /* still waiting for the owner */

    assert_int_equal(el_ctl_reply(f->srv, f->h.conn, f->h.id, json_pack("{s:i}", "result", 42)),
                     EL_OK);
    call_finish(f, &j, t);
    assert_int_equal(j.rc, EL_OK);
    assert_int_equal(json_integer_value(json_object_get(j.resp, "id")), 41);
    assert_true(json_is_true(json_object_get(j.resp, "ok")));
    assert_int_equal(json_integer_value(json_object_get(j.resp, "result")), 42);
    json_decref(j.resp);

    /* answers go out when ready, not in request order */
    raw r = raw_connect(f);
    f->h.pending = false;
    raw_puts(f, &r, "{\"id\":1,\"cmd\":\"later\"}\n{\"id\":2,\"cmd\":\"echo\",\"text\":\"b\"}\n");
    json_t *o = raw_json(f, &r);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 2);
    json_decref(o);
    assert_true(f->h.pending);
    /* a response with its own "id" and "ok": ours win for id, theirs for ok */
    assert_int_equal(el_ctl_reply(f->srv, f->h.conn, 1,
                                  json_pack("{s:i,s:b,s:s}", "id", 99, "ok", 0, "error", "x")),
                     EL_OK);
    o = raw_json(f, &r);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 1);
    assert_true(json_is_false(json_object_get(o, "ok")));
    json_decref(o);
    /* NULL stands for {} */
    f->h.pending = false;
    raw_puts(f, &r, "{\"id\":3,\"cmd\":\"later\"}\n");
    while (!f->h.pending)
        pump(f);
    assert_int_equal(el_ctl_reply(f->srv, f->h.conn, 3, NULL), EL_OK);
    o = raw_json(f, &r);
    assert_int_equal(json_object_size(o), 2);
    assert_true(json_is_true(json_object_get(o, "ok")));
    json_decref(o);
    /* a response that is not an object is refused (and freed) */
    assert_int_equal(el_ctl_reply(f->srv, f->h.conn, 3, json_integer(1)), EL_ERR_INVALID);

    /* the client leaves; answering it then is a harmless no-op */
    f->h.pending = false;
    raw_puts(f, &r, "{\"id\":4,\"cmd\":\"later\"}\n");
    while (!f->h.pending)
        pump(f);
    raw_close(&r);
    pump_clients(f, 0);
    assert_int_equal(el_ctl_reply(f->srv, f->h.conn, 4, json_object()), EL_OK);
    assert_int_equal(el_ctl_reply_error(f->srv, f->h.conn, 4, "gone"), EL_OK);
    assert_int_equal(el_ctl_reply(f->srv, 0, 1, NULL), EL_OK);
    assert_int_equal(el_ctl_reply(f->srv, 123456, 1, NULL), EL_OK);
}

static void test_invalid_requests(void **state)
{
    fixture *f = *state;
    raw r = raw_connect(f);
    json_t *o;

    raw_puts(f, &r, "not json\n");
    o = raw_json(f, &r);
    assert_error_reply(o, "invalid JSON");
    json_decref(o);

    raw_puts(f, &r, "[1,2]\n");
    o = raw_json(f, &r);
    assert_error_reply(o, "a request is a JSON object");
    json_decref(o);

    raw_puts(f, &r, "{\"cmd\":\"echo\"}\n{\"id\":\"5\",\"cmd\":\"echo\"}\n");
    for (int i = 0; i < 2; i++) {
        o = raw_json(f, &r);
        assert_error_reply(o, "integer \"id\"");
        json_decref(o);
    }

    raw_puts(f, &r, "{\"id\":3}\n{\"id\":4,\"cmd\":7}\n");
    o = raw_json(f, &r);
    assert_error_reply_id(o, 3, "\"cmd\" string");
    json_decref(o);
    o = raw_json(f, &r);
    assert_error_reply_id(o, 4, "\"cmd\" string");
    json_decref(o);

    raw_puts(f, &r, "{\"id\":1,\"cmd\":\"echo\",\"id\":2}\n"); /* duplicate member */
    o = raw_json(f, &r);
    assert_error_reply(o, "invalid JSON");
    json_decref(o);

    /* empty lines are nothing; the connection is still fine, and a request
     * split across writes, with CRLF, works */
    raw_puts(f, &r, "\n\r\n{\"id\":5,\"cmd\":\"ec");
    raw_quiet(f, &r);
    raw_puts(f, &r, "ho\",\"text\":\"still here\"}\r\n");
    o = raw_json(f, &r);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 5);
    assert_string_equal(json_string_value(json_object_get(o, "echo")), "still here");
    json_decref(o);
    assert_int_equal(el_ctl_server_clients(f->srv), 1);
    assert_int_equal(f->h.calls, 1);
    raw_close(&r);

    /* a client that stops writing still gets the answers it asked for */
    r = raw_connect(f);
    raw_puts(f, &r, "{\"id\":6,\"cmd\":\"echo\",\"text\":\"bye\"}\n");
    assert_int_equal(shutdown(r.fd, SHUT_WR), 0);
    o = raw_json(f, &r);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 6);
    json_decref(o);
    char *end = raw_line(f, &r);
    assert_null(end);
    raw_close(&r);
    pump_clients(f, 0);
}

static void test_line_limit(void **state)
{
    fixture *f = *state;
    /* exactly EL_CTL_LINE_MAX bytes: accepted */
    const char *head = "{\"id\":9,\"cmd\":\"echo\",\"text\":\"";
    const char *tail = "\"}";
    size_t pad = EL_CTL_LINE_MAX - strlen(head) - strlen(tail);
    GString *line = g_string_new(head);
    for (size_t i = 0; i < pad; i++)
        g_string_append_c(line, 'x');
    g_string_append(line, tail);
    assert_int_equal(line->len, EL_CTL_LINE_MAX);
    g_string_append_c(line, '\n');
    raw r = raw_connect(f);
    raw_write(f, &r, line->str, line->len);
    json_t *o = raw_json(f, &r);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 9);
    assert_int_equal(json_string_length(json_object_get(o, "echo")), pad);
    json_decref(o);

    /* one byte more: an error, then the connection is closed */
    g_string_truncate(line, line->len - 1 - strlen(tail));
    g_string_append(line, "x\"}");
    assert_int_equal(line->len, EL_CTL_LINE_MAX + 1);
    raw_write(f, &r, line->str, line->len); /* no newline needed to be too long */
    o = raw_json(f, &r);
    assert_error_reply(o, "longer than 1048576 bytes");
    json_decref(o);
    assert_null(raw_line(f, &r));
    raw_close(&r);
    pump_clients(f, 0);
    assert_int_equal(f->h.calls, 1);
    g_string_free(line, TRUE);
}

static void test_stale_and_live_socket(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    el_ctl_server *other = (el_ctl_server *)1;

    /* a live server at the path: refused, and the live one keeps working */
    assert_int_equal(el_ctl_server_new(f->ctx, f->path, handler, &f->h, &other, err, sizeof err),
                     EL_ERR_STATE);
    assert_null(other);
    assert_contains(err, "another echolink is serving");
    json_t *r = call(f, json_pack("{s:s}", "cmd", "ping"));
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);

    /* free removes the socket; then nobody owns the profile */
    el_ctl_server_free(f->srv);
    f->srv = NULL;
    assert_int_equal(access(f->path, F_OK), -1);
    json_t *resp = (json_t *)1;
    json_t *req = json_pack("{s:s}", "cmd", "ping");
    assert_int_equal(el_ctl_call(f->path, req, &resp, 1000, err, sizeof err), EL_ERR_NOT_FOUND);
    assert_null(resp);
    assert_contains(err, "no running echolink owns this profile");

    /* a socket left by a crash (bound, never unlinked, nobody listening) */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    assert_int_equal(el_ctl_call(f->path, req, &resp, 1000, err, sizeof err), EL_ERR_NOT_FOUND);
    f->srv = server_ok(f);
    r = call(f, json_incref(req));
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* not a socket: left alone */
    el_ctl_server_free(f->srv);
    f->srv = NULL;
    FILE *file = fopen(f->path, "w");
    assert_non_null(file);
    fputs("keep me", file);
    fclose(file);
    assert_int_equal(el_ctl_server_new(f->ctx, f->path, handler, &f->h, &other, err, sizeof err),
                     EL_ERR_EXISTS);
    assert_contains(err, "not a socket");
    assert_int_equal(access(f->path, F_OK), 0);
    unlink(f->path);
    f->srv = server_ok(f);
    json_decref(req);
}

static void test_bad_paths(void **state)
{
    fixture *f = *state;
    char err[256] = "", longpath[200];
    json_t *resp = NULL;
    json_t *req = json_pack("{s:s}", "cmd", "ping");
    memset(longpath, 'p', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    el_ctl_server *srv = (el_ctl_server *)1;
    assert_int_equal(el_ctl_server_new(f->ctx, longpath, NULL, NULL, &srv, err, sizeof err),
                     EL_ERR_INVALID);
    assert_null(srv);
    assert_contains(err, "longer than the 107");
    assert_int_equal(el_ctl_call(longpath, req, &resp, 100, err, sizeof err), EL_ERR_INVALID);
    assert_contains(err, "longer than the 107");

    char missing[160];
    snprintf(missing, sizeof missing, "%s/nothing.sock", f->dir);
    assert_int_equal(el_ctl_call(missing, req, &resp, 100, err, sizeof err), EL_ERR_NOT_FOUND);

    /* requests el_ctl_call will not send */
    json_t *nocmd = json_pack("{s:i}", "id", 1);
    assert_int_equal(el_ctl_call(f->path, nocmd, &resp, 100, err, sizeof err), EL_ERR_INVALID);
    assert_int_equal(el_ctl_call(f->path, NULL, &resp, 100, err, sizeof err), EL_ERR_INVALID);
    json_decref(nocmd);
    json_decref(req);
}

static void test_subscribe_broadcast(void **state)
{
    fixture *f = *state;
    raw sub = raw_connect(f), other = raw_connect(f);
    raw_puts(f, &sub, "{\"id\":1,\"cmd\":\"subscribe\"}\n");
    json_t *o = raw_json(f, &sub);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 1);
    assert_true(json_is_true(json_object_get(o, "ok")));
    json_decref(o);
    pump_clients(f, 2);

    json_t *ev = json_pack("{s:s,s:i}", "type", "message", "n", 1);
    assert_int_equal(el_ctl_broadcast(f->srv, ev), EL_OK);
    o = raw_json(f, &sub);
    assert_true(json_equal(json_object_get(o, "event"), ev));
    assert_int_equal(json_object_size(o), 1);
    json_decref(o);
    /* not subscribed: no event; the next line is the answer to a ping */
    raw_puts(f, &other, "{\"id\":5,\"cmd\":\"ping\"}\n");
    o = raw_json(f, &other);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 5);
    json_decref(o);
    raw_quiet(f, &other);

    /* events and answers interleave on one connection */
    raw_puts(f, &sub, "{\"id\":2,\"cmd\":\"echo\",\"text\":\"t\"}\n");
    o = raw_json(f, &sub);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 2);
    json_decref(o);

    raw_puts(f, &sub, "{\"id\":3,\"cmd\":\"unsubscribe\"}\n");
    o = raw_json(f, &sub);
    assert_true(json_is_true(json_object_get(o, "ok")));
    json_decref(o);
    assert_int_equal(el_ctl_broadcast(f->srv, ev), EL_OK);
    raw_quiet(f, &sub);
    assert_int_equal(el_ctl_broadcast(f->srv, NULL), EL_ERR_INVALID);

    json_decref(ev);
    raw_close(&sub);
    raw_close(&other);
    pump_clients(f, 0);
}

/* A subscriber that never reads is cut off; one that reads keeps up. */
static void test_slow_subscriber(void **state)
{
    fixture *f = *state;
    raw slow = raw_connect(f), fast = raw_connect(f);
    raw_puts(f, &slow, "{\"id\":1,\"cmd\":\"subscribe\"}\n");
    raw_puts(f, &fast, "{\"id\":1,\"cmd\":\"subscribe\"}\n");
    json_t *o = raw_json(f, &slow);
    json_decref(o);
    o = raw_json(f, &fast);
    json_decref(o);

    char *blob = g_malloc(64 * 1024 + 1);
    memset(blob, 'e', 64 * 1024);
    blob[64 * 1024] = '\0';
    json_t *ev = json_pack("{s:s}", "blob", blob);
    g_free(blob);
    int sent = 0;
    /* 4 MiB of queue plus what the socket buffers hold: 200 events is plenty */
    while (el_ctl_server_clients(f->srv) == 2 && sent < 200) {
        assert_int_equal(el_ctl_broadcast(f->srv, ev), EL_OK);
        sent++;
        o = raw_json(f, &fast);
        assert_non_null(json_object_get(o, "event"));
        json_decref(o);
    }
    assert_int_equal(el_ctl_server_clients(f->srv), 1);
    assert_true(sent > 4 * 16); /* more than EL_CTL_QUEUE_MAX went out to the fast one */
    json_decref(ev);

    /* the slow one sees its stream end after what had been sent already */
    int lines = 0;
    char *line;
    while ((line = raw_line(f, &slow)) != NULL) {
        lines++;
        g_free(line);
    }
    assert_true(lines >= 1 && lines < sent);
    raw_close(&slow);
    raw_close(&fast);
    pump_clients(f, 0);
}

static void test_client_limit(void **state)
{
    fixture *f = *state;
    raw clients[EL_CTL_CLIENTS_MAX];
    for (int i = 0; i < EL_CTL_CLIENTS_MAX; i++) {
        clients[i] = raw_connect(f);
        pump(f);
    }
    pump_clients(f, EL_CTL_CLIENTS_MAX);
    raw extra = raw_connect(f);
    json_t *o = raw_json(f, &extra);
    assert_error_reply(o, "too many clients");
    json_decref(o);
    assert_null(raw_line(f, &extra));
    raw_close(&extra);
    assert_int_equal(el_ctl_server_clients(f->srv), EL_CTL_CLIENTS_MAX);

    /* one leaves, another gets in */
    raw_close(&clients[0]);
    pump_clients(f, EL_CTL_CLIENTS_MAX - 1);
    clients[0] = raw_connect(f);
    raw_puts(f, &clients[0], "{\"id\":1,\"cmd\":\"ping\"}\n");
    o = raw_json(f, &clients[0]);
    assert_true(json_is_true(json_object_get(o, "ok")));
    json_decref(o);

    /* freeing the server drops every client */
    el_ctl_server_free(f->srv);
    f->srv = NULL;
    for (int i = 0; i < EL_CTL_CLIENTS_MAX; i++) {
        char b;
        assert_int_equal(recv(clients[i].fd, &b, 1, MSG_DONTWAIT), 0);
        raw_close(&clients[i]);
    }
    f->srv = server_ok(f);
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    call_job j;
    GThread *t = call_start(f, &j, json_pack("{s:s}", "cmd", "later"), 200);
    call_finish(f, &j, t);
    assert_int_equal(j.rc, EL_ERR_IO);
    assert_null(j.resp);
    assert_contains(j.err, "no answer from the running echolink within 200 ms");
    assert_true(j.elapsed_us >= 200 * 1000);
    assert_true(j.elapsed_us < 2 * 1000 * 1000);
    assert_true(f->h.pending);

    /* the owner answers late: the client is gone, nothing breaks */
    pump_clients(f, 0);
    assert_int_equal(el_ctl_reply(f->srv, f->h.conn, f->h.id, json_object()), EL_OK);

    /* "never" with no timeout at all would hang: the bound is the caller's */
    t = call_start(f, &j, json_pack("{s:s}", "cmd", "never"), 50);
    call_finish(f, &j, t);
    assert_int_equal(j.rc, EL_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_and_live_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_broadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_subscriber, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
