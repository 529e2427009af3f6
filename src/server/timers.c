/* timers.c - see timers.h. */
#include "server/timers.h"

#include "server/server_int.h"


static void rearm(el_timers *t);

static void on_timer(uv_timer_t *h)
{
    el_timers *t = h->data;
    t->armed_due_us = 0;
    int64_t now = el_now_us();
    for (int i = 0; i < t->nlists; i++) {
        el_tlist *l = t->lists[i];
        /* only nodes due now, and never ones armed by these callbacks */
        el_tnode *last = l->tail;
        while (l->head && l->head->due_us <= now) {
            el_tnode *n = l->head;
            int was_last = n == last;
            el_tnode_cancel(n);
            n->fire(n);
            if (was_last)
                break;
        }
    }
    rearm(t);
}

static void rearm(el_timers *t)
{
    int64_t due = 0;
    for (int i = 0; i < t->nlists; i++)
        if (t->lists[i]->head && (!due || t->lists[i]->head->due_us < due))
            due = t->lists[i]->head->due_us;
    if (!due) {
        if (t->armed_due_us)
            uv_timer_stop(&t->timer);
        t->armed_due_us = 0;
        return;
    }
    if (t->armed_due_us && t->armed_due_us <= due)
        return;
    int64_t wait_ms = (due - el_now_us() + 999) / 1000;
    t->armed_due_us = due;
    uv_timer_start(&t->timer, on_timer, wait_ms > 0 ? (uint64_t)wait_ms : 0, 0);
}

void el_timers_init(el_timers *t, uv_loop_t *loop)
{
    uv_timer_init(loop, &t->timer);
    uv_unref((uv_handle_t *)&t->timer);
    t->timer.data = t;
    t->nlists = 0;
    t->armed_due_us = 0;
    t->live = 1;
}

void el_timers_close(el_timers *t)
{
    if (t->live && !uv_is_closing((uv_handle_t *)&t->timer))
        uv_close((uv_handle_t *)&t->timer, NULL);
    t->live = 0;
}

void el_tlist_init(el_tlist *l, int64_t delay_us)
{
    l->head = l->tail = NULL;
    l->delay_us = delay_us;
}

static void register_list(el_timers *t, el_tlist *l)
{
    for (int i = 0; i < t->nlists; i++)
        if (t->lists[i] == l)
            return;
    if (t->nlists < EL_TIMERS_MAX_LISTS)
        t->lists[t->nlists++] = l;
}

void el_tnode_cancel(el_tnode *n)
{
    el_tlist *l = n->list;
    if (!l)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    n->list = NULL;
}

void el_tnode_arm(el_timers *t, el_tlist *l, el_tnode *n, el_tfire fire)
{
    el_tnode_cancel(n);
    if (!t->live)
        return;
    register_list(t, l);
    n->fire = fire;
    n->due_us = el_now_us() + l->delay_us;
    n->list = l;
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
    rearm(t);
}

int el_tnode_armed(const el_tnode *n)
{
    return n->list != NULL;
}
