/* turn.c - see turn.h. */
#include "server/turn.h"

#include "base/enc.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

int el_turn_credential(const char *secret, const char *peer_id, int64_t expiry_s, char *user,
                       size_t userlen, char *cred, size_t credlen)
{
    int n = snprintf(user, userlen, "%lld:%s", (long long)expiry_s, peer_id);
    if (n < 0 || (size_t)n >= userlen)
        return -1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)user, (size_t)n, mac,
              &maclen))
        return -1;
    return el_b64_encode(mac, maclen, cred, credlen) < 0 ? -1 : 0;
}
