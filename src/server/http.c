/* http.c - plain HTTP: the web client's static files, /healthz, /metrics.
 *
 * Static files are resolved with realpath() and must stay under the web
 * root (el_req_map_path, request.c); directories are never listed (a folder serves its index.html or
 * nothing). Every response carries nosniff and a strict CSP: the web client
 * loads only its own scripts, styles and the signaling endpoint. */
#include "server/server_int.h"
#include "server/request.h"

#include "base/log.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CSP "default-src 'self'; script-src 'self'; style-src 'self'; " \
            "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; " \
            "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; " \
            "frame-ancestors 'none'; form-action 'self'"

static const struct {
    const char *ext;
    const char *mime;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"}, {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"}, {"json", "application/json"},
    {"map", "application/json"}, {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"webp", "image/webp"},
    {"ico", "image/x-icon"}, {"wasm", "application/wasm"}, {"woff", "font/woff"},
    {"woff2", "font/woff2"}, {"webm", "audio/webm"}, {"ogg", "audio/ogg"},
    {"mp3", "audio/mpeg"}, {"wav", "audio/wav"}, {"webmanifest", "application/manifest+json"},
};

static const char *mime_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return "application/octet-stream";
    for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
        if (!strcasecmp(dot + 1, mime_types[i].ext))
            return mime_types[i].mime;
    return "application/octet-stream";
}

/* Appends the headers every response carries. */
static int security_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
    static const char nosniff[] = "nosniff", csp[] = CSP, refpol[] = "no-referrer";
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)nosniff, sizeof nosniff - 1, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"content-security-policy:",
                                    (const unsigned char *)csp, sizeof csp - 1, p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"referrer-policy:",
                                    (const unsigned char *)refpol, sizeof refpol - 1, p, end))
        return -1;
    return 0;
}

int el_http_reply(struct lws *wsi, int status, const char *ctype, const char *body, size_t len,
                  int close_conn)
{
    unsigned char hdr[LWS_PRE + 2048], *start = hdr + LWS_PRE, *p = start,
                                       *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, (lws_filepos_t)len, &p, end) ||
        security_headers(wsi, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (close_conn &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                    (const unsigned char *)"close", 5, &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (len) {
        unsigned char *buf = malloc(LWS_PRE + len);
        if (!buf)
            return -1;
        memcpy(buf + LWS_PRE, body, len);
        int n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        if (n < 0)
            return -1;
    }
    if (close_conn)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int serve_file(struct lws *wsi, el_server *srv, const char *path)
{
    char real[PATH_MAX];
    int status = el_req_map_path(srv->web_root, path, real, sizeof real);
    if (status == EL_REQ_TOO_LONG)
        return el_http_reply(wsi, 414, "text/plain", "path too long\n", 14, 0);
    if (status != EL_REQ_FOUND)
        return el_http_reply(wsi, 404, "text/plain", "not found\n", 10, 0);

    unsigned char extra[1024], *p = extra, *end = extra + sizeof extra;
    if (security_headers(wsi, &p, end))
        return -1;
    int rc = lws_serve_http_file(wsi, real, mime_of(real), (const char *)extra, (int)(p - extra));
    if (rc < 0)
        return -1;
    if (rc > 0)
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    return 0;
}

int el_http_serve(struct lws *wsi, el_server *srv, const char *path)
{
    if (!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) && !lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI))
        return el_http_reply(wsi, 405, "text/plain", "method not allowed\n", 19, 0);
    if (!strcmp(path, "/healthz")) {
        if (srv->stopping || el_store_ping(srv->store) != 0)
            return el_http_reply(wsi, 503, "text/plain", "unavailable\n", 12, 0);
        if (!el_cluster_healthy(srv->cluster)) /* still serving its own clients (cluster.h) */
            return el_http_reply(wsi, 200, "text/plain", "degraded: redis unavailable\n", 28, 0);
        return el_http_reply(wsi, 200, "text/plain", "ok\n", 3, 0);
    }
    if (!strcmp(path, "/metrics")) {
        char buf[8192];
        int n = el_metrics_render(&srv->metrics, buf, sizeof buf);
        int k = n < 0 ? -1 : el_cluster_metrics(srv->cluster, buf + n, sizeof buf - (size_t)n);
        n = k < 0 ? -1 : n + k;
        if (n < 0)
            return el_http_reply(wsi, 500, "text/plain", "metrics overflow\n", 17, 0);
        return el_http_reply(wsi, 200, "text/plain; version=0.0.4", buf, (size_t)n, 0);
    }
    return serve_file(wsi, srv, path);
}
