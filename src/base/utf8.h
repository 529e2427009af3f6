/* utf8.h - strict UTF-8 validation (RFC 3629).
 *
 * Why one place: the store (PostgreSQL refuses such text in a UTF8 database,
 * so both backends must accept exactly the same input), the history (the
 * terminal and the browser client would mangle it) and DCEP labels (RFC 8832
 * says UTF-8) all refuse the same things: overlong forms, UTF-16 surrogates
 * (U+D800..U+DFFF), code points above U+10FFFF, stray continuation bytes and
 * sequences cut short. U+0000 is valid UTF-8; callers that store C strings
 * check for it themselves. The JSON scanner (proto/json.c) validates inside
 * its string loop instead, one pass over the bytes. */
#ifndef EL_UTF8_H
#define EL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) is strict UTF-8 (n == 0 is). */
bool el_utf8_valid(const void *s, size_t n);

#endif
