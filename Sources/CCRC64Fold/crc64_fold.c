// CRC-64/Jones (reflected polynomial 0x95ac9329ac4bc9b5) with PCLMULQDQ: folding (four 128-bit lanes, then
// one), the tail by byte shuffles, Barrett reduction of the last lane.
//
// In the reflected representation a 16-byte block loaded little-endian holds the message polynomial
// with its first bytes in the low 64 bits. Folding a lane forward by D bits multiplies its low half by
// x^(D+63) mod P and its high half by x^(D-1) mod P (bit-reflected; the -1 absorbs the one-bit shift
// of a carry-less product of reflected operands). The constants below are those residues for D = 512
// (four lanes of 16 bytes) and D = 128 (one lane); they were derived, and the scheme checked against a
// bitwise CRC, with a short script, and CRC64Tests checks this code against the table implementation.
#include "crc64_fold.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define K512_LO 0xaf86efb16d9ab4fbULL /* x^575 mod P, reflected */
#define K512_HI 0xf49784a634f014e4ULL /* x^511 mod P, reflected */
#define K128_LO 0xd9d7be7d505da32cULL /* x^191 mod P, reflected */
#define K128_HI 0x381d0015c96f4444ULL /* x^127 mod P, reflected */
#define K2048_LO 0x9a8908341a6d6d52ULL /* x^2111 mod P, reflected */
#define K2048_HI 0x9471a5389095fe44ULL /* x^2047 mod P, reflected */
/* Barrett reduction of a 128-bit lane Y (Y ≡ the message times x^64) to the CRC: with Y = A·x^64 + B,
 * Y mod P = low64(q·P) + B where q = floor(A·mu / x^64) and mu = floor(x^128 / P). In reflected form
 * the low half of the lane is A: t1 = A·MU, t2 = t1.lo·POLY, and the CRC is the high half of
 * t2 ^ Y ^ (t1 << 64). Derived and checked like the folding constants. */
#define MU   0x3e6cfa329aef9f77ULL /* floor(x^128 / P), reflected (65 bits, the top one implied) */
#define POLY 0x2b5926535897936bULL /* P / x, reflected (its x^64 term handled by the t1 << 64) */

__attribute__((target("pclmul,sse2")))
static inline __m128i fold(__m128i x, __m128i k) {
    // k holds (lo constant, hi constant): x.lo * k.lo ^ x.hi * k.hi.
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

// Folds 64 bytes and more (`lanes` holds the first 64 bytes, or the lanes another fold left after `i`
// bytes) down to one lane, to the last whole 16 bytes; returns the bytes folded.
__attribute__((target("pclmul,sse2")))
static size_t fold_pclmul(const __m128i lanes[4], size_t i, const uint8_t *p, size_t n, uint8_t out[16]) {
    const __m128i k512 = _mm_set_epi64x((long long)K512_HI, (long long)K512_LO);
    const __m128i k128 = _mm_set_epi64x((long long)K128_HI, (long long)K128_LO);
    __m128i x0 = lanes[0], x1 = lanes[1], x2 = lanes[2], x3 = lanes[3];
    for (; n - i >= 64; i += 64) {
        x0 = _mm_xor_si128(fold(x0, k512), _mm_loadu_si128((const __m128i *)(p + i)));
        x1 = _mm_xor_si128(fold(x1, k512), _mm_loadu_si128((const __m128i *)(p + i + 16)));
        x2 = _mm_xor_si128(fold(x2, k512), _mm_loadu_si128((const __m128i *)(p + i + 32)));
        x3 = _mm_xor_si128(fold(x3, k512), _mm_loadu_si128((const __m128i *)(p + i + 48)));
    }
    __m128i x = _mm_xor_si128(fold(x0, k128), x1);
    x = _mm_xor_si128(fold(x, k128), x2);
    x = _mm_xor_si128(fold(x, k128), x3);
    for (; n - i >= 16; i += 16) {
        x = _mm_xor_si128(fold(x, k128), _mm_loadu_si128((const __m128i *)(p + i)));
    }
    _mm_storeu_si128((__m128i *)out, x);
    return i;
}

// The same as fold_pclmul with 512-bit registers (VPCLMULQDQ), four 128-bit lanes each, for inputs of 256
// bytes and more: sixteen lanes fold by 2048 bits per step (a quarter of the instructions), then the four
// registers fold onto the last by 512 bits, which leaves the four lanes that fold_pclmul's loop leaves.
__attribute__((target("avx512f,vpclmulqdq,pclmul,sse2")))
static size_t fold_vpclmul(uint64_t crc, const uint8_t *p, size_t n, __m128i lanes[4]) {
    const __m512i k2048 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K2048_HI, (long long)K2048_LO));
    const __m512i k512 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K512_HI, (long long)K512_LO));
    __m512i z0 = _mm512_loadu_si512((const void *)p);
    __m512i z1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i z2 = _mm512_loadu_si512((const void *)(p + 128));
    __m512i z3 = _mm512_loadu_si512((const void *)(p + 192));
    z0 = _mm512_xor_si512(z0, _mm512_zextsi128_si512(_mm_set_epi64x(0, (long long)crc)));
#define FOLD512(z, k) _mm512_xor_si512(_mm512_clmulepi64_epi128((z), (k), 0x00), _mm512_clmulepi64_epi128((z), (k), 0x11))
    size_t i = 256;
    for (; n - i >= 256; i += 256) {
        z0 = _mm512_xor_si512(FOLD512(z0, k2048), _mm512_loadu_si512((const void *)(p + i)));
        z1 = _mm512_xor_si512(FOLD512(z1, k2048), _mm512_loadu_si512((const void *)(p + i + 64)));
        z2 = _mm512_xor_si512(FOLD512(z2, k2048), _mm512_loadu_si512((const void *)(p + i + 128)));
        z3 = _mm512_xor_si512(FOLD512(z3, k2048), _mm512_loadu_si512((const void *)(p + i + 192)));
    }
    z1 = _mm512_xor_si512(FOLD512(z0, k512), z1);
    z2 = _mm512_xor_si512(FOLD512(z1, k512), z2);
    z3 = _mm512_xor_si512(FOLD512(z2, k512), z3);
#undef FOLD512
    lanes[0] = _mm512_extracti32x4_epi32(z3, 0);
    lanes[1] = _mm512_extracti32x4_epi32(z3, 1);
    lanes[2] = _mm512_extracti32x4_epi32(z3, 2);
    lanes[3] = _mm512_extracti32x4_epi32(z3, 3);
    return i;
}

// The CRC of a lane `x` that holds a whole message (the start value already xored in): folded by 64
// bits onto its high half (x^127 mod P times the low half), then Barrett.
__attribute__((target("pclmul,sse2")))
static inline uint64_t reduce(__m128i x) {
    const __m128i k = _mm_set_epi64x((long long)POLY, (long long)MU);
    __m128i y = _mm_xor_si128(_mm_clmulepi64_si128(x, _mm_set_epi64x(0, (long long)K128_HI), 0x00), _mm_srli_si128(x, 8));
    __m128i t1 = _mm_clmulepi64_si128(y, k, 0x00);
    __m128i t2 = _mm_clmulepi64_si128(t1, k, 0x10);
    __m128i r = _mm_xor_si128(_mm_xor_si128(t2, y), _mm_slli_si128(t1, 8));
    return (uint64_t)_mm_extract_epi64(r, 1);
}

// pshufb masks: 16 "zero" bytes then 0..15, and the reverse; 16 clear bytes then 16 set ones.
static const uint8_t shift_masks[48] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
};
static const uint8_t tail_masks[32] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

// The whole CRC of 16 bytes or more, no tables: whole blocks folded one lane at a time (four lanes
// from 64 bytes on), then the last r < 16 bytes. The message from the lane on is X (16 bytes) then
// T (r bytes), i.e. X's first r bytes, then a 16-byte lane of X's other 16 - r bytes followed by T
// (the last 16 bytes of the input, of which the first 16 - r are X's and masked off). The first part,
// alone in a lane (shifted up, zeros before it change nothing), is folded by 128 bits onto the second.
__attribute__((target("pclmul,ssse3,sse4.1")))
static uint64_t crc_pclmul(uint64_t crc, const uint8_t *p, size_t n, int wide) {
    const __m128i k128 = _mm_set_epi64x((long long)K128_HI, (long long)K128_LO);
    __m128i x;
    size_t i;
    if (n >= 64) {
        __m128i lanes[4];
        if (n >= 256 && wide) {
            i = fold_vpclmul(crc, p, n, lanes);
        } else {
            for (int j = 0; j < 4; j++) lanes[j] = _mm_loadu_si128((const __m128i *)(p + 16 * j));
            lanes[0] = _mm_xor_si128(lanes[0], _mm_set_epi64x(0, (long long)crc));
            i = 64;
        }
        uint8_t folded[16];
        i = fold_pclmul(lanes, i, p, n, folded);
        x = _mm_loadu_si128((const __m128i *)folded);
    } else {
        x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set_epi64x(0, (long long)crc));
        i = 16;
        for (; n - i >= 16; i += 16) {
            x = _mm_xor_si128(fold(x, k128), _mm_loadu_si128((const __m128i *)(p + i)));
        }
    }
    size_t r = n - i;
    if (r > 0) {
        __m128i head = _mm_shuffle_epi8(x, _mm_loadu_si128((const __m128i *)(shift_masks + r)));       // X[0..<r] at the top
        __m128i rest = _mm_shuffle_epi8(x, _mm_loadu_si128((const __m128i *)(shift_masks + 16 + r)));  // X[r...] at the bottom
        __m128i tail = _mm_and_si128(_mm_loadu_si128((const __m128i *)(p + n - 16)),
                                     _mm_loadu_si128((const __m128i *)(tail_masks + r)));             // T at the top
        x = _mm_xor_si128(fold(head, k128), _mm_or_si128(rest, tail));
    }
    return reduce(x);
}

int rdb_crc64_pclmul(uint64_t crc, const void *bytes, size_t count, int wide, uint64_t *result) {
    if (count < 16 || !__builtin_cpu_supports("pclmul") || !__builtin_cpu_supports("sse4.1")) return 0;  // (SSE4.1 implies SSSE3)
    wide = wide && rdb_crc64_has_wide();
    *result = crc_pclmul(crc, (const uint8_t *)bytes, count, wide);
    return 1;
}

int rdb_crc64_has_wide(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}


#else

int rdb_crc64_pclmul(uint64_t crc, const void *bytes, size_t count, int wide, uint64_t *result) {
    (void)crc; (void)bytes; (void)count; (void)wide; (void)result;
    return 0;
}

int rdb_crc64_has_wide(void) { return 0; }


#endif
