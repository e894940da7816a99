#ifndef RDB_CRC64_FOLD_H
#define RDB_CRC64_FOLD_H

#include <stddef.h>
#include <stdint.h>

/// The whole CRC-64 of `count` bytes from `crc` with carry-less multiplication (folding, the tail by
/// byte shuffles, Barrett reduction): returns 1 and stores it in `result`, or 0 when `count` < 16 or the
/// CPU lacks PCLMULQDQ/SSSE3/SSE4.1 (nothing stored). With `wide` set, from 256 bytes on the bulk is folded
/// with 512-bit registers where the CPU has VPCLMULQDQ and AVX-512F (the same result, ~2-4x the speed).
int rdb_crc64_pclmul(uint64_t crc, const void *bytes, size_t count, int wide, uint64_t *result);

/// Whether `wide` folding runs on this CPU.
int rdb_crc64_has_wide(void);

#endif
