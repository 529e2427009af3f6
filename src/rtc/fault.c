/* fault.c - see fault.h. Held datagrams wait in one queue sorted by due
 * time (ties in push order) plus a small queue of reordered ones that wait
 * for a successor; one GSource on the context, its ready time set to the
 * earliest due, emits them. */
#include "rtc/fault.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

typedef struct {
    gint64 due;    /* monotonic µs */
    uint64_t seq;  /* push order of the original datagram */
    size_t len;
    uint8_t data[];
} held;

struct el_fault {
    GMainContext *ctx;
    GSource *timer;
    el_fault_spec spec;
    el_fault_out out;
    void *user;
    uint64_t rng;
    uint64_t seq;
    GQueue held;      /* of held*, sorted by due */
    GQueue overtake;  /* of held*, reordered, in push order */
    size_t held_bytes;
    el_fault_stats st;
    int depth;        /* flushes in progress */
    bool dead;        /* el_fault_free called: g_free at depth 0 */
};

/* ---- spec ------------------------------------------------------------------ */

typedef enum { K_PCT, K_MS, K_SEED, K_DIR, K_COUNT } key_kind;

typedef struct {
    const char *name;
    key_kind kind;
    size_t off;
} key_def;

#define FIELD(f) offsetof(el_fault_spec, f)
static const key_def keys[] = {
    {"loss", K_PCT, FIELD(loss)},         {"reorder", K_PCT, FIELD(reorder)},
    {"dup", K_PCT, FIELD(dup)},           {"delay", K_MS, FIELD(delay_ms)},
    {"jitter", K_MS, FIELD(jitter_ms)},   {"seed", K_SEED, FIELD(seed)},
    {"dir", K_DIR, FIELD(dir)},           {"held", K_COUNT, FIELD(held_max)},
    {"bytes", K_COUNT, FIELD(bytes_max)},
};

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!g_ascii_isdigit(*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_value(const key_def *k, const char *val, el_fault_spec *sp, char *err,
                       size_t errlen)
{
    uint64_t v;
    char *base = (char *)sp + k->off;
    switch (k->kind) {
    case K_PCT:
        if (parse_u64(val, 100, &v))
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "netfault: %s=%s: a percentage 0..100 expected", k->name, val);
        *(unsigned *)(void *)base = (unsigned)v;
        return EL_OK;
    case K_MS:
        if (parse_u64(val, EL_FAULT_MS_MAX, &v))
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "netfault: %s=%s: milliseconds 0..%d expected", k->name, val,
                             EL_FAULT_MS_MAX);
        *(unsigned *)(void *)base = (unsigned)v;
        return EL_OK;
    case K_SEED:
        if (parse_u64(val, UINT64_MAX, &v))
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "netfault: seed=%s: a decimal integer expected", val);
        sp->seed = v;
        return EL_OK;
    case K_COUNT:
        if (parse_u64(val, SIZE_MAX, &v) || v == 0)
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "netfault: %s=%s: a positive integer expected", k->name, val);
        *(size_t *)(void *)base = (size_t)v;
        return EL_OK;
    case K_DIR:
        if (!strcmp(val, "send"))
            sp->dir = EL_FAULT_SEND;
        else if (!strcmp(val, "recv"))
            sp->dir = EL_FAULT_RECV;
        else if (!strcmp(val, "both"))
            sp->dir = EL_FAULT_SEND | EL_FAULT_RECV;
        else
            return el_seterr(err, errlen, EL_ERR_INVALID,
                             "netfault: dir=%s: send, recv or both expected", val);
        return EL_OK;
    }
    return EL_ERR_INVALID;
}

/* One "key=value" item (surrounding blanks already stripped). */
static int parse_item(char *item, el_fault_spec *sp, unsigned *seen, char *err, size_t errlen)
{
    char *eq = strchr(item, '=');
    if (!eq)
        return el_seterr(err, errlen, EL_ERR_INVALID, "netfault: '%s': key=value expected",
                         item);
    *eq = '\0';
    const char *name = g_strstrip(item), *val = g_strstrip(eq + 1);
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (strcmp(keys[i].name, name) != 0)
            continue;
        if (*seen & (1u << i))
            return el_seterr(err, errlen, EL_ERR_INVALID, "netfault: %s given twice", name);
        *seen |= 1u << i;
        return parse_value(&keys[i], val, sp, err, errlen);
    }
    return el_seterr(err, errlen, EL_ERR_INVALID,
                     "netfault: unknown key '%s' (loss, delay, jitter, reorder, dup, seed, "
                     "dir, held, bytes)",
                     name);
}

int el_fault_parse(const char *spec, el_fault_spec *out, char *err, size_t errlen)
{
    el_fault_spec sp = {.dir = EL_FAULT_SEND,
                        .held_max = EL_FAULT_HELD_MAX,
                        .bytes_max = EL_FAULT_BYTES_MAX};
    if (!spec)
        spec = "";
    if (strlen(spec) > EL_FAULT_SPEC_MAX)
        return el_seterr(err, errlen, EL_ERR_INVALID, "netfault: spec longer than %d bytes",
                         EL_FAULT_SPEC_MAX);
    char buf[EL_FAULT_SPEC_MAX + 1];
    g_strlcpy(buf, spec, sizeof buf);
    unsigned seen = 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        g_strstrip(item);
        if (!*item)
            continue; /* "loss=5," or blanks */
        int rc = parse_item(item, &sp, &seen, err, errlen);
        if (rc != EL_OK)
            return rc;
    }
    *out = sp;
    return EL_OK;
}

int el_fault_spec_active(const el_fault_spec *sp)
{
    return sp->loss || sp->reorder || sp->dup || sp->delay_ms || sp->jitter_ms;
}

void el_fault_spec_write(const el_fault_spec *sp, char *out, size_t outlen)
{
    const char *dir = sp->dir == EL_FAULT_RECV ? "recv"
                      : sp->dir == (EL_FAULT_SEND | EL_FAULT_RECV) ? "both"
                                                                     : "send";
    snprintf(out, outlen,
             "loss=%u,delay=%u,jitter=%u,reorder=%u,dup=%u,seed=%" PRIu64
             ",dir=%s,held=%zu,bytes=%zu",
             sp->loss, sp->delay_ms, sp->jitter_ms, sp->reorder, sp->dup, sp->seed, dir,
             sp->held_max, sp->bytes_max);
}

/* ---- randomness ------------------------------------------------------------ */

/* xorshift64*: small, seedable, the same on every platform. */
static uint64_t next_rand(el_fault *f)
{
    uint64_t x = f->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    f->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static bool roll(el_fault *f, unsigned pct)
{
    return pct && next_rand(f) % 100 < pct;
}

/* ---- queue ----------------------------------------------------------------- */

static size_t nheld(const el_fault *f)
{
    return f->held.length + f->overtake.length; /* GQueue's getters take no const */
}

static gint64 earliest_due(const el_fault *f)
{
    gint64 t = -1;
    const held *h = f->held.head ? f->held.head->data : NULL;
    if (h)
        t = h->due;
    for (const GList *l = f->overtake.head; l; l = l->next) {
        const held *o = l->data;
        if (t < 0 || o->due < t)
            t = o->due;
    }
    return t;
}

static void rearm(el_fault *f)
{
    if (f->timer)
        g_source_set_ready_time(f->timer, earliest_due(f));
}

/* Inserts into the due-sorted queue: after every entry due at or before it,
 * so equal times keep push order. Jittered entries land near the tail. */
static void insert_sorted(el_fault *f, held *h)
{
    GList *l = f->held.tail;
    while (l && ((held *)l->data)->due > h->due)
        l = l->prev;
    if (l)
        g_queue_insert_after(&f->held, l, h);
    else
        g_queue_push_head(&f->held, h);
}

static void unaccount(el_fault *f, held *h)
{
    f->held_bytes -= h->len;
}

/* Passes one held datagram on and frees it; f may be dead afterwards. */
static void emit(el_fault *f, held *h)
{
    unaccount(f, h);
    f->st.emitted++;
    f->out(f->user, h->data, h->len);
    g_free(h);
}

/* After a datagram went out, the reordered ones pushed before it follow. */
static void release_overtaken(el_fault *f, uint64_t seq)
{
    held *o;
    while (!f->dead && (o = g_queue_peek_head(&f->overtake)) != NULL && o->seq < seq) {
        g_queue_pop_head(&f->overtake);
        emit(f, o);
    }
}

static void drop_all(el_fault *f)
{
    held *h;
    while ((h = g_queue_pop_head(&f->held)) != NULL)
        g_free(h);
    while ((h = g_queue_pop_head(&f->overtake)) != NULL)
        g_free(h);
    f->held_bytes = 0;
}

static void destroy(el_fault *f)
{
    g_main_context_unref(f->ctx);
    g_free(f);
}

/* Emits everything due; reordered datagrams whose wait ran out go in push
 * order. Frees f if out() called el_fault_free. */
static void flush(el_fault *f)
{
    f->depth++;
    gint64 now = g_get_monotonic_time();
    while (!f->dead) {
        held *h = g_queue_peek_head(&f->held);
        held *o = g_queue_peek_head(&f->overtake);
        if (o && o->due > now) {
            /* the head of the reordered queue may not be the earliest */
            o = NULL;
            for (GList *l = f->overtake.head; l; l = l->next)
                if (((held *)l->data)->due <= now) {
                    o = l->data;
                    break;
                }
        }
        if (h && h->due <= now && (!o || h->seq < o->seq)) {
            g_queue_pop_head(&f->held);
            uint64_t seq = h->seq;
            emit(f, h);
            release_overtaken(f, seq);
        } else if (o) {
            g_queue_remove(&f->overtake, o);
            emit(f, o);
        } else {
            break;
        }
    }
    if (!f->dead)
        rearm(f);
    if (--f->depth == 0 && f->dead)
        destroy(f);
}

static gboolean timer_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    (void)src;
    return cb(data);
}

static GSourceFuncs timer_funcs = {.dispatch = timer_dispatch};

static gboolean on_timer(gpointer data)
{
    el_fault *f = data;
    g_source_set_ready_time(f->timer, -1); /* flush re-arms for what is left */
    flush(f);
    return G_SOURCE_CONTINUE;
}

/* Holds one copy (due at `due`, or after its successor when `overtake`);
 * false when the caps leave no room. */
static bool hold(el_fault *f, const uint8_t *data, size_t len, gint64 due, bool overtake)
{
    if (nheld(f) + 1 > f->spec.held_max || f->held_bytes + len > f->spec.bytes_max) {
        f->st.cap_drops++;
        return false;
    }
    held *h = g_malloc(sizeof *h + len);
    h->due = due;
    h->seq = f->seq;
    h->len = len;
    memcpy(h->data, data, len);
    f->held_bytes += len;
    if (overtake) {
        h->due += (gint64)EL_FAULT_REORDER_WAIT_MS * 1000;
        g_queue_push_tail(&f->overtake, h);
        f->st.reordered++;
    } else {
        insert_sorted(f, h);
        f->st.delayed++;
    }
    size_t n = nheld(f);
    if (n > f->st.held_peak)
        f->st.held_peak = n;
    return true;
}

/* ---- public ---------------------------------------------------------------- */

el_fault *el_fault_new(GMainContext *ctx, const el_fault_spec *spec, el_fault_out out,
                       void *user)
{
    el_fault *f = g_new0(el_fault, 1);
    f->ctx = g_main_context_ref(ctx);
    f->spec = *spec;
    if (!f->spec.held_max)
        f->spec.held_max = EL_FAULT_HELD_MAX;
    if (!f->spec.bytes_max)
        f->spec.bytes_max = EL_FAULT_BYTES_MAX;
    f->out = out;
    f->user = user;
    uint64_t seed = spec->seed ? spec->seed : ((uint64_t)g_random_int() << 32 | g_random_int());
    /* xorshift must not start at 0; mix so that nearby seeds differ at once */
    f->rng = (seed ^ 0x9E3779B97F4A7C15ULL) * 0xBF58476D1CE4E5B9ULL;
    if (!f->rng)
        f->rng = 1;
    g_queue_init(&f->held);
    g_queue_init(&f->overtake);
    f->timer = g_source_new(&timer_funcs, sizeof(GSource));
    g_source_set_callback(f->timer, on_timer, f, NULL);
    g_source_set_name(f->timer, "el_fault");
    g_source_set_ready_time(f->timer, -1);
    g_source_attach(f->timer, ctx);
    return f;
}

void el_fault_push(el_fault *f, const uint8_t *data, size_t len)
{
    if (!f || f->dead || !data || len == 0)
        return;
    f->st.pushed++;
    f->seq++;
    if (roll(f, f->spec.loss)) {
        f->st.lost++;
        return;
    }
    int copies = 1;
    if (roll(f, f->spec.dup)) {
        copies = 2;
        f->st.dup++;
    }
    gint64 now = g_get_monotonic_time();
    bool any_held = false;
    f->depth++; /* out() may free f: destroyed below, not under our feet */
    for (int c = 0; c < copies && !f->dead; c++) {
        gint64 wait = (gint64)f->spec.delay_ms * 1000;
        if (f->spec.jitter_ms)
            wait += (gint64)(next_rand(f) % ((uint64_t)f->spec.jitter_ms * 1000 + 1));
        bool overtake = roll(f, f->spec.reorder);
        if (!overtake && wait == 0 && nheld(f) == 0) {
            /* nothing to wait for: straight through, as without faults */
            f->st.emitted++;
            f->out(f->user, data, len);
            continue;
        }
        any_held |= hold(f, data, len, now + wait, overtake);
    }
    if (any_held && !f->dead)
        flush(f); /* emits what is due already (a zero wait behind held ones) and re-arms */
    if (--f->depth == 0 && f->dead)
        destroy(f);
}

size_t el_fault_held(const el_fault *f)
{
    return f ? nheld(f) : 0;
}

void el_fault_get_stats(const el_fault *f, el_fault_stats *st)
{
    if (f)
        *st = f->st;
    else
        memset(st, 0, sizeof *st);
}

void el_fault_free(el_fault *f)
{
    if (!f || f->dead)
        return;
    f->dead = true;
    drop_all(f);
    g_source_destroy(f->timer);
    g_source_unref(f->timer);
    f->timer = NULL;
    if (f->depth == 0)
        destroy(f);
}
