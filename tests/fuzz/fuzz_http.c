/* fuzz_http.c - libFuzzer target: echolinkd's request path mapping and
 * Engine.IO query reading (src/server/request.h).
 *
 * Input: the request path up to the first '\n' (cut at a NUL, as lws hands
 * the callback a C string), then the query string, split at '&' as lws
 * does; like read_query() in engine.c, the first argument of 128 bytes or
 * more ends the reading.
 *
 * The web root is a fresh temporary tree made once per process: files, a
 * directory with and one without index.html, a symbolic link to a
 * directory outside the root, one to a sibling whose name starts with the
 * root's (".../web" and ".../web2"), one to a file inside, and a loop.
 *
 * Invariants:
 *  - the result is 200, 404 or 414; out is "" unless 200;
 *  - 200: out starts with root + '/', has no "//", "/./" or "/../", is a
 *    regular file, and is one of the files the tree holds under the root
 *    (never the outside or sibling ones, whatever the links);
 *  - a path not starting with '/', containing "/.." or a backslash is 404;
 *    414 only when root + path does not fit PATH_MAX;
 *  - the query fields equal an independent reading of the arguments (last
 *    value wins, cut to the field size), and the verdicts equal the rules
 *    of engine.c restated here.
 * tests/unit/test_fuzz_corpus.c includes this file with EL_FUZZ_NO_MAIN. */
#ifndef EL_FUZZ_HTTP_C
#define EL_FUZZ_HTTP_C

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/request.h"

typedef struct {
    char base[PATH_MAX]; /* mkdtemp: holds web/, web2/, outside/ */
    char root[PATH_MAX]; /* realpath of base/web */
    int ready;
} el_fuzz_http_tree;

static el_fuzz_http_tree el_fuzz_http_t; /* one tree per process */

/* Files under the root that may be served, relative to it. */
static const char *const el_fuzz_http_inside[] = {
    "/index.html", "/app.js", "/style.css", "/sub/index.html", "/sub/a b.txt", "/sub/deep/x.json",
};

static void el_fuzz_http_rm(void)
{
    if (!el_fuzz_http_t.ready)
        return;
    static const char *const rel[] = {
        "/web/index.html", "/web/app.js", "/web/style.css", "/web/sub/index.html",
        "/web/sub/a b.txt", "/web/sub/deep/x.json", "/web/out", "/web/pre", "/web/in.js",
        "/web/loop", "/web/sub/up", "/web2/secret.txt", "/outside/secret.txt",
        "/outside/index.html", "/web/sub/deep", "/web/noindex", "/web/sub", "/web", "/web2",
        "/outside",
    };
    char p[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(p, sizeof p, "%s%s", el_fuzz_http_t.base, rel[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(el_fuzz_http_t.base);
    el_fuzz_http_t.ready = 0;
}

static int el_fuzz_http_put(const char *rel, int dir)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s%s", el_fuzz_http_t.base, rel);
    if (dir)
        return mkdir(p, 0700);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fputs("x", f);
    return fclose(f);
}

static int el_fuzz_http_link(const char *target, const char *rel)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s%s", el_fuzz_http_t.base, rel);
    return symlink(target, p);
}

/* Makes the tree once; NULL or what failed. */
static const char *el_fuzz_http_setup(void)
{
    if (el_fuzz_http_t.ready)
        return NULL;
    const char *tmp = getenv("TMPDIR");
    snprintf(el_fuzz_http_t.base, sizeof el_fuzz_http_t.base, "%s/el-fuzz-http-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(el_fuzz_http_t.base))
        return "mkdtemp failed";
    el_fuzz_http_t.ready = 1;
    atexit(el_fuzz_http_rm);
    int rc = el_fuzz_http_put("/web", 1) | el_fuzz_http_put("/web2", 1) |
             el_fuzz_http_put("/outside", 1) | el_fuzz_http_put("/web/sub", 1) |
             el_fuzz_http_put("/web/sub/deep", 1) | el_fuzz_http_put("/web/noindex", 1);
    for (size_t i = 0; i < sizeof el_fuzz_http_inside / sizeof el_fuzz_http_inside[0]; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "/web%s", el_fuzz_http_inside[i]);
        rc |= el_fuzz_http_put(rel, 0);
    }
    rc |= el_fuzz_http_put("/web2/secret.txt", 0) | el_fuzz_http_put("/outside/secret.txt", 0) |
          el_fuzz_http_put("/outside/index.html", 0);
    rc |= el_fuzz_http_link("../outside", "/web/out") | el_fuzz_http_link("../web2", "/web/pre") |
          el_fuzz_http_link("app.js", "/web/in.js") | el_fuzz_http_link("loop", "/web/loop") |
          el_fuzz_http_link("../..", "/web/sub/up");
    if (rc)
        return "cannot build the web root tree";
    char web[PATH_MAX + 8];
    snprintf(web, sizeof web, "%s/web", el_fuzz_http_t.base);
    if (!realpath(web, el_fuzz_http_t.root))
        return "realpath of the web root failed";
    return NULL;
}

static int el_fuzz_http_is_inside_file(const char *out)
{
    size_t rl = strlen(el_fuzz_http_t.root);
    for (size_t i = 0; i < sizeof el_fuzz_http_inside / sizeof el_fuzz_http_inside[0]; i++)
        if (!strncmp(out, el_fuzz_http_t.root, rl) && !strcmp(out + rl, el_fuzz_http_inside[i]))
            return 1;
    return 0;
}

static const char *el_fuzz_http_check_path(const char *root, const char *path)
{
    char out[PATH_MAX];
    memset(out, 'Z', sizeof out);
    int rc = el_req_map_path(root, path, out, sizeof out);
    if (rc != EL_REQ_FOUND && rc != EL_REQ_NOT_FOUND && rc != EL_REQ_TOO_LONG)
        return "map_path: unexpected status";
    if (rc != EL_REQ_FOUND && out[0] != '\0')
        return "map_path: out not cleared on failure";
    int textual_bad = path[0] != '/' || strstr(path, "/..") || strchr(path, '\\');
    if (!root[0] || textual_bad) {
        if (rc != EL_REQ_NOT_FOUND)
            return "map_path: an empty root or a refused path is not 404";
        return NULL;
    }
    int fits = strlen(root) + strlen(path) < PATH_MAX;
    if ((rc == EL_REQ_TOO_LONG) != !fits)
        return "map_path: 414 iff root + path does not fit PATH_MAX";
    if (rc != EL_REQ_FOUND)
        return NULL;
    size_t rl = strlen(root), ol = strnlen(out, sizeof out);
    if (ol >= sizeof out)
        return "map_path: out not terminated";
    if (strncmp(out, root, rl) || out[rl] != '/')
        return "map_path: served file outside the web root";
    if (strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../") ||
        (ol >= 3 && !strcmp(out + ol - 3, "/..")))
        return "map_path: served path not canonical";
    struct stat st;
    if (stat(out, &st) < 0 || !S_ISREG(st.st_mode))
        return "map_path: served path is not a regular file";
    if (!el_fuzz_http_is_inside_file(out))
        return "map_path: served a file the web root does not hold";
    return NULL;
}

/* ---- query ---- */

/* The last value of `name` among the args, cut to cap - 1; 1 if present. */
static int el_fuzz_http_last(char *const *args, size_t n, const char *name, char *val, size_t cap)
{
    int found = 0;
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(args[i], name, nl) || args[i][nl] != '=')
            continue;
        found = 1;
        size_t vl = strlen(args[i] + nl + 1);
        if (vl > cap - 1)
            vl = cap - 1;
        memcpy(val, args[i] + nl + 1, vl);
        val[vl] = '\0';
    }
    return found;
}

static const char *el_fuzz_http_check_query(const char *qs, size_t len)
{
    /* split like lws: at '&', each argument a C string of < 128 bytes */
    char *copy = malloc(len + 1), *orig = malloc(len + 1);
    char *args[33], *pristine[33];
    size_t n = 0;
    const char *bad = NULL;
    if (!copy || !orig)
        goto done;
    memcpy(copy, qs, len);
    copy[len] = '\0';
    memcpy(orig, qs, len);
    orig[len] = '\0';
    for (char *p = copy, *o = orig; n < 32;) {
        char *amp = strchr(p, '&');
        size_t al = amp ? (size_t)(amp - p) : strlen(p);
        if (al >= 128)
            break;
        p[al] = '\0';
        o[al] = '\0';
        args[n] = p;
        pristine[n++] = o;
        if (!amp)
            break;
        p += al + 1;
        o += al + 1;
    }
    el_req_query q;
    memset(&q, 0x5a, sizeof q);
    el_req_query_init(&q);
    for (size_t i = 0; i < n; i++)
        el_req_query_arg(&q, args[i]);

    el_req_query w;
    memset(&w, 0, sizeof w);
    w.has_eio = el_fuzz_http_last(pristine, n, "EIO", w.eio, sizeof w.eio);
    w.has_transport = el_fuzz_http_last(pristine, n, "transport", w.transport, sizeof w.transport);
    w.has_sid = el_fuzz_http_last(pristine, n, "sid", w.sid, sizeof w.sid);
    if (q.has_eio != w.has_eio || q.has_transport != w.has_transport || q.has_sid != w.has_sid) {
        bad = "query: presence differs from the arguments";
        goto done;
    }
    if (memchr(q.eio, 0, sizeof q.eio) == NULL || memchr(q.transport, 0, sizeof q.transport) == NULL ||
        memchr(q.sid, 0, sizeof q.sid) == NULL) {
        bad = "query: a field is not terminated";
        goto done;
    }
    if ((w.has_eio && strcmp(q.eio, w.eio)) || (w.has_transport && strcmp(q.transport, w.transport)) ||
        (w.has_sid && strcmp(q.sid, w.sid))) {
        bad = "query: a value differs from the last argument's";
        goto done;
    }
    for (int get = 0; get < 2; get++) {
        int tr_poll = w.has_transport && !strcmp(w.transport, "polling");
        int tr_ws = w.has_transport && !strcmp(w.transport, "websocket");
        int eio4 = w.has_eio && !strcmp(w.eio, "4");
        el_req_q_verdict want = !tr_poll && !tr_ws ? EL_REQ_Q_TRANSPORT_UNKNOWN
                                : w.has_sid        ? EL_REQ_Q_SESSION
                                : !get             ? EL_REQ_Q_BAD_METHOD
                                : !eio4            ? EL_REQ_Q_BAD_VERSION
                                : !tr_poll         ? EL_REQ_Q_BAD_REQUEST
                                                   : EL_REQ_Q_HANDSHAKE;
        if (el_req_query_poll(&q, get) != want) {
            bad = "query: polling verdict differs";
            goto done;
        }
        if (el_req_query_ws_ok(&q) != (tr_ws && (w.has_sid || eio4))) {
            bad = "query: websocket verdict differs";
            goto done;
        }
    }
done:
    free(copy);
    free(orig);
    return bad;
}

static const char *el_fuzz_check_http(const uint8_t *data, size_t size)
{
    const char *bad = el_fuzz_http_setup();
    if (bad)
        return bad;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - data) : size;
    char *path = malloc(plen + 1);
    if (!path)
        return NULL;
    memcpy(path, data, plen);
    path[plen] = '\0'; /* a NUL inside ends it, as in the C string lws passes */
    bad = el_fuzz_http_check_path(el_fuzz_http_t.root, path);
    if (!bad)
        bad = el_fuzz_http_check_path("", path);
    free(path);
    if (!bad && nl)
        bad = el_fuzz_http_check_query((const char *)nl + 1, size - plen - 1);
    return bad;
}

#ifndef EL_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *violation = el_fuzz_check_http(data, size);
    if (violation) {
        fprintf(stderr, "fuzz_http: invariant violated: %s\n", violation);
        abort();
    }
    return 0;
}
#endif

#endif
