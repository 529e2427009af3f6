/* timers.h - constant-time deadlines for thousands of sessions.
 *
 * Every session re-arms a ping timer each pingInterval and holds a
 * connect/login deadline. lws 4.1's timers keep one sorted list searched
 * from its head, which cost 90 % of an idle server's CPU at 10,000
 * connections. Here each kind of deadline has a fixed delay, so appending
 * to the tail keeps its list sorted: arming and cancelling are O(1), and one
 * libuv timer wakes for the earliest head of all lists.
 *
 * Single-threaded; nodes are embedded in their owners and must be cancelled
 * (or have fired) before the owner is freed. */
#ifndef EL_SERVER_TIMERS_H
#define EL_SERVER_TIMERS_H

#include <stdint.h>
#include <uv.h>

typedef struct el_tnode el_tnode;
typedef void (*el_tfire)(el_tnode *node);

struct el_tnode {
    el_tnode *prev, *next;
    struct el_tlist *list; /* NULL when not armed */
    int64_t due_us;
    el_tfire fire;
};

typedef struct el_tlist {
    el_tnode *head, *tail;
    int64_t delay_us;
} el_tlist;

#define EL_TIMERS_MAX_LISTS 8

typedef struct {
    uv_timer_t timer;
    int64_t armed_due_us; /* 0 = not armed */
    int live;
    el_tlist *lists[EL_TIMERS_MAX_LISTS]; /* registered on first arming */
    int nlists;
} el_timers;

void el_timers_init(el_timers *t, uv_loop_t *loop);
/* Closes the libuv timer (the lists must be empty or abandoned). */
void el_timers_close(el_timers *t);
void el_tlist_init(el_tlist *l, int64_t delay_us);
/* Arms node in list l (cancelling any earlier arming) to call fire after
 * the list's delay. */
void el_tnode_arm(el_timers *t, el_tlist *l, el_tnode *node, el_tfire fire);
void el_tnode_cancel(el_tnode *node);
int el_tnode_armed(const el_tnode *node);

#endif
