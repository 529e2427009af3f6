/* signal.h - the signaling client of libecholink (src/client/signal.c).
 *
 * Its whole API is public: include/echolink/el_signal.h documents it (the
 * protocol, states, reconnection, acks, bounds, threads and lifetime). This
 * header only adds what the library's own callers use with it: the full
 * identity API (crypto/identity.h) and the error codes (base/err.h) that
 * el_signal_emit and el_signal_start return. */
#ifndef EL_CLIENT_SIGNAL_H
#define EL_CLIENT_SIGNAL_H

#include <echolink/el_signal.h>

#include "base/err.h"
#include "crypto/identity.h"

#endif
