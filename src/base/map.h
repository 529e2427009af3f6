/* map.h - a string-keyed hash map of pointers (open addressing).
 *
 * Keys are borrowed: the map stores the key pointer it was given, so the key
 * must stay valid and unchanged while the entry exists (typically the key is
 * a field of the value). Values are never freed by the map. */
#ifndef EL_MAP_H
#define EL_MAP_H

#include <stddef.h>

typedef struct el_map el_map;

el_map *el_map_new(void);
void el_map_free(el_map *m);                     /* NULL is a no-op */
void *el_map_get(const el_map *m, const char *key);
/* Inserts or replaces; returns 0, or -1 when out of memory. */
int el_map_put(el_map *m, const char *key, void *value);
/* Removes and returns the value, or NULL when absent. */
void *el_map_del(el_map *m, const char *key);
size_t el_map_count(const el_map *m);
/* Calls fn for every entry; fn must not modify the map. */
void el_map_each(const el_map *m, void (*fn)(const char *key, void *value, void *user), void *user);
/* For a map whose values it owns (malloc'ed, often holding the key): frees
 * every value and then the map. NULL is a no-op. */
void el_map_free_with_values(el_map *m);

#endif
