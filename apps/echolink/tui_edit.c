/* tui_edit.c - see tui_edit.h. */
#include "tui_edit.h"

#include <stdlib.h>
#include <string.h>

struct el_tui_edit {
    gunichar buf[EL_TUI_EDIT_MAX];
    size_t len;
    size_t cur; /* 0..len */
};

el_tui_edit *el_tui_edit_new(void)
{
    return calloc(1, sizeof(el_tui_edit));
}

void el_tui_edit_free(el_tui_edit *e)
{
    free(e);
}

int el_tui_edit_insert(el_tui_edit *e, gunichar c)
{
    /* control characters would reach the peer's terminal as escapes */
    if (e->len >= EL_TUI_EDIT_MAX || g_unichar_iscntrl(c) || !g_unichar_validate(c))
        return -1;
    memmove(e->buf + e->cur + 1, e->buf + e->cur, (e->len - e->cur) * sizeof e->buf[0]);
    e->buf[e->cur++] = c;
    e->len++;
    return 0;
}

/* Removes [from, to) and leaves the cursor at `from`. */
static void cut(el_tui_edit *e, size_t from, size_t to)
{
    memmove(e->buf + from, e->buf + to, (e->len - to) * sizeof e->buf[0]);
    e->len -= to - from;
    e->cur = from;
}

static size_t word_start(const el_tui_edit *e)
{
    size_t i = e->cur;
    while (i > 0 && g_unichar_isspace(e->buf[i - 1]))
        i--;
    while (i > 0 && !g_unichar_isspace(e->buf[i - 1]))
        i--;
    return i;
}

void el_tui_edit_apply(el_tui_edit *e, el_tui_edit_op op)
{
    switch (op) {
    case EL_TUI_EDIT_LEFT:
        if (e->cur > 0)
            e->cur--;
        break;
    case EL_TUI_EDIT_RIGHT:
        if (e->cur < e->len)
            e->cur++;
        break;
    case EL_TUI_EDIT_HOME:
        e->cur = 0;
        break;
    case EL_TUI_EDIT_END:
        e->cur = e->len;
        break;
    case EL_TUI_EDIT_BACKSPACE:
        if (e->cur > 0)
            cut(e, e->cur - 1, e->cur);
        break;
    case EL_TUI_EDIT_DELETE:
        if (e->cur < e->len)
            cut(e, e->cur, e->cur + 1);
        break;
    case EL_TUI_EDIT_KILL_START:
        cut(e, 0, e->cur);
        break;
    case EL_TUI_EDIT_KILL_END:
        e->len = e->cur;
        break;
    case EL_TUI_EDIT_KILL_WORD:
        cut(e, word_start(e), e->cur);
        break;
    }
}

void el_tui_edit_set(el_tui_edit *e, const char *utf8)
{
    e->len = e->cur = 0;
    if (!utf8)
        return;
    char *valid = g_utf8_make_valid(utf8, -1);
    for (const char *p = valid; *p && e->len < EL_TUI_EDIT_MAX; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (!g_unichar_iscntrl(c))
            e->buf[e->len++] = c;
    }
    e->cur = e->len;
    g_free(valid);
}

char *el_tui_edit_text(const el_tui_edit *e)
{
    char *s = g_ucs4_to_utf8(e->buf, (glong)e->len, NULL, NULL, NULL);
    return s ? s : g_strdup("");
}

size_t el_tui_edit_len(const el_tui_edit *e)
{
    return e->len;
}

size_t el_tui_edit_cursor(const el_tui_edit *e)
{
    return e->cur;
}

const gunichar *el_tui_edit_chars(const el_tui_edit *e)
{
    return e->buf;
}
