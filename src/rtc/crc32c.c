/* crc32c.c - CRC32c with SSE4.2's crc32 instruction, or usrsctp's
 * table-driven routine on CPUs without it. */
#include "rtc/crc32c.h"

#include <string.h>
#include <usrsctp.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EL_CRC32C_HW 1
#include <nmmintrin.h>

/* 8 bytes per instruction; the head and tail bytewise. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(const uint8_t *p, size_t len)
{
    uint64_t crc = 0xffffffffu;
    while (len && ((uintptr_t)p & 7)) {
        crc = _mm_crc32_u8((uint32_t)crc, *p++);
        len--;
    }
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        crc = _mm_crc32_u64(crc, w);
    }
    while (len--)
        crc = _mm_crc32_u8((uint32_t)crc, *p++);
    return ~(uint32_t)crc;
}
#endif

/* usrsctp_crc32c returns the checksum as SCTP stores it on this host
 * (complemented, byte-swapped on big-endian ones): undo the swap. */
static uint32_t crc32c_usrsctp(const void *data, size_t len)
{
    uint32_t v = usrsctp_crc32c((void *)data, len);
    uint8_t b[4];
    memcpy(b, &v, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint32_t el_crc32c(const void *data, size_t len)
{
#ifdef EL_CRC32C_HW
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_sse42(data, len);
#endif
    return crc32c_usrsctp(data, len);
}

void el_crc32c_sctp_set(uint8_t *pkt, size_t len)
{
    if (len < 12)
        return;
    memset(pkt + 8, 0, 4);
    uint32_t crc = el_crc32c(pkt, len);
    /* RFC 4960 Appendix B: least significant byte first */
    pkt[8] = (uint8_t)crc;
    pkt[9] = (uint8_t)(crc >> 8);
    pkt[10] = (uint8_t)(crc >> 16);
    pkt[11] = (uint8_t)(crc >> 24);
}
