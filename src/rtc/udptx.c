/* udptx.c - see udptx.h.
 *
 * The queue is one arena of datagrams laid end to end plus their lengths,
 * so a run of datagrams is one iovec: the kernel cuts it back into datagrams
 * at gso_size boundaries (every segment but the last is exactly gso_size,
 * the last may be shorter). A run therefore ends after a datagram shorter
 * than the run's first, at MAX_SEGS datagrams, or before the total would
 * pass what one UDP message can carry. */
#include "rtc/udptx.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h; glibc's netinet/udp.h may lack it */
#endif

#define MAX_QUEUED 256            /* datagrams per flush */
#define ARENA_BYTES (384u << 10)  /* bytes per flush */
#define MAX_SEGS 64               /* UDP_MAX_SEGMENTS of kernels before 6.x */
#define MAX_RUN_BYTES 65000       /* a UDP message's payload, with room for headers */
/* Segments must fit the device MTU (EINVAL otherwise): runs only of
 * datagrams that fit 1500-byte Ethernet with IPv6 headers. DTLS records of
 * SCTP packets are at most ~1200 bytes (dtls.h, sctp.h). */
#define MAX_GSO_SEG 1452
/* Above every other source, so that this source's prepare() is never skipped
 * (GLib stops preparing once a source of higher priority is ready). */
#define FLUSH_PRIORITY (G_PRIORITY_HIGH - 1000)

typedef struct {
    GSource base;
    el_udptx *tx;
} flush_source;

struct el_udptx {
    GMainContext *ctx;
    GSource *source;
    GSocket *sock; /* libnice's; NULL: no path */
    int fd;
    struct sockaddr_storage to;
    socklen_t tolen;
    bool gso;

    uint8_t *arena; /* ARENA_BYTES, allocated with the first send */
    size_t used;
    uint16_t len[MAX_QUEUED];
    unsigned n;

    el_udptx_stats st;
    uint64_t turns; /* prepare() calls: loop turns of ctx */
};

/* ---- sending ----------------------------------------------------------- */

/* How many queued datagrams from `first` on go in one message. */
static unsigned run_length(const el_udptx *tx, unsigned first)
{
    size_t seg = tx->len[first], total = seg;
    unsigned i = first + 1;
    if (!tx->gso || seg > MAX_GSO_SEG)
        return 1;
    while (i < tx->n && i - first < MAX_SEGS && tx->len[i] <= seg &&
           total + tx->len[i] <= MAX_RUN_BYTES) {
        total += tx->len[i];
        if (tx->len[i++] < seg)
            break; /* a shorter one can only be last */
    }
    return i - first;
}

typedef struct {
    struct mmsghdr msg[MAX_QUEUED];
    struct iovec iov[MAX_QUEUED];
    /* one UDP_SEGMENT control message per run */
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[MAX_QUEUED];
    unsigned count[MAX_QUEUED]; /* datagrams in each message */
} batch;

static unsigned build(el_udptx *tx, batch *b)
{
    unsigned m = 0;
    size_t off = 0;
    for (unsigned i = 0; i < tx->n; m++) {
        unsigned k = run_length(tx, i);
        size_t bytes = 0;
        for (unsigned j = i; j < i + k; j++)
            bytes += tx->len[j];
        b->iov[m] = (struct iovec){.iov_base = tx->arena + off, .iov_len = bytes};
        struct msghdr *h = &b->msg[m].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &tx->to;
        h->msg_namelen = tx->tolen;
        h->msg_iov = &b->iov[m];
        h->msg_iovlen = 1;
        if (k > 1) {
            h->msg_control = b->ctl[m].buf;
            h->msg_controllen = sizeof b->ctl[m].buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg = tx->len[i];
            memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
        b->count[m] = k;
        off += bytes;
        i += k;
    }
    return m;
}

/* Sends message m of b again as single datagrams (GSO refused). */
static void send_singly(el_udptx *tx, batch *b, unsigned m)
{
    uint8_t *p = b->iov[m].iov_base;
    size_t left = b->iov[m].iov_len, seg = left;
    struct cmsghdr *c = b->msg[m].msg_hdr.msg_control ? CMSG_FIRSTHDR(&b->msg[m].msg_hdr) : NULL;
    if (c) {
        uint16_t s;
        memcpy(&s, CMSG_DATA(c), sizeof s);
        seg = s;
    }
    while (left > 0) {
        size_t n = left < seg ? left : seg;
        tx->st.syscalls++;
        if (sendto(tx->fd, p, n, 0, (struct sockaddr *)&tx->to, tx->tolen) == (ssize_t)n)
            tx->st.datagrams++;
        else
            tx->st.dropped++;
        p += n;
        left -= n;
    }
}

void el_udptx_flush(el_udptx *tx)
{
    if (!tx || tx->n == 0)
        return;
    if (!tx->sock || g_socket_is_closed(tx->sock)) {
        tx->st.dropped += tx->n;
        tx->n = 0;
        tx->used = 0;
        return;
    }
    static __thread batch b; /* 28 KB: off the stack, one per thread */
    unsigned nmsg = build(tx, &b), sent = 0;
    while (sent < nmsg) {
        tx->st.syscalls++;
        int r = sendmmsg(tx->fd, b.msg + sent, nmsg - sent, 0);
        if (r > 0) {
            for (unsigned m = sent; m < sent + (unsigned)r; m++) {
                tx->st.datagrams += b.count[m];
                tx->st.gso_runs += b.count[m] > 1;
            }
            sent += (unsigned)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        /* message `sent` failed */
        if (r < 0 && b.count[sent] > 1 && (errno == EIO || errno == EINVAL || errno == EMSGSIZE)) {
            /* GSO itself refused (no checksum offload, segments over the
             * path MTU): this run and the rest of the batch go singly */
            if (tx->gso)
                EL_WARN("udptx: the kernel refused UDP GSO (%s); sending datagrams singly",
                        g_strerror(errno));
            tx->gso = false;
            send_singly(tx, &b, sent);
        } else {
            tx->st.dropped += b.count[sent];
        }
        sent++;
    }
    tx->n = 0;
    tx->used = 0;
}

bool el_udptx_send(el_udptx *tx, const uint8_t *data, size_t len)
{
    if (!tx || !tx->sock || !data || len == 0 || len > EL_UDPTX_MAX_DATAGRAM)
        return false;
    if (tx->n == MAX_QUEUED || tx->used + len > ARENA_BYTES)
        el_udptx_flush(tx);
    if (!tx->arena)
        tx->arena = g_malloc(ARENA_BYTES);
    memcpy(tx->arena + tx->used, data, len);
    tx->used += len;
    tx->len[tx->n++] = (uint16_t)len;
    return true;
}

/* ---- path ----------------------------------------------------------------- */

/* Kernels before 4.18 ignore a UDP_SEGMENT control message instead of
 * refusing it; they do not know the socket option either. */
static bool gso_supported(int fd)
{
    int v;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
}

bool el_udptx_set_path(el_udptx *tx, GSocket *sock, const struct sockaddr *to)
{
    if (!tx)
        return false;
    el_udptx_flush(tx);
    if (tx->sock) {
        g_object_unref(tx->sock);
        tx->sock = NULL;
        tx->fd = -1;
    }
    if (!sock || !to)
        return sock == NULL;
    socklen_t n;
    if (to->sa_family == AF_INET)
        n = sizeof(struct sockaddr_in);
    else if (to->sa_family == AF_INET6)
        n = sizeof(struct sockaddr_in6);
    else
        return false;
    memcpy(&tx->to, to, n);
    tx->tolen = n;
    tx->sock = g_object_ref(sock);
    tx->fd = g_socket_get_fd(sock);
    if (tx->gso && !gso_supported(tx->fd)) {
        EL_INFO("udptx: no UDP GSO on this socket (kernel before 4.18?): single datagrams");
        tx->gso = false;
    }
    return true;
}

bool el_udptx_has_path(const el_udptx *tx)
{
    return tx && tx->sock;
}

uint64_t el_udptx_turn(const el_udptx *tx)
{
    return tx ? tx->turns : 0;
}

void el_udptx_get_stats(const el_udptx *tx, el_udptx_stats *out)
{
    if (!out)
        return;
    *out = tx ? tx->st : (el_udptx_stats){0};
    out->gso = tx && tx->gso;
}

/* ---- the flushing source -------------------------------------------------- */

static gboolean src_prepare(GSource *s, gint *timeout)
{
    el_udptx *tx = ((flush_source *)s)->tx;
    tx->turns++;
    el_udptx_flush(tx);
    *timeout = -1;
    return FALSE;
}

static gboolean src_check(GSource *s)
{
    (void)s;
    return FALSE;
}

static gboolean src_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    (void)s, (void)cb, (void)data;
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs src_funcs = {
    .prepare = src_prepare,
    .check = src_check,
    .dispatch = src_dispatch,
};

el_udptx *el_udptx_new(GMainContext *ctx, bool gso)
{
    el_udptx *tx = g_new0(el_udptx, 1);
    const char *env = getenv("ECHOLINK_UDP_GSO");
    tx->gso = gso && !(env && strcmp(env, "0") == 0);
    tx->fd = -1;
    tx->ctx = g_main_context_ref(ctx);
    tx->source = g_source_new(&src_funcs, sizeof(flush_source));
    ((flush_source *)tx->source)->tx = tx;
    g_source_set_priority(tx->source, FLUSH_PRIORITY);
    g_source_set_name(tx->source, "el_udptx flush");
    g_source_attach(tx->source, ctx);
    return tx;
}

void el_udptx_free(el_udptx *tx)
{
    if (!tx)
        return;
    el_udptx_set_path(tx, NULL, NULL); /* flushes */
    g_source_destroy(tx->source);
    g_source_unref(tx->source);
    g_main_context_unref(tx->ctx);
    g_free(tx->arena);
    g_free(tx);
}
