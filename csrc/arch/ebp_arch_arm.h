/*
 * ebp_arch_arm.h - the Arm kernels (ARMv7-M, ARMv7E-M with DSP, ARMv6-M) beside the portable ones
 * (csrc/arch/ebp_arch.h says how they are chosen). Included by csrc/core/ebp_internal.h; every function here
 * is static inline and exists only when its architecture is selected. Each names the plain rule it
 * reproduces; tests/test_kernels.py trains random configurations with them on the emulated boards and
 * compares every integer with the host's portable kernels.
 */
#ifndef EBP_ARCH_ARM_H
#define EBP_ARCH_ARM_H

#include <stdint.h>

#include "ebp_arch.h"

typedef struct __attribute__((packed, may_alias)) { uint32_t v; } ebp_arm_u32_t; /* an unaligned word */

#if EBP_ARMV7M

/* floor(v / 2^s) for 0 <= s <= 31: ASR, the arithmetic shift of the instruction set (in C, >> of a negative
 * value is implementation-defined, which the portable core avoids) */
static inline int32_t ebp_arm_asr(int32_t v, int s) {
    int32_t r;
    __asm__("asr %0, %1, %2" : "=r"(r) : "r"(v), "r"(s));
    return r;
}

#endif

#if EBP_ARMV7M

/* ebp_sat16 of an int32: SSAT #16 */
static inline int32_t ebp_arm_sat16(int32_t v) {
    int32_t r;
    __asm__("ssat %0, #16, %1" : "=r"(r) : "r"(v) : "cc");
    return r;
}

#endif

#if EBP_ARM_DSP
/*
 * Two weights of ebp_arm_row_sr at once (ARMv7E-M DSP), the same rule: per weight one draw r, then
 * q = floor((dl a + (r >> (32 - S))) / 2^S) by SMLABB/SMLABT (dl times the low/high input of a pair, plus the
 * draw's top bits) and ASR, the two q packed by PKHBT, and w = ebp_sat16(w - q) for both halves by QSUB16.
 * Needs every q in int16: |dl| < 2^S gives |q| <= ((2^S - 1) 2^15 + 2^S - 1) / 2^S < 2^15 (the caller checks).
 */
static inline void ebp_arm_row_sr_dsp(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S, uint32_t *rng) {
    const int rs = 32 - S;
    uint32_t x = *rng;
    int16_t *end2 = w + (n & ~1u);
    for (; w != end2; w += 2, a += 2) {
        const uint32_t ap = ((const ebp_arm_u32_t *)(const void *)a)->v;
        uint32_t wp = ((const ebp_arm_u32_t *)(const void *)w)->v, u0, u1;
        int32_t q0, q1;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        u0 = x >> rs;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        u1 = x >> rs;
        __asm__("smlabb %0, %1, %2, %3" : "=r"(q0) : "r"(dl), "r"(ap), "r"(u0));
        __asm__("smlabt %0, %1, %2, %3" : "=r"(q1) : "r"(dl), "r"(ap), "r"(u1));
        q0 = ebp_arm_asr(q0, S);
        q1 = ebp_arm_asr(q1, S);
        __asm__("pkhbt %0, %0, %1, lsl #16" : "+r"(q0) : "r"(q1));
        __asm__("qsub16 %0, %0, %1" : "+r"(wp) : "r"(q0));
        ((ebp_arm_u32_t *)(void *)w)->v = wp;
    }
    if (n & 1u) {
        int32_t q;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        q = ebp_arm_asr(dl * *a + (int32_t)(x >> rs), S);
        *w = (int16_t)ebp_arm_sat16(*w - q);
    }
    *rng = x;
}
#endif

#if EBP_ARMV7M || EBP_ARMV6M
/*
 * One row of the online update with stochastic rounding, counters compiled out (EBP_STATS=0), any sign of
 * dl and of the inputs, 1 <= S <= 30. Reproduces, for i = 0..n-1 in order:
 *     w[i] = ebp_sat16(w[i] - ebp_rshift_sr32(dl * a[i], S, ebp_xorshift32(rng)))
 * as floor((dl a[i] + (r >> (32 - S))) / 2^S) by one multiply-accumulate and one arithmetic shift
 * (|dl a[i]| <= 2^30 and the draw < 2^S: no 32-bit wrap), saturated by SSAT (ARMv7-M), or on ARMv6-M by a
 * rare branch taken when sign-extending the low 16 bits changes the value.
 */
static inline void ebp_arm_row_sr(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S, uint32_t *rng) {
    const int rs = 32 - S;
    uint32_t x = *rng;
#if EBP_ARM_DSP
    if (dl < ((int32_t)1 << S) && dl > -((int32_t)1 << S)) { /* every q fits int16: two weights per step */
        ebp_arm_row_sr_dsp(w, a, n, dl, S, rng);
        return;
    }
#endif
#if EBP_ARMV7M
    const int16_t *end = a + n;
    do {
        int32_t q;
        x ^= x << 13; /* ebp_xorshift32, kept in a register */
        x ^= x >> 17;
        x ^= x << 5;
        q = ebp_arm_asr(dl * *a + (int32_t)(x >> rs), S);
        *w = (int16_t)ebp_arm_sat16(*w - q);
    } while (++w, ++a != end);
#else
    /* one index counting up to 0 from -n over both arrays (Thumb-1 has 8 low registers) */
    int32_t i = -(int32_t)n;
    w += n;
    a += n;
    do {
        int32_t nw;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        nw = w[i] - ((dl * a[i] + (int32_t)(x >> rs)) >> S); /* GCC: >> of a signed value is arithmetic (ASRS) */
        if (nw != (int16_t)nw) nw = nw < 0 ? INT16_MIN : INT16_MAX;
        w[i] = (int16_t)nw;
    } while (++i != 0);
#endif
    *rng = x;
}
#define EBP_HAVE_ARCH_ROW_SR 1
#endif

#if EBP_ARM_DSP
/*
 * acc + sum_i w[i] x[i] exactly, as the portable dot16: SMLALD adds two 16 x 16-bit products to a 64-bit sum
 * per instruction, on pairs loaded as one 32-bit word (unaligned loads are allowed on ARMv7-M).
 */
static inline int64_t ebp_arm_dot16(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
    const int16_t *end2 = w + (n & ~1u), *end = w + n;
    int64_t s = acc;
    for (; w != end2; w += 2, x += 2) {
        const uint32_t wp = ((const ebp_arm_u32_t *)(const void *)w)->v, xp = ((const ebp_arm_u32_t *)(const void *)x)->v;
        __asm__("smlald %Q0, %R0, %1, %2" : "+r"(s) : "r"(wp), "r"(xp));
    }
    if (w != end) s += (int32_t)*w * *x;
    return s;
}
#define EBP_HAVE_ARCH_DOT16 1
#endif

#endif /* EBP_ARCH_ARM_H */
