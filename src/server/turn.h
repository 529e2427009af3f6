/* turn.h - short-lived TURN credentials in coturn's use-auth-secret scheme
 * (the "TURN REST API" draft): username = "<expiry unix s>:<peer id>",
 * credential = base64(HMAC-SHA1(secret, username)). coturn recomputes the
 * HMAC with the secret it shares with echolinkd and refuses expired ones. */
#ifndef EL_SERVER_TURN_H
#define EL_SERVER_TURN_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0, or -1 when a buffer is too small or the HMAC fails. */
int el_turn_credential(const char *secret, const char *peer_id, int64_t expiry_s, char *user,
                       size_t userlen, char *cred, size_t credlen);

#endif
