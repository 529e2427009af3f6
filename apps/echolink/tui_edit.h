/* tui_edit.h - the input line of `echolink chat`: a single-line editor on
 * Unicode code points, with no curses in it (the view draws it).
 *
 * The line is kept as code points, so that the cursor moves by characters
 * and never splits a UTF-8 sequence; the text is handed out as UTF-8.
 * Limited to EL_TUI_EDIT_MAX characters: a paste beyond it is cut. */
#ifndef EL_TUI_EDIT_H
#define EL_TUI_EDIT_H

#include <glib.h>
#include <stddef.h>

#define EL_TUI_EDIT_MAX 4096

typedef struct el_tui_edit el_tui_edit;

typedef enum {
    EL_TUI_EDIT_LEFT,
    EL_TUI_EDIT_RIGHT,
    EL_TUI_EDIT_HOME,
    EL_TUI_EDIT_END,
    EL_TUI_EDIT_BACKSPACE,  /* the character before the cursor */
    EL_TUI_EDIT_DELETE,     /* the character under the cursor */
    EL_TUI_EDIT_KILL_START, /* Ctrl-U: from the start of the line to the cursor */
    EL_TUI_EDIT_KILL_END,   /* Ctrl-K: from the cursor to the end */
    EL_TUI_EDIT_KILL_WORD,  /* Ctrl-W: the word before the cursor */
} el_tui_edit_op;

el_tui_edit *el_tui_edit_new(void);
void el_tui_edit_free(el_tui_edit *e);

/* Inserts c at the cursor. Returns 0, or -1 when the line is full or c is
 * a control character (it is not inserted). */
int el_tui_edit_insert(el_tui_edit *e, gunichar c);
void el_tui_edit_apply(el_tui_edit *e, el_tui_edit_op op);
/* Replaces the line (UTF-8; invalid sequences become U+FFFD), cursor at
 * the end. NULL empties it. */
void el_tui_edit_set(el_tui_edit *e, const char *utf8);

/* The line as UTF-8; the caller frees it with g_free. */
char *el_tui_edit_text(const el_tui_edit *e);
size_t el_tui_edit_len(const el_tui_edit *e);
size_t el_tui_edit_cursor(const el_tui_edit *e);
/* The characters (el_tui_edit_len of them), valid until the next change. */
const gunichar *el_tui_edit_chars(const el_tui_edit *e);

#endif
