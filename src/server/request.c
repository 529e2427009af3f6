/* request.c - request path mapping and Engine.IO query reading (request.h).
 * Moved out of http.c and engine.c unchanged in behaviour, so that they can
 * be fuzzed without a libwebsockets context. */
#include "server/request.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- static files ---- */

static int not_found(char *out, int status)
{
    out[0] = '\0';
    return status;
}

int el_req_map_path(const char *root, const char *path, char *out, size_t outlen)
{
    if (outlen < PATH_MAX)
        return not_found(out, EL_REQ_NOT_FOUND); /* realpath() writes up to PATH_MAX */
    if (!root[0])
        return not_found(out, EL_REQ_NOT_FOUND);
    /* Textual checks first: nothing that could climb out is even resolved. */
    if (path[0] != '/' || strstr(path, "/..") || strchr(path, '\\'))
        return not_found(out, EL_REQ_NOT_FOUND);
    char want[PATH_MAX];
    int n = snprintf(want, sizeof want, "%s%s", root, path);
    if (n < 0 || (size_t)n >= sizeof want)
        return not_found(out, EL_REQ_TOO_LONG);
    struct stat st;
    if (!realpath(want, out) || stat(out, &st) < 0)
        return not_found(out, EL_REQ_NOT_FOUND);
    if (S_ISDIR(st.st_mode)) {
        size_t rl = strlen(out);
        if (rl + sizeof "/index.html" > PATH_MAX)
            return not_found(out, EL_REQ_NOT_FOUND);
        memcpy(out + rl, "/index.html", sizeof "/index.html");
        if (stat(out, &st) < 0)
            return not_found(out, EL_REQ_NOT_FOUND);
    }
    /* A symbolic link may point anywhere: the resolved file decides. */
    size_t rootlen = strlen(root);
    if (!S_ISREG(st.st_mode) || strncmp(out, root, rootlen) || out[rootlen] != '/')
        return not_found(out, EL_REQ_NOT_FOUND);
    return EL_REQ_FOUND;
}

/* ---- Engine.IO query ---- */

void el_req_query_init(el_req_query *q)
{
    memset(q, 0, sizeof *q);
}

void el_req_query_arg(el_req_query *q, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq)
        return;
    *eq = '\0';
    const char *v = eq + 1;
    if (!strcmp(arg, "EIO")) {
        q->has_eio = 1;
        snprintf(q->eio, sizeof q->eio, "%s", v);
    } else if (!strcmp(arg, "transport")) {
        q->has_transport = 1;
        snprintf(q->transport, sizeof q->transport, "%s", v);
    } else if (!strcmp(arg, "sid")) {
        q->has_sid = 1;
        snprintf(q->sid, sizeof q->sid, "%s", v);
    }
}

el_req_q_verdict el_req_query_poll(const el_req_query *q, int is_get)
{
    if (!q->has_transport || (strcmp(q->transport, "polling") && strcmp(q->transport, "websocket")))
        return EL_REQ_Q_TRANSPORT_UNKNOWN;
    if (q->has_sid)
        return EL_REQ_Q_SESSION;
    if (!is_get)
        return EL_REQ_Q_BAD_METHOD;
    if (!q->has_eio || strcmp(q->eio, "4"))
        return EL_REQ_Q_BAD_VERSION;
    if (strcmp(q->transport, "polling"))
        return EL_REQ_Q_BAD_REQUEST;
    return EL_REQ_Q_HANDSHAKE;
}

int el_req_query_ws_ok(const el_req_query *q)
{
    if (!q->has_transport || strcmp(q->transport, "websocket"))
        return 0;
    if (!q->has_sid && (!q->has_eio || strcmp(q->eio, "4")))
        return 0;
    return 1;
}
