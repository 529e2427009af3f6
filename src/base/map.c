/* map.c - see map.h. Linear probing with tombstones; grows at 70% load
 * (counting tombstones, so churn cannot fill the table). */
#include "base/map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char tombstone_key;
#define TOMBSTONE (&tombstone_key)

typedef struct {
    const char *key;
    void *value;
} slot;

struct el_map {
    slot *slots;
    size_t cap;   /* power of two */
    size_t count; /* live entries */
    size_t used;  /* live + tombstones */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

el_map *el_map_new(void)
{
    el_map *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void el_map_free(el_map *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

static slot *find(const el_map *m, const char *key)
{
    size_t i = hash(key) & (m->cap - 1);
    for (;;) {
        slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMBSTONE && strcmp(s->key, key) == 0)
            return s;
        i = (i + 1) & (m->cap - 1);
    }
}

void *el_map_get(const el_map *m, const char *key)
{
    slot *s = find(m, key);
    return s ? s->value : NULL;
}

static int grow(el_map *m)
{
    size_t ncap = m->count * 2 >= m->cap / 2 ? m->cap * 2 : m->cap;
    slot *old = m->slots;
    size_t ocap = m->cap;
    slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    m->slots = ns;
    m->cap = ncap;
    m->used = m->count;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].key || old[i].key == TOMBSTONE)
            continue;
        size_t j = hash(old[i].key) & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = old[i];
    }
    free(old);
    return 0;
}

int el_map_put(el_map *m, const char *key, void *value)
{
    slot *s = find(m, key);
    if (s) {
        s->key = key;
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 10 >= m->cap * 7 && grow(m) < 0)
        return -1;
    size_t i = hash(key) & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->used++;
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->count++;
    return 0;
}

void *el_map_del(el_map *m, const char *key)
{
    slot *s = find(m, key);
    if (!s)
        return NULL;
    void *v = s->value;
    s->key = TOMBSTONE;
    s->value = NULL;
    m->count--;
    return v;
}

size_t el_map_count(const el_map *m)
{
    return m->count;
}

void el_map_each(const el_map *m, void (*fn)(const char *key, void *value, void *user), void *user)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
            fn(m->slots[i].key, m->slots[i].value, user);
}

static void free_value(const char *key, void *value, void *user)
{
    (void)key, (void)user;
    free(value);
}

void el_map_free_with_values(el_map *m)
{
    if (!m)
        return;
    el_map_each(m, free_value, NULL);
    el_map_free(m);
}
