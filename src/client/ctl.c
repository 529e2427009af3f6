/* ctl.c - the local control socket (see ctl.h): a non-blocking line server on
 * a GMainContext and a blocking one-shot client. */
#include "client/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"

#define IN_MAX (EL_CTL_LINE_MAX + 1) /* a longest line and its '\n' */
#define READ_CHUNK 65536
#define READ_ROUNDS 16        /* per dispatch, so one client cannot starve the rest */
#define ACCEPTS_PER_WAKEUP 64
#define KEEP_CAP 65536        /* buffers shrink back to this when drained */

/* A byte queue: data[off..len) is pending. */
typedef struct {
    char *data;
    size_t off, len, cap;
} bytes;

typedef struct ctl_conn {
    int refs;          /* the server's table and the conn's GSource */
    el_ctl_conn id;
    int fd;
    GSource *src;
    gpointer tag;
    el_ctl_server *srv;
    bytes in, out;
    size_t scan;       /* in.data[in.off..scan) is known to hold no '\n' */
    bool subscribed;
    bool closing;      /* flush what is queued, then close */
    bool dead;
} ctl_conn;

struct el_ctl_server {
    GMainContext *ctx;
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    GSource *src;
    gpointer tag;
    el_ctl_handler handler;
    void *user;
    GHashTable *conns; /* &conn->id -> ctl_conn */
    el_ctl_conn next_id;
};

/* One GSource per descriptor, so that the watched conditions can change
 * (reading pauses, writing waits for POLLOUT) without new sources. */
typedef struct {
    GSource base;
    el_ctl_server *srv;
    ctl_conn *conn; /* NULL for the listening socket */
} fd_source;

static void conn_unref(ctl_conn *c);
static void conn_ready(ctl_conn *c, GIOCondition rev);
static void listener_ready(el_ctl_server *srv);

static gboolean fd_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    fd_source *fs = (fd_source *)s;
    if (fs->conn)
        conn_ready(fs->conn, g_source_query_unix_fd(s, fs->conn->tag));
    else
        listener_ready(fs->srv);
    return G_SOURCE_CONTINUE;
}

static void fd_finalize(GSource *s)
{
    fd_source *fs = (fd_source *)s;
    if (fs->conn)
        conn_unref(fs->conn);
}

/* read-only in practice; GLib's API just does not take a const table */
static GSourceFuncs fd_funcs = {
    .dispatch = fd_dispatch,
    .finalize = fd_finalize,
};

static GSource *fd_source_new(el_ctl_server *srv, ctl_conn *conn, int fd, GIOCondition cond,
                              gpointer *tag)
{
    GSource *s = g_source_new(&fd_funcs, sizeof(fd_source));
    fd_source *fs = (fd_source *)s;
    fs->srv = srv;
    fs->conn = conn;
    *tag = g_source_add_unix_fd(s, fd, cond);
    g_source_set_name(s, conn ? "el_ctl conn" : "el_ctl listen");
    return s;
}

/* ---- byte queues ----------------------------------------------------------- */

static size_t bytes_pending(const bytes *b)
{
    return b->len - b->off;
}

/* Makes room for `n` more bytes at data + len. */
static int bytes_reserve(bytes *b, size_t n)
{
    if (b->off && b->cap - b->len < n) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

/* Drained buffers give back what a burst made them grow to. */
static void bytes_drained(bytes *b)
{
    b->off = b->len = 0;
    if (b->cap > KEEP_CAP) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}

static void bytes_free(bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- connections ------------------------------------------------------------- */

static ctl_conn *conn_ref(ctl_conn *c)
{
    c->refs++;
    return c;
}

static void conn_unref(ctl_conn *c)
{
    if (--c->refs > 0)
        return;
    bytes_free(&c->in);
    bytes_free(&c->out);
    g_free(c);
}

/* Closes the connection at once. The struct lives on until the last
 * reference goes (the caller's, or the GSource's while it dispatches), so
 * callers check c->dead after anything that may kill. */
static void conn_kill(ctl_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    GSource *src = c->src;
    c->src = NULL;
    close(c->fd);
    c->fd = -1;
    g_hash_table_remove(c->srv->conns, &c->id);
    g_source_destroy(src);
    g_source_unref(src); /* may finalize, dropping the source's reference */
    conn_unref(c);       /* the table's reference */
}

static void conn_watch(ctl_conn *c)
{
    if (c->dead)
        return;
    GIOCondition cond = 0;
    size_t pending = bytes_pending(&c->out);
    if (!c->closing && pending < EL_CTL_PAUSE)
        cond |= G_IO_IN;
    if (pending)
        cond |= G_IO_OUT;
    g_source_modify_unix_fd(c->src, c->tag, cond);
}

static void conn_flush(ctl_conn *c)
{
    while (!c->dead && bytes_pending(&c->out)) {
        ssize_t w = send(c->fd, c->out.data + c->out.off, bytes_pending(&c->out),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            EL_DEBUG("ctl: client %llu: %s", (unsigned long long)c->id, strerror(errno));
            conn_kill(c);
            return;
        }
        c->out.off += (size_t)w;
    }
    if (c->dead)
        return;
    if (!bytes_pending(&c->out)) {
        bytes_drained(&c->out);
        if (c->closing) {
            conn_kill(c);
            return;
        }
    }
    conn_watch(c);
}

/* Queues `text` and a '\n'. A client that lets its queue grow past
 * EL_CTL_QUEUE_MAX is not reading: it is cut off rather than buffered for. */
static int conn_send(ctl_conn *c, const char *text)
{
    if (c->dead)
        return EL_OK;
    size_t n = strlen(text), pending = bytes_pending(&c->out);
    if (pending && pending + n + 1 > EL_CTL_QUEUE_MAX) {
        EL_WARN("ctl: client %llu does not read its output (%zu bytes queued): disconnected",
                (unsigned long long)c->id, pending);
        conn_kill(c);
        return EL_OK;
    }
    if (bytes_reserve(&c->out, n + 1) != 0)
        return EL_ERR_NOMEM;
    memcpy(c->out.data + c->out.len, text, n);
    c->out.data[c->out.len + n] = '\n';
    c->out.len += n + 1;
    conn_flush(c);
    return EL_OK;
}

static int conn_send_json(ctl_conn *c, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (!text)
        return EL_ERR_NOMEM;
    int rc = conn_send(c, text);
    free(text);
    return rc;
}

/* {"id": id, "ok": false, "error": msg}; id NULL stands for null. */
static void conn_send_error(ctl_conn *c, json_t *id, const char *msg)
{
    json_t *o = json_pack("{s:O?,s:b,s:s}", "id", id, "ok", 0, "error", msg);
    if (!o || conn_send_json(c, o) != EL_OK) {
        /* without memory for an answer the client would wait forever */
        EL_WARN("ctl: out of memory answering client %llu", (unsigned long long)c->id);
        conn_kill(c);
    }
    json_decref(o);
}

static void conn_send_ok(ctl_conn *c, json_t *id, json_t *extra)
{
    json_t *o = json_pack("{s:O,s:b}", "id", id, "ok", 1);
    if (o && extra)
        json_object_update(o, extra);
    if (!o || conn_send_json(c, o) != EL_OK) {
        EL_WARN("ctl: out of memory answering client %llu", (unsigned long long)c->id);
        conn_kill(c);
    }
    json_decref(o);
}

/* The commands ctl answers itself; returns false for the owner's ones. */
static bool builtin(ctl_conn *c, const char *cmd, json_t *id)
{
    if (strcmp(cmd, "subscribe") == 0 || strcmp(cmd, "unsubscribe") == 0) {
        c->subscribed = strcmp(cmd, "subscribe") == 0;
        conn_send_ok(c, id, NULL);
        return true;
    }
    if (strcmp(cmd, "ping") == 0) {
        json_t *extra = json_pack("{s:I}", "pid", (json_int_t)getpid());
        conn_send_ok(c, id, extra);
        json_decref(extra);
        return true;
    }
    return false;
}

static void handle_line(ctl_conn *c, const char *line, size_t len)
{
    json_error_t je;
    char msg[256];
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!req) {
        snprintf(msg, sizeof msg, "invalid JSON: %s (column %d)", je.text, je.column);
        conn_send_error(c, NULL, msg);
        return;
    }
    json_t *id = json_object_get(req, "id");
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (!json_is_object(req))
        conn_send_error(c, NULL, "a request is a JSON object");
    else if (!json_is_integer(id))
        conn_send_error(c, NULL, "a request needs an integer \"id\"");
    else if (!cmd)
        conn_send_error(c, id, "a request needs a \"cmd\" string");
    else if (!builtin(c, cmd, id)) {
        if (c->srv->handler)
            c->srv->handler(c->srv, c->id, req, c->srv->user);
        else
            conn_send_error(c, id, "unknown command");
    }
    json_decref(req);
}

static void too_long(ctl_conn *c)
{
    char msg[96];
    snprintf(msg, sizeof msg, "request line longer than %u bytes", EL_CTL_LINE_MAX);
    conn_send_error(c, NULL, msg);
    bytes_drained(&c->in);
    c->scan = 0;
    c->closing = true;
    if (!c->dead && !bytes_pending(&c->out))
        conn_kill(c);
}

/* Runs every complete line in the input, stopping when the connection dies
 * or starts closing (a handler may reply, and a reply may kill). */
static void conn_lines(ctl_conn *c)
{
    while (!c->dead && !c->closing) {
        char *start = c->in.data + c->in.off;
        char *nl = memchr(c->in.data + c->scan, '\n', c->in.len - c->scan);
        if (!nl) {
            c->scan = c->in.len;
            break;
        }
        size_t len = (size_t)(nl - start);
        c->in.off += len + 1;
        c->scan = c->in.off;
        if (len && start[len - 1] == '\r')
            len--;
        if (len)
            handle_line(c, start, len);
    }
    if (c->dead)
        return;
    if (!bytes_pending(&c->in)) {
        bytes_drained(&c->in);
        c->scan = 0;
    } else if (c->in.off) {
        size_t keep = bytes_pending(&c->in);
        memmove(c->in.data, c->in.data + c->in.off, keep);
        c->scan -= c->in.off;
        c->in.off = 0;
        c->in.len = keep;
    }
    if (!c->closing && c->in.len >= IN_MAX)
        too_long(c);
}

static void conn_read(ctl_conn *c)
{
    for (int round = 0; round < READ_ROUNDS; round++) {
        if (c->dead || c->closing || bytes_pending(&c->out) >= EL_CTL_PAUSE)
            break;
        size_t room = IN_MAX - c->in.len;
        size_t want = room < READ_CHUNK ? room : READ_CHUNK;
        if (bytes_reserve(&c->in, want) != 0) {
            EL_WARN("ctl: out of memory reading client %llu", (unsigned long long)c->id);
            conn_kill(c);
            return;
        }
        ssize_t r = recv(c->fd, c->in.data + c->in.len, want, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0) {
            /* end of input: answers already queued still go out */
            c->closing = true;
            if (!bytes_pending(&c->out))
                conn_kill(c);
            break;
        }
        c->in.len += (size_t)r;
        conn_lines(c);
    }
    if (!c->dead)
        conn_watch(c);
}

static void conn_ready(ctl_conn *c, GIOCondition rev)
{
    if (c->dead)
        return;
    /* HUP on a Unix stream socket: the client closed both ways, so nothing
     * we could answer would arrive */
    if (rev & (G_IO_ERR | G_IO_HUP | G_IO_NVAL)) {
        conn_kill(c);
        return;
    }
    if (rev & G_IO_OUT)
        conn_flush(c);
    if (!c->dead && (rev & G_IO_IN))
        conn_read(c);
}

static void conn_add(el_ctl_server *srv, int fd)
{
    ctl_conn *c = g_new0(ctl_conn, 1);
    c->refs = 2; /* table + source */
    c->id = ++srv->next_id;
    c->fd = fd;
    c->srv = srv;
    c->src = fd_source_new(srv, c, fd, G_IO_IN, &c->tag);
    g_hash_table_insert(srv->conns, &c->id, c);
    g_source_attach(c->src, srv->ctx);
}

/* The one line a refused client gets; best effort, it is closed anyway. */
static void refuse(int fd)
{
    char line[128];
    int n = snprintf(line, sizeof line,
                     "{\"id\":null,\"ok\":false,\"error\":\"too many clients (%d)\"}\n",
                     EL_CTL_CLIENTS_MAX);
    if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
        EL_DEBUG("ctl: could not tell a refused client why");
    close(fd);
}

static void listener_ready(el_ctl_server *srv)
{
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                EL_WARN("ctl: accept on %s: %s", srv->path, strerror(errno));
            return;
        }
        if (g_hash_table_size(srv->conns) >= EL_CTL_CLIENTS_MAX)
            refuse(fd);
        else
            conn_add(srv, fd);
    }
}

/* ---- server ------------------------------------------------------------------- */

static int fill_addr(const char *path, struct sockaddr_un *sa, char *err, size_t errlen)
{
    size_t n = path ? strlen(path) : 0;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (n == 0)
        return el_seterr(err, errlen, EL_ERR_INVALID, "control socket: empty path");
    if (n >= sizeof sa->sun_path)
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "control socket path %s is %zu bytes, longer than the %zu a socket "
                         "address holds: use a shorter profile directory (ECHOLINK_HOME)",
                         path, n, sizeof sa->sun_path - 1);
    memcpy(sa->sun_path, path, n + 1);
    return EL_OK;
}

/* Something at `path` already: a live server (refused), a stale socket
 * from a crash (removed), or not a socket at all (refused). */
static int clear_path(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return EL_OK;
        return el_seterr(err, errlen, EL_ERR_IO, "cannot check %s: %s", path, strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return el_seterr(err, errlen, EL_ERR_EXISTS,
                         "%s exists and is not a socket; remove it", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "socket: %s", strerror(errno));
    int r, e;
    do {
        r = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
        e = errno;
    } while (r != 0 && e == EINTR);
    close(fd);
    /* EAGAIN: a server whose backlog is full, alive all the same */
    if (r == 0 || e == EAGAIN)
        return el_seterr(err, errlen, EL_ERR_STATE,
                         "another echolink is serving %s (a running chat or listen owns "
                         "this profile)",
                         path);
    if (e != ECONNREFUSED)
        return el_seterr(err, errlen, e == EACCES ? EL_ERR_DENIED : EL_ERR_IO,
                         "cannot check %s: %s", path, strerror(e));
    EL_INFO("ctl: removing stale control socket %s", path);
    if (unlink(path) != 0 && errno != ENOENT)
        return el_seterr(err, errlen, EL_ERR_IO, "cannot remove stale %s: %s", path,
                         strerror(errno));
    return EL_OK;
}

static int listen_on(el_ctl_server *srv, const struct sockaddr_un *sa, char *err,
                     size_t errlen)
{
    struct stat st;
    srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->fd < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "socket: %s", strerror(errno));
    /* Linux gives the socket file the socket inode's mode less the umask:
     * 0600 from the start, not only after the chmod below */
    if (fchmod(srv->fd, 0600) != 0)
        EL_DEBUG("ctl: fchmod on the socket: %s", strerror(errno));
    if (bind(srv->fd, (const struct sockaddr *)sa, sizeof *sa) != 0)
        return el_seterr(err, errlen, errno == EADDRINUSE ? EL_ERR_STATE : EL_ERR_IO,
                         "cannot bind %s: %s", srv->path, strerror(errno));
    if (chmod(srv->path, 0600) != 0 || listen(srv->fd, EL_CTL_CLIENTS_MAX) != 0 ||
        stat(srv->path, &st) != 0) {
        int rc = el_seterr(err, errlen, EL_ERR_IO, "cannot listen on %s: %s", srv->path,
                           strerror(errno));
        unlink(srv->path);
        return rc;
    }
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;
    return EL_OK;
}

int el_ctl_server_new(GMainContext *ctx, const char *path, el_ctl_handler handler, void *user,
                      el_ctl_server **out, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (!out || !ctx)
        return el_seterr(err, errlen, EL_ERR_INVALID, "el_ctl_server_new: NULL argument");
    *out = NULL;
    int rc = fill_addr(path, &sa, err, errlen);
    if (rc)
        return rc;
    rc = clear_path(path, &sa, err, errlen);
    if (rc)
        return rc;
    el_ctl_server *srv = g_new0(el_ctl_server, 1);
    srv->path = g_strdup(path);
    srv->handler = handler;
    srv->user = user;
    srv->conns = g_hash_table_new(g_int64_hash, g_int64_equal);
    rc = listen_on(srv, &sa, err, errlen);
    if (rc) {
        if (srv->fd >= 0)
            close(srv->fd);
        g_hash_table_unref(srv->conns);
        g_free(srv->path);
        g_free(srv);
        return rc;
    }
    srv->ctx = g_main_context_ref(ctx);
    srv->src = fd_source_new(srv, NULL, srv->fd, G_IO_IN, &srv->tag);
    g_source_attach(srv->src, ctx);
    *out = srv;
    return EL_OK;
}

void el_ctl_server_free(el_ctl_server *srv)
{
    struct stat st;
    if (!srv)
        return;
    GList *all = g_hash_table_get_values(srv->conns);
    for (GList *l = all; l; l = l->next)
        conn_kill(l->data);
    g_list_free(all);
    g_source_destroy(srv->src);
    g_source_unref(srv->src);
    close(srv->fd);
    /* a successor may have replaced a socket it found dead: leave its own */
    if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
        unlink(srv->path);
    g_hash_table_unref(srv->conns);
    g_main_context_unref(srv->ctx);
    g_free(srv->path);
    g_free(srv);
}

size_t el_ctl_server_clients(const el_ctl_server *srv)
{
    return srv ? g_hash_table_size(srv->conns) : 0;
}

int el_ctl_reply(el_ctl_server *srv, el_ctl_conn conn, json_int_t id, json_t *response)
{
    int rc = EL_OK;
    json_t *o = NULL;
    if (!srv || (response && !json_is_object(response))) {
        rc = EL_ERR_INVALID;
        goto out;
    }
    ctl_conn *c = g_hash_table_lookup(srv->conns, &conn);
    if (!c)
        goto out; /* the client has gone: nobody to answer */
    o = json_pack("{s:I}", "id", id);
    if (!o || (response && json_object_update(o, response) != 0) ||
        json_object_set_new(o, "id", json_integer(id)) != 0 ||
        (!json_object_get(o, "ok") && json_object_set_new(o, "ok", json_true()) != 0)) {
        rc = EL_ERR_NOMEM;
        goto out;
    }
    conn_ref(c);
    rc = conn_send_json(c, o);
    conn_unref(c);
out:
    json_decref(o);
    json_decref(response);
    return rc;
}

int el_ctl_reply_error(el_ctl_server *srv, el_ctl_conn conn, json_int_t id,
                       const char *message)
{
    json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", message ? message : "failed");
    if (!o)
        return EL_ERR_NOMEM;
    return el_ctl_reply(srv, conn, id, o);
}

int el_ctl_broadcast(el_ctl_server *srv, json_t *event)
{
    if (!srv || !event)
        return EL_ERR_INVALID;
    json_t *o = json_pack("{s:O}", "event", event);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return EL_ERR_NOMEM;
    int rc = EL_OK;
    /* a snapshot: sending may disconnect a client, which edits the table */
    GList *all = g_hash_table_get_values(srv->conns);
    for (GList *l = all; l; l = l->next)
        conn_ref(l->data);
    for (GList *l = all; l; l = l->next) {
        ctl_conn *c = l->data;
        if (!c->dead && c->subscribed && conn_send(c, text) != EL_OK)
            rc = EL_ERR_NOMEM;
        conn_unref(c);
    }
    g_list_free(all);
    free(text);
    return rc;
}

/* ---- client ---------------------------------------------------------------------- */

/* Milliseconds left before `deadline` (a monotonic time in µs, 0 = none) for
 * poll(): -1 without a deadline, 0 when it has passed. */
static int ms_left(gint64 deadline)
{
    if (!deadline)
        return -1;
    gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0)
        return 0;
    left = (left + 999) / 1000;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

static int timed_out(unsigned timeout_ms, char *err, size_t errlen)
{
    return el_seterr(err, errlen, EL_ERR_IO,
                     "no answer from the running echolink within %u ms", timeout_ms);
}

static int call_connect(const char *path, const struct sockaddr_un *sa, gint64 deadline,
                        unsigned timeout_ms, int *out, char *err, size_t errlen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return el_seterr(err, errlen, EL_ERR_IO, "socket: %s", strerror(errno));
    for (;;) {
        if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e == EAGAIN && ms_left(deadline) != 0) {
            /* the owner's backlog is full: it is busy, not gone */
            struct timespec ts = {0, 5000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        close(fd);
        if (e == EAGAIN)
            return timed_out(timeout_ms, err, errlen);
        if (e == ENOENT || e == ECONNREFUSED)
            return el_seterr(err, errlen, EL_ERR_NOT_FOUND,
                             "no running echolink owns this profile (nothing listens on %s)",
                             path);
        return el_seterr(err, errlen, (e == EACCES || e == EPERM) ? EL_ERR_DENIED : EL_ERR_IO,
                         "cannot connect to %s: %s", path, strerror(e));
    }
    *out = fd;
    return EL_OK;
}

static int call_send(int fd, const char *text, size_t len, gint64 deadline, unsigned timeout_ms,
                     char *err, size_t errlen)
{
    while (len) {
        ssize_t w = send(fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            text += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return el_seterr(err, errlen, EL_ERR_IO, "cannot send the request: %s",
                             strerror(errno));
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int left = ms_left(deadline);
        if (left == 0)
            return timed_out(timeout_ms, err, errlen);
        if (poll(&pfd, 1, left) < 0 && errno != EINTR)
            return el_seterr(err, errlen, EL_ERR_IO, "poll: %s", strerror(errno));
    }
    return EL_OK;
}

/* Looks at one response line: EL_OK with *found set when it answers `id`,
 * EL_OK without for events and other answers, EL_ERR_IO when malformed. */
static int call_line(const char *line, size_t len, json_int_t id, json_t **found, char *err,
                     size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return el_seterr(err, errlen, EL_ERR_IO, "malformed answer from the running echolink");
    }
    json_t *rid = json_object_get(o, "id");
    if (json_is_integer(rid) && json_integer_value(rid) == id) {
        *found = o;
        return EL_OK;
    }
    /* {"id":null,...} is the server refusing the whole connection or line */
    if (json_is_null(rid) && json_object_get(o, "error")) {
        const char *why = json_string_value(json_object_get(o, "error"));
        int rc = el_seterr(err, errlen, EL_ERR_IO, "the running echolink refused the request: %s",
                           why ? why : "unknown error");
        json_decref(o);
        return rc;
    }
    json_decref(o);
    return EL_OK;
}

static int call_receive(int fd, json_int_t id, gint64 deadline, unsigned timeout_ms,
                        json_t **response, char *err, size_t errlen)
{
    bytes in = {0};
    size_t scan = 0;
    int rc = EL_OK;
    while (!*response && rc == EL_OK) {
        char *nl = in.len > scan ? memchr(in.data + scan, '\n', in.len - scan) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - (in.data + in.off));
            rc = call_line(in.data + in.off, len, id, response, err, errlen);
            in.off += len + 1;
            scan = in.off;
            continue;
        }
        scan = in.len;
        if (bytes_pending(&in) > EL_CTL_RESPONSE_MAX) {
            rc = el_seterr(err, errlen, EL_ERR_IO, "answer longer than %u bytes",
                           EL_CTL_RESPONSE_MAX);
            break;
        }
        size_t off = in.off;
        if (bytes_reserve(&in, READ_CHUNK) != 0) {
            rc = el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
            break;
        }
        scan -= off - in.off; /* bytes_reserve may have moved the data down */
        ssize_t r = recv(fd, in.data + in.len, READ_CHUNK, MSG_DONTWAIT);
        if (r > 0) {
            in.len += (size_t)r;
        } else if (r == 0) {
            rc = el_seterr(err, errlen, EL_ERR_IO,
                           "the running echolink closed the connection without answering");
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int left = ms_left(deadline);
            if (left == 0)
                rc = timed_out(timeout_ms, err, errlen);
            else if (poll(&pfd, 1, left) < 0 && errno != EINTR)
                rc = el_seterr(err, errlen, EL_ERR_IO, "poll: %s", strerror(errno));
        } else {
            rc = el_seterr(err, errlen, EL_ERR_IO, "cannot read the answer: %s",
                           strerror(errno));
        }
    }
    bytes_free(&in);
    return rc;
}

int el_ctl_call(const char *path, json_t *request, json_t **response, unsigned timeout_ms,
                char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (response)
        *response = NULL;
    if (!response || !json_is_object(request) ||
        !json_is_string(json_object_get(request, "cmd")))
        return el_seterr(err, errlen, EL_ERR_INVALID,
                         "el_ctl_call: the request must be an object with a \"cmd\" string");
    int rc = fill_addr(path, &sa, err, errlen);
    if (rc)
        return rc;
    gint64 deadline = timeout_ms ? g_get_monotonic_time() + (gint64)timeout_ms * 1000 : 0;

    json_int_t id = 1;
    json_t *req = json_incref(request);
    json_t *rid = json_object_get(request, "id");
    if (json_is_integer(rid)) {
        id = json_integer_value(rid);
    } else {
        json_decref(req);
        req = json_copy(request); /* shallow: only "id" differs */
        if (!req || json_object_set_new(req, "id", json_integer(id)) != 0) {
            json_decref(req);
            return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory");
        }
    }
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text)
        return el_seterr(err, errlen, EL_ERR_NOMEM, "out of memory (or a request that is not UTF-8)");
    size_t len = strlen(text);

    int fd = -1;
    rc = call_connect(path, &sa, deadline, timeout_ms, &fd, err, errlen);
    if (rc == EL_OK)
        rc = call_send(fd, text, len, deadline, timeout_ms, err, errlen);
    if (rc == EL_OK)
        rc = call_send(fd, "\n", 1, deadline, timeout_ms, err, errlen);
    if (rc == EL_OK)
        rc = call_receive(fd, id, deadline, timeout_ms, response, err, errlen);
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
}
