#ifndef RDB_CRC64_FOLD_H
#define RDB_CRC64_FOLD_H

#include <stddef.h>
#include <stdint.h>

/// Folds the bulk of `bytes` (CRC-64/Jones, reflected, as Redis uses it) with carry-less multiplication
/// (x86-64 PCLMULQDQ): starts from `crc`, consumes a multiple of 16 bytes (at least 32) and writes 16
/// bytes to `out` whose CRC-64 from 0 equals the CRC-64 of the consumed bytes from `crc`; the caller
/// checksums `out` and then the remaining bytes with its table code. Returns the number of bytes
/// consumed: 0 when `count` < 32 or the CPU has no PCLMULQDQ (then nothing is written).
size_t rdb_crc64_fold(uint64_t crc, const void *bytes, size_t count, uint8_t out[16]);

/// The whole CRC-64 of `count` bytes from `crc` with carry-less multiplication (folding, the tail by
/// byte shuffles, Barrett reduction): returns 1 and stores it in `result`, or 0 when `count` < 16 or the
/// CPU lacks PCLMULQDQ/SSSE3/SSE4.1 (nothing stored).
int rdb_crc64_pclmul(uint64_t crc, const void *bytes, size_t count, uint64_t *result);

#endif
