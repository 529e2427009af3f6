/* tui.c - placeholder until the ncurses interface lands (issue 5). */
#include "tui.h"

#include "base/err.h"

int el_tui_run(el_app *app, GMainContext *ctx, char *err, size_t errlen)
{
    (void)app;
    (void)ctx;
    el_seterr(err, errlen, EL_ERR_STATE, "the full-screen interface is not built yet: use listen");
    return EL_EXIT_SOFTWARE;
}
