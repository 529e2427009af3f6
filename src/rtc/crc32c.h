/* crc32c.h - CRC32c (Castagnoli), the checksum of SCTP packets (RFC 4960
 * Appendix B), with the SSE4.2 instruction where the CPU has it.
 *
 * usrsctp computes it in software, one table lookup per byte: for a bulk
 * transfer that was ~5 % of the sender's CPU. */
#ifndef EL_RTC_CRC32C_H
#define EL_RTC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC32c of `len` bytes (initial value ~0, final complement): the
 * standard value, 0xE3069283 for "123456789". */
uint32_t el_crc32c(const void *data, size_t len);

/* Sets the checksum field (bytes 8..11) of an SCTP packet of `len` >= 12
 * bytes; shorter buffers are left alone. */
void el_crc32c_sctp_set(uint8_t *pkt, size_t len);

#endif
