/* tui_view.c - drawing the screen of `echolink chat` from the model.
 *
 *   row 0        status bar: who we are, the server, the shown peer
 *   rows 1..H-3  contacts and groups | the conversation (last row: typing)
 *   row H-2      notice line (errors from requests, events worth a word)
 *   row H-1      input line
 *
 * The whole screen is drawn again on every change (curses sends only the
 * difference), so a resize needs nothing special. Every string is clipped
 * to its cells by display width, so any size down to 1x1 is drawn without
 * writing outside the screen; below 60 columns the contact list goes. */
#include "tui_int.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

enum {
    ST_TEXT,
    ST_DIM,
    ST_ME,
    ST_PEER,
    ST_ERROR,
    ST_BAR,
    ST_ONLINE,
    ST_SEL,
    ST_UNREAD,
    ST_MARK,
};

enum { PAIR_GREEN = 1, PAIR_CYAN, PAIR_YELLOW, PAIR_RED, PAIR_BAR, PAIR_MAGENTA };

void el_tui_colors_init(el_tui *t)
{
    (void)t;
    start_color();
    use_default_colors();
    init_pair(PAIR_GREEN, COLOR_GREEN, -1);
    init_pair(PAIR_CYAN, COLOR_CYAN, -1);
    init_pair(PAIR_YELLOW, COLOR_YELLOW, -1);
    init_pair(PAIR_RED, COLOR_RED, -1);
    init_pair(PAIR_BAR, COLOR_WHITE, COLOR_BLUE);
    init_pair(PAIR_MAGENTA, COLOR_MAGENTA, -1);
}

static attr_t style(const el_tui *t, int st)
{
    static const attr_t mono[] = {
        [ST_TEXT] = A_NORMAL, [ST_DIM] = A_DIM,     [ST_ME] = A_BOLD,     [ST_PEER] = A_BOLD,
        [ST_ERROR] = A_BOLD,  [ST_BAR] = A_REVERSE, [ST_ONLINE] = A_BOLD, [ST_SEL] = A_REVERSE,
        [ST_UNREAD] = A_BOLD, [ST_MARK] = A_NORMAL,
    };
    if (!t->colors)
        return mono[st];
    switch (st) {
    case ST_ME: return COLOR_PAIR(PAIR_GREEN) | A_BOLD;
    case ST_PEER: return COLOR_PAIR(PAIR_CYAN) | A_BOLD;
    case ST_ERROR: return COLOR_PAIR(PAIR_RED) | A_BOLD;
    case ST_BAR: return COLOR_PAIR(PAIR_BAR);
    case ST_ONLINE: return COLOR_PAIR(PAIR_GREEN);
    case ST_UNREAD: return COLOR_PAIR(PAIR_YELLOW) | A_BOLD;
    case ST_MARK: return COLOR_PAIR(PAIR_MAGENTA);
    default: return mono[st];
    }
}

/* ---- text measured in cells ----------------------------------------------------------- */

/* What may reach the terminal: peers' text must not carry escapes. */
static gunichar cell_char(const el_tui *t, gunichar c, int *w)
{
    if (c == '\t' || c == '\n' || c == '\r')
        c = ' ';
    if (g_unichar_iscntrl(c) || (!t->utf8 && c >= 0x80))
        c = '?';
    int cw = wcwidth((wchar_t)c);
    if (cw < 0) {
        c = '?';
        cw = 1;
    }
    *w = cw;
    return c;
}

static int text_width(const el_tui *t, const char *s)
{
    int n = 0, w;
    for (const char *p = s; p && *p; p = g_utf8_next_char(p)) {
        cell_char(t, g_utf8_get_char(p), &w);
        n += w;
    }
    return n;
}

/* Draws valid UTF-8 `s` at (y, x) in at most `w` cells; returns the cells
 * used. Zero-width characters are left out (they would attach to a cell
 * we do not own). */
static int put(const el_tui *t, int y, int x, int w, const char *s, int st)
{
    if (w <= 0 || !s || y < 0 || y >= LINES || x < 0 || x >= COLS)
        return 0;
    if (w > COLS - x)
        w = COLS - x;
    wchar_t buf[256];
    int n = 0, used = 0, cw;
    for (const char *p = s; *p && n < (int)G_N_ELEMENTS(buf); p = g_utf8_next_char(p)) {
        gunichar c = cell_char(t, g_utf8_get_char(p), &cw);
        if (cw == 0)
            continue;
        if (used + cw > w)
            break;
        buf[n++] = (wchar_t)c;
        used += cw;
    }
    attrset(style(t, st));
    mvaddnwstr(y, x, buf, n);
    attrset(A_NORMAL);
    return used;
}

static void fill(const el_tui *t, int y, int x, int w, int st)
{
    if (y < 0 || y >= LINES || w <= 0)
        return;
    attrset(style(t, st));
    mvhline(y, x, ' ', w);
    attrset(A_NORMAL);
}

/* ---- display lines ---------------------------------------------------------------------- */

typedef struct {
    char *s;
    int st;
} vseg;

#define VSEGS 6
typedef struct {
    vseg seg[VSEGS];
    int n;
    int indent;
} tui_line;

static void line_clear(gpointer p)
{
    tui_line *l = p;
    for (int i = 0; i < l->n; i++)
        g_free(l->seg[i].s);
}

static void seg_add(tui_line *l, const char *s, int st)
{
    if (l->n < VSEGS && s)
        l->seg[l->n++] = (vseg){g_strdup(s), st};
}

static void draw_vline(const el_tui *t, const tui_line *l, int y, int x, int w)
{
    int used = l->indent < w ? l->indent : w;
    for (int i = 0; i < l->n && used < w; i++)
        used += put(t, y, x + used, w - used, l->seg[i].s, l->seg[i].st);
}

/* Word-wraps valid UTF-8 into lines of `w1` cells, then `w`. */
static GPtrArray *wrap(const el_tui *t, const char *text, int w1, int w)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    GString *line = g_string_new(NULL);
    int lw = 0, width = w1 > 0 ? w1 : 1, cw;
    gssize sp = -1; /* byte offset of the last space in line */
    for (const char *p = text ? text : ""; *p; p = g_utf8_next_char(p)) {
        gunichar raw = g_utf8_get_char(p);
        if (raw == '\n') {
            g_ptr_array_add(out, g_string_free(line, FALSE));
            line = g_string_new(NULL);
            lw = 0, sp = -1, width = w > 0 ? w : 1;
            continue;
        }
        gunichar c = cell_char(t, raw, &cw);
        if (cw == 0)
            continue;
        if (lw + cw > width && line->len > 0) {
            char *rest = g_strdup(sp >= 0 && c != ' ' ? line->str + sp + 1 : "");
            g_string_truncate(line, sp >= 0 && c != ' ' ? (gsize)sp : line->len);
            g_ptr_array_add(out, g_string_free(line, FALSE));
            line = g_string_new(rest);
            lw = text_width(t, rest);
            g_free(rest);
            sp = -1, width = w > 0 ? w : 1;
            if (c == ' ')
                continue; /* a break eats the space */
        }
        if (c == ' ')
            sp = (gssize)line->len;
        g_string_append_unichar(line, c);
        lw += cw;
    }
    g_ptr_array_add(out, g_string_free(line, FALSE));
    return out;
}

/* ---- messages ------------------------------------------------------------------------------- */

#define S(o, key) json_string_value(json_object_get((o), (key)))
#define I(o, key) json_integer_value(json_object_get((o), (key)))
#define B(o, key) json_is_true(json_object_get((o), (key)))

static void human_size(json_int_t n, char *out, size_t len)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

/* One content line of a message, before layout. */
typedef struct {
    char *s;
    int st;
} piece;

static void piece_add(GArray *pieces, char *s, int st)
{
    piece p = {s, st};
    g_array_append_val(pieces, p);
}

static char *quote_of(el_tui *t, json_t *m)
{
    json_t *target = el_tui_msg_by_id(t, S(m, "reply_to"));
    if (!target)
        return g_strdup("> (an earlier message)");
    char buf[16];
    const char *text = B(target, "deleted") ? "[deleted]" : S(target, "text") ? S(target, "text") : "";
    const char *nl = strchr(text, '\n');
    return g_strdup_printf("> %s: %.*s", el_tui_name(t, S(target, "from"), buf),
                           nl ? (int)(nl - text) : (int)strlen(text), text);
}

static char *progress_bar(const el_tui *t, json_int_t done, json_int_t size, int w)
{
    int pct = size > 0 ? (int)(done * 100 / size) : 0;
    char a[32], b[32];
    human_size(done, a, sizeof a);
    human_size(size, b, sizeof b);
    int bw = w - 30 > 30 ? 30 : w - 30;
    GString *s = g_string_new(NULL);
    if (bw >= 4) {
        int fillw = (int)((double)bw * pct / 100);
        g_string_append_c(s, '[');
        for (int i = 0; i < bw; i++)
            g_string_append(s, i < fillw ? (t->utf8 ? "█" : "#") : (t->utf8 ? "░" : "."));
        g_string_append(s, "] ");
    }
    g_string_append_printf(s, "%3d%% %s/%s", pct, a, b);
    return g_string_free(s, FALSE);
}

/* The body of a file or voice message, and its progress bar. */
static void file_pieces(el_tui *t, GArray *pieces, json_t *m, int num, int w, const char *marks)
{
    json_t *f = json_object_get(m, "file");
    const char *state = S(f, "state") ? S(f, "state") : "offered";
    char size[32];
    human_size(I(f, "size"), size, sizeof size);
    json_int_t voice = I(f, "voice_ms");
    GString *s = g_string_new(NULL);
    if (voice > 0 || !strcmp(S(m, "kind") ? S(m, "kind") : "", "voice"))
        g_string_append_printf(s, "[voice %d s] ", (int)((voice + 500) / 1000));
    else
        g_string_append(s, "[file] ");
    g_string_append_printf(s, "%s (%s) ", S(f, "name") ? S(f, "name") : S(m, "text"), size);
    int out = B(m, "outgoing");
    if (!strcmp(state, "offered"))
        g_string_append_printf(s, out ? "offered" : "offered: /accept-file %d", num);
    else if (!strcmp(state, "complete"))
        g_string_append_printf(s, out ? "sent" : "saved to %s", S(f, "path") ? S(f, "path") : "?");
    else if (!strcmp(state, "failed") || !strcmp(state, "cancelled"))
        g_string_append_printf(s, "%s%s%s", state, S(f, "error") ? ": " : "",
                               S(f, "error") ? S(f, "error") : "");
    else
        g_string_append_printf(s, "%s (/cancel-file %d)", state, num);
    g_string_append(s, marks);
    piece_add(pieces, g_string_free(s, FALSE), ST_TEXT);
    if (!strcmp(state, "active") || !strcmp(state, "accepted"))
        piece_add(pieces, progress_bar(t, I(f, "offset"), I(f, "size"), w), ST_MARK);
}

static const char *status_mark(const el_tui *t, const char *status)
{
    if (!status || !strcmp(status, "incoming"))
        return "";
    if (!strcmp(status, "read"))
        return t->utf8 ? " ✓✓" : " vv";
    if (!strcmp(status, "delivered"))
        return t->utf8 ? " ✓" : " v";
    return t->utf8 ? " …" : " ...";
}

/* "👍 alice, bob  ❤ carol" */
static char *reactions_text(el_tui *t, json_t *list)
{
    GPtrArray *emojis = g_ptr_array_new();
    GPtrArray *who = g_ptr_array_new(); /* GString * per emoji */
    json_t *r;
    size_t i;
    json_array_foreach(list, i, r) {
        const char *e = S(r, "emoji");
        if (!e)
            continue;
        guint j = 0;
        while (j < emojis->len && strcmp(emojis->pdata[j], e))
            j++;
        if (j == emojis->len) {
            g_ptr_array_add(emojis, (gpointer)e);
            g_ptr_array_add(who, g_string_new(NULL));
        }
        char buf[16];
        GString *w = who->pdata[j];
        g_string_append_printf(w, "%s%s", w->len ? ", " : "", el_tui_name(t, S(r, "from"), buf));
    }
    GString *s = g_string_new(NULL);
    for (guint j = 0; j < emojis->len; j++)
        g_string_append_printf(s, "%s%s %s", j ? "  " : "", (char *)emojis->pdata[j],
                               ((GString *)who->pdata[j])->str);
    for (guint j = 0; j < who->len; j++)
        g_string_free(who->pdata[j], TRUE);
    g_ptr_array_free(who, TRUE);
    g_ptr_array_free(emojis, TRUE);
    return g_string_free(s, FALSE);
}

static void msg_lines(el_tui *t, GArray *out, json_t *m, int num, int w)
{
    char nums[16], when[16] = "", buf[16];
    snprintf(nums, sizeof nums, "%d ", num);
    time_t ts = (time_t)(I(m, "ts") / 1000);
    struct tm tm;
    if (localtime_r(&ts, &tm))
        strftime(when, sizeof when, "%H:%M ", &tm);
    const char *kind = S(m, "kind") ? S(m, "kind") : "chat";
    int system = !strcmp(kind, "system");
    int outgoing = B(m, "outgoing");
    char *author = system ? g_strdup("") : g_strdup_printf("%s: ", el_tui_name(t, S(m, "from"), buf));
    int head = text_width(t, nums) + text_width(t, when) + text_width(t, author);
    int indent = head <= w / 2 ? head : 2;

    GArray *pieces = g_array_new(FALSE, FALSE, sizeof(piece));
    if (S(m, "reply_to") && !B(m, "deleted"))
        piece_add(pieces, quote_of(t, m), ST_DIM);
    GString *marks = g_string_new(NULL);
    if (B(m, "edited") && !B(m, "deleted"))
        g_string_append(marks, " (edited)");
    if (outgoing)
        g_string_append(marks, status_mark(t, S(m, "status")));
    if (B(m, "deleted"))
        piece_add(pieces, g_strdup_printf("[deleted]%s", marks->str), ST_DIM);
    else if (json_object_get(m, "file"))
        file_pieces(t, pieces, m, num, w - indent, marks->str);
    else
        piece_add(pieces, g_strdup_printf("%s%s", S(m, "text") ? S(m, "text") : "", marks->str),
                  system ? ST_DIM : ST_TEXT);
    g_string_free(marks, TRUE);
    json_t *reactions = json_object_get(m, "reactions");
    if (json_array_size(reactions) > 0)
        piece_add(pieces, reactions_text(t, reactions), ST_MARK);

    tui_line l = {.n = 0};
    seg_add(&l, nums, ST_DIM);
    seg_add(&l, when, ST_DIM);
    seg_add(&l, author, outgoing ? ST_ME : ST_PEER);
    int first = indent == head; /* content starts on the header line */
    if (!first)
        g_array_append_val(out, l);
    for (guint i = 0; i < pieces->len; i++) {
        piece *p = &g_array_index(pieces, piece, i);
        GPtrArray *rows = wrap(t, p->s, first ? w - head : w - indent, w - indent);
        for (guint j = 0; j < rows->len; j++) {
            if (first) {
                seg_add(&l, rows->pdata[j], p->st);
                g_array_append_val(out, l);
                first = 0;
                continue;
            }
            tui_line c = {.indent = indent};
            seg_add(&c, rows->pdata[j], p->st);
            g_array_append_val(out, c);
        }
        g_ptr_array_free(rows, TRUE);
        g_free(p->s);
    }
    if (first) /* nothing to show at all */
        g_array_append_val(out, l);
    g_array_free(pieces, TRUE);
    g_free(author);
}

static void text_lines(el_tui *t, GArray *out, const char *text, int st, int w)
{
    GPtrArray *rows = wrap(t, text, w, w);
    for (guint j = 0; j < rows->len; j++) {
        tui_line l = {.n = 0};
        seg_add(&l, rows->pdata[j], st);
        g_array_append_val(out, l);
    }
    g_ptr_array_free(rows, TRUE);
}

static GArray *conversation_lines(el_tui *t, int w)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(tui_line));
    g_array_set_clear_func(out, line_clear);
    if (!t->sel) {
        text_lines(t, out, "No conversation yet.", ST_TEXT, w);
        text_lines(t, out, "Ask someone for their peer ID and send them a contact request "
                           "with /add PEER_ID, or give them yours:", ST_DIM, w);
        text_lines(t, out, t->me_id ? t->me_id : "?", ST_ME, w);
        text_lines(t, out, "/help lists the commands.", ST_DIM, w);
        return out;
    }
    if (t->msgs->len == 0)
        text_lines(t, out, "No messages yet: type one and press Enter.", ST_DIM, w);
    for (guint i = 0; i < t->msgs->len; i++)
        msg_lines(t, out, t->msgs->pdata[i], (int)i + 1, w);
    return out;
}

static GArray *overlay_lines(el_tui *t, int w)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(tui_line));
    g_array_set_clear_func(out, line_clear);
    char *title = g_strdup_printf("%s  (Esc closes)", t->overlay->title);
    text_lines(t, out, title, ST_UNREAD, w);
    g_free(title);
    for (guint i = 0; i < t->overlay->lines->len; i++)
        text_lines(t, out, t->overlay->lines->pdata[i], ST_TEXT, w);
    return out;
}

/* ---- layout ------------------------------------------------------------------------------- */

typedef struct {
    int status, notice, input; /* rows, -1: none */
    int body_top, body_rows;
    int list_w;                /* 0: no contact list */
    int pane_x, pane_w;
    int msg_rows, typing;      /* typing: row, -1: none */
} layout;

static layout compute_layout(void)
{
    layout L;
    int H = LINES, W = COLS;
    L.input = H - 1;
    L.notice = H >= 2 ? H - 2 : -1;
    L.status = H >= 4 ? 0 : -1;
    L.body_top = L.status >= 0 ? 1 : 0;
    L.body_rows = L.notice >= 0 ? L.notice - L.body_top : 0;
    if (L.body_rows < 0)
        L.body_rows = 0;
    L.list_w = W >= 60 ? (W / 4 < 14 ? 14 : W / 4 > 28 ? 28 : W / 4) : 0;
    L.pane_x = L.list_w ? L.list_w + 1 : 0;
    L.pane_w = W - L.pane_x;
    L.typing = L.body_rows >= 3 ? L.body_top + L.body_rows - 1 : -1;
    L.msg_rows = L.body_rows - (L.typing >= 0);
    return L;
}

int el_tui_pane_rows(el_tui *t)
{
    (void)t;
    return compute_layout().msg_rows;
}

/* ---- the parts of the screen ---------------------------------------------------------------- */

static const char *presence_mark(const el_tui *t, const tui_conv *c, int *st)
{
    *st = c->online > 0 ? ST_ONLINE : ST_DIM;
    if (c->group)
        return "#";
    if (t->colors && t->utf8)
        return c->online > 0 ? "●" : "○";
    return c->online > 0 ? "*" : " ";
}

static void draw_list(el_tui *t, const layout *L)
{
    int rows = L->body_rows, w = L->list_w, top = L->body_top;
    int nreq = (int)t->requests->len;
    int head = nreq > 0 ? nreq + 1 : 0; /* "requests: N" and one row each */
    int n = head + (int)t->convs->len;
    int sel = -1;
    for (guint i = 0; i < t->convs->len; i++)
        if (t->sel && !strcmp(((tui_conv *)t->convs->pdata[i])->conv, t->sel))
            sel = head + (int)i;
    if (sel >= 0 && sel < t->list_top)
        t->list_top = sel;
    if (sel >= 0 && sel >= t->list_top + rows)
        t->list_top = sel - rows + 1;
    if (t->list_top > n - rows)
        t->list_top = n - rows;
    if (t->list_top < 0)
        t->list_top = 0;
    for (int r = 0; r < rows && t->list_top + r < n; r++) {
        int i = t->list_top + r, y = top + r;
        char buf[16], num[16];
        if (i < head) {
            if (i == 0) {
                snprintf(num, sizeof num, "requests: %d", nreq);
                put(t, y, 0, w, num, ST_UNREAD);
            } else {
                tui_req *q = t->requests->pdata[i - 1];
                put(t, y, put(t, y, 0, w, "? ", ST_UNREAD), w - 2, el_tui_name(t, q->peer, buf), ST_TEXT);
            }
            continue;
        }
        tui_conv *c = t->convs->pdata[i - head];
        int selected = i == sel, st;
        if (selected)
            fill(t, y, 0, w, ST_SEL);
        const char *mark = presence_mark(t, c, &st);
        int x = put(t, y, 0, w, mark, selected ? ST_SEL : st);
        x += put(t, y, x, w - x, " ", selected ? ST_SEL : ST_TEXT);
        int uw = 0;
        if (c->unread > 0) {
            snprintf(num, sizeof num, " %d", c->unread);
            uw = text_width(t, num);
            put(t, y, w - uw > x ? w - uw : x, uw, num, selected ? ST_SEL : ST_UNREAD);
        }
        put(t, y, x, w - x - uw, el_tui_conv_title(t, c, buf),
            selected ? ST_SEL : c->left ? ST_DIM : c->unread ? ST_UNREAD : ST_TEXT);
    }
    /* a real character, not the ACS line set: it survives copy and capture */
    for (int r = 0; r < rows; r++)
        put(t, top + r, w, 1, t->utf8 ? "│" : "|", ST_DIM);
}

static void draw_pane(el_tui *t, const layout *L)
{
    int rows = L->msg_rows, w = L->pane_w;
    if (rows <= 0 || w <= 0)
        return;
    GArray *lines = t->overlay ? overlay_lines(t, w) : conversation_lines(t, w);
    int total = (int)lines->len;
    int first;
    if (t->overlay) {
        if (t->overlay->scroll > total - rows)
            t->overlay->scroll = total - rows > 0 ? total - rows : 0;
        first = t->overlay->scroll;
    } else {
        int max_scroll = total - rows > 0 ? total - rows : 0;
        if (t->scroll > max_scroll)
            t->scroll = max_scroll;
        first = total - rows - t->scroll;
        if (first < 0)
            first = 0;
        t->scroll_at_top = first == 0;
    }
    /* a conversation sits at the bottom, like every messenger's */
    int y = L->body_top;
    if (!t->overlay && total < rows)
        y += rows - total;
    for (int i = first; i < total && y < L->body_top + rows; i++, y++)
        draw_vline(t, &g_array_index(lines, tui_line, i), y, L->pane_x, w);
    if (!t->overlay && t->scroll > 0) {
        fill(t, L->body_top + rows - 1, L->pane_x, w, ST_TEXT);
        put(t, L->body_top + rows - 1, L->pane_x, w, "-- more below: PageDown --", ST_UNREAD);
    }
    if (!t->overlay && t->loading_older) {
        fill(t, L->body_top, L->pane_x, w, ST_TEXT);
        put(t, L->body_top, L->pane_x, w, "-- loading older messages --", ST_UNREAD);
    }
    g_array_free(lines, TRUE);
}

static void draw_typing(el_tui *t, const layout *L)
{
    tui_conv *c = el_tui_conv(t, t->sel, 0);
    if (L->typing < 0 || !c || g_hash_table_size(c->typing) == 0 || t->overlay)
        return;
    GString *s = g_string_new(NULL);
    GHashTableIter it;
    gpointer k;
    guint n = g_hash_table_size(c->typing), i = 0;
    g_hash_table_iter_init(&it, c->typing);
    while (n <= 3 && g_hash_table_iter_next(&it, &k, NULL)) {
        char buf[16];
        g_string_append_printf(s, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ",
                               el_tui_name(t, k, buf));
        i++;
    }
    if (n > 3)
        g_string_append(s, "several people");
    g_string_append(s, n == 1 ? " is typing" : " are typing");
    g_string_append(s, t->utf8 ? "…" : "...");
    put(t, L->typing, L->pane_x, L->pane_w, s->str, ST_DIM);
    g_string_free(s, TRUE);
}

static void draw_status(el_tui *t, const layout *L)
{
    if (L->status < 0)
        return;
    fill(t, L->status, 0, COLS, ST_BAR);
    GString *s = g_string_new(" ");
    char id[9] = "";
    if (t->me_id)
        g_strlcpy(id, t->me_id, sizeof id);
    g_string_append_printf(s, "%s (%s)  %s", t->me_name && *t->me_name ? t->me_name : "me", id,
                           t->signal ? t->signal : "connecting");
    tui_conv *c = el_tui_conv(t, t->sel, 0);
    if (c) {
        char buf[16];
        g_string_append_printf(s, "  |  %s", el_tui_conv_title(t, c, buf));
        if (!c->group && c->online >= 0)
            g_string_append(s, c->online ? " online" : " offline");
        if (!c->group && c->link)
            g_string_append_printf(s, ", link %s", c->link);
        if (c->group && c->left)
            g_string_append(s, " (left)");
    }
    put(t, L->status, 0, COLS, s->str, ST_BAR);
    g_string_free(s, TRUE);
}

static void draw_notice(el_tui *t, const layout *L)
{
    if (L->notice < 0 || !t->notice[0])
        return;
    char *valid = g_utf8_make_valid(t->notice, -1);
    int x = t->notice_error ? put(t, L->notice, 0, COLS, "error: ", ST_ERROR) : 0;
    put(t, L->notice, x, COLS - x, valid, t->notice_error ? ST_ERROR : ST_DIM);
    g_free(valid);
}

/* The input line scrolls sideways to keep the cursor in view. */
static void draw_input(el_tui *t, const layout *L)
{
    const char *prompt = t->utf8 ? "› " : "> ";
    int px = put(t, L->input, 0, COLS, prompt, ST_ME);
    int avail = COLS - px;
    const gunichar *ch = el_tui_edit_chars(t->edit);
    size_t len = el_tui_edit_len(t->edit), cur = el_tui_edit_cursor(t->edit);
    if (avail <= 0) {
        move(L->input, COLS - 1);
        return;
    }
    if (t->edit_first > cur)
        t->edit_first = cur;
    for (;;) {
        int wsum = 0, cw;
        for (size_t i = t->edit_first; i < cur; i++) {
            cell_char(t, ch[i], &cw);
            wsum += cw;
        }
        if (wsum < avail || t->edit_first >= cur)
            break;
        t->edit_first++;
    }
    char *text = g_ucs4_to_utf8(ch + t->edit_first, (glong)(len - t->edit_first), NULL, NULL, NULL);
    char *upto = g_ucs4_to_utf8(ch + t->edit_first, (glong)(cur - t->edit_first), NULL, NULL, NULL);
    put(t, L->input, px, avail, text ? text : "", ST_TEXT);
    int cx = px + text_width(t, upto);
    move(L->input, cx < COLS ? cx : COLS - 1);
    g_free(text);
    g_free(upto);
}

void el_tui_draw(el_tui *t)
{
    if (!t->screen)
        return;
    erase();
    if (LINES < 1 || COLS < 1) {
        refresh();
        return;
    }
    layout L = compute_layout();
    draw_status(t, &L);
    if (L.body_rows > 0) {
        if (L.list_w)
            draw_list(t, &L);
        draw_pane(t, &L);
        draw_typing(t, &L);
    }
    draw_notice(t, &L);
    draw_input(t, &L); /* last: it leaves the cursor in the input line */
    refresh();
}
