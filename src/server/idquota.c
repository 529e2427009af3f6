/* idquota.c - see idquota.h. Buckets hold thousandths of a token, so the
 * continuous refill needs no floating point. */
#include "server/idquota.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/map.h"

#define MILLI 1000
#define HOUR_MS (3600 * INT64_C(1000))

typedef struct {
    char key[INET6_ADDRSTRLEN];
    int64_t tokens; /* thousandths */
    int64_t at_ms;  /* when tokens was last brought up to date */
} bucket;

struct el_idquota {
    el_map *buckets; /* key -> bucket* */
    int warned_full;
};

el_idquota *el_idquota_new(void)
{
    el_idquota *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->buckets = el_map_new();
    if (!q->buckets) {
        free(q);
        return NULL;
    }
    return q;
}

static void free_bucket(const char *key, void *value, void *user)
{
    (void)key;
    (void)user;
    free(value);
}

void el_idquota_free(el_idquota *q)
{
    if (!q)
        return;
    el_map_each(q->buckets, free_bucket, NULL);
    el_map_free(q->buckets);
    free(q);
}

size_t el_idquota_count(const el_idquota *q)
{
    return el_map_count(q->buckets);
}

/* The bucket's key: an IPv4 address as it is (also when IPv4-mapped), an
 * IPv6 address by its /64. */
static void key_of(const char *addr, char out[INET6_ADDRSTRLEN])
{
    unsigned char a6[16];
    if (strchr(addr, ':') && inet_pton(AF_INET6, addr, a6) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a6, mapped, sizeof mapped) == 0 && inet_ntop(AF_INET, a6 + 12, out, INET6_ADDRSTRLEN))
            return;
        memset(a6 + 8, 0, 8);
        if (inet_ntop(AF_INET6, a6, out, INET6_ADDRSTRLEN))
            return;
    }
    size_t n = strlen(addr);
    if (n >= INET6_ADDRSTRLEN)
        n = INET6_ADDRSTRLEN - 1;
    memcpy(out, addr, n);
    out[n] = '\0';
}

static int64_t capacity(int per_hour)
{
    return (int64_t)per_hour * MILLI;
}

static void refill(bucket *b, int per_hour, int64_t now_ms)
{
    int64_t dt = now_ms - b->at_ms;
    if (dt <= 0)
        return; /* a clock that went back adds nothing */
    int64_t added = dt * capacity(per_hour) / HOUR_MS;
    if (added == 0)
        return; /* keep the time: calls closer than one thousandth apart still add up */
    b->tokens += added;
    if (b->tokens > capacity(per_hour))
        b->tokens = capacity(per_hour);
    b->at_ms = now_ms;
}

int el_idquota_take(el_idquota *q, const char *addr, int per_hour, int64_t now_ms,
                    int *retry_s)
{
    if (per_hour <= 0)
        return 1;
    char key[INET6_ADDRSTRLEN];
    key_of(addr ? addr : "", key);
    bucket *b = el_map_get(q->buckets, key);
    if (!b) {
        if (el_map_count(q->buckets) >= EL_IDQUOTA_MAX_ADDRS) {
            el_idquota_purge(q, per_hour, now_ms);
            if (el_map_count(q->buckets) >= EL_IDQUOTA_MAX_ADDRS) {
                if (!q->warned_full++)
                    EL_WARN("new-identity quota: %d addresses tracked; newcomers pass unchecked",
                            EL_IDQUOTA_MAX_ADDRS);
                return 1;
            }
        }
        b = calloc(1, sizeof *b);
        if (!b)
            return 1; /* out of memory: the limit is not worth failing a login */
        memcpy(b->key, key, sizeof key);
        b->tokens = capacity(per_hour);
        b->at_ms = now_ms;
        if (el_map_put(q->buckets, b->key, b) < 0) {
            free(b);
            return 1;
        }
    }
    refill(b, per_hour, now_ms);
    if (b->tokens >= MILLI) {
        b->tokens -= MILLI;
        return 1;
    }
    if (retry_s) {
        int64_t missing = MILLI - b->tokens;
        *retry_s = (int)((missing * HOUR_MS / capacity(per_hour) + 999) / 1000);
    }
    return 0;
}

typedef struct {
    int per_hour;
    int64_t now_ms;
    bucket **full;
    size_t n, cap;
} purge_ctx;

static void collect_full(const char *key, void *value, void *user)
{
    (void)key;
    purge_ctx *p = user;
    bucket *b = value;
    refill(b, p->per_hour, p->now_ms);
    if (b->tokens < capacity(p->per_hour) || p->n == p->cap)
        return;
    p->full[p->n++] = b;
}

void el_idquota_purge(el_idquota *q, int per_hour, int64_t now_ms)
{
    purge_ctx p = {per_hour, now_ms, NULL, 0, el_map_count(q->buckets)};
    if (p.cap == 0)
        return;
    p.full = malloc(p.cap * sizeof *p.full);
    if (!p.full)
        return; /* tried again at the next purge */
    el_map_each(q->buckets, collect_full, &p);
    for (size_t i = 0; i < p.n; i++) {
        el_map_del(q->buckets, p.full[i]->key);
        free(p.full[i]);
    }
    free(p.full);
}
