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


#if EBP_ARMV7M
/*
 * The ARMv7-M row with the statistics (EBP_STATS=1), its bias included, in assembly (Cortex-M3, M4, M7: a
 * two-weights-per-step DSP variant counting with CLZ and QSUB16/SSUB16 measured slower on the M4, 7,870 against
 * 7,754 instructions per 8-16-2 step): GCC's code for the portable row spends 17 instructions a weight and more
 * per row. The same rule as ebp_arm_row_sr, q = floor((dl a[i] + (r >> (32 - S))) / 2^S) by MLA and ASR, then
 * for the bias *b the next draw with the product dlo = dl 2^in_frac; the zero updates counted by CLZ (32 exactly
 * for q = 0), subtracted from *nz (the caller adds n + 1 first); each new parameter stored as its low 16 bits,
 * and SSAT #16 of it sets the sticky Q flag (cleared first) iff some parameter left int16: the result is then
 * non-zero and the caller repairs the row (fix_row_sr_any). Two weights a loop step (an odd n enters at the
 * second), 14 instructions a weight. n >= 1, 1 <= S <= 30.
 */
static inline uint32_t ebp_arm_row_sr_wrap(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S,
                                           uint32_t *rng, uint32_t *nz, int16_t *b, int32_t dlo) {
    const int16_t *end = a + n;
    uint32_t x = *rng, nzr = *nz, t0 = n, t1;
    const int rs = 32 - S;
    __asm__ volatile("movs %[t1], #0\n\t"
                     "msr APSR_nzcvq, %[t1]\n\t" /* Q = 0 */
                     "tst %[t0], #1\n\t"
                     "bne 2f\n\t"
                     "1:\n\t"
                     "ldrsh %[t0], [%[a]], #2\n\t"
                     "eor %[x], %[x], %[x], lsl #13\n\t"
                     "eor %[x], %[x], %[x], lsr #17\n\t"
                     "eor %[x], %[x], %[x], lsl #5\n\t"
                     "lsr %[t1], %[x], %[rs]\n\t"
                     "mla %[t0], %[dl], %[t0], %[t1]\n\t"
                     "asr %[t0], %[t0], %[S]\n\t"
                     "clz %[t1], %[t0]\n\t"
                     "sub %[nz], %[nz], %[t1], lsr #5\n\t"
                     "ldrsh %[t1], [%[w]]\n\t"
                     "sub %[t1], %[t1], %[t0]\n\t"
                     "strh %[t1], [%[w]], #2\n\t"
                     "ssat %[t1], #16, %[t1]\n\t"
                     "2:\n\t"
                     "ldrsh %[t0], [%[a]], #2\n\t"
                     "eor %[x], %[x], %[x], lsl #13\n\t"
                     "eor %[x], %[x], %[x], lsr #17\n\t"
                     "eor %[x], %[x], %[x], lsl #5\n\t"
                     "lsr %[t1], %[x], %[rs]\n\t"
                     "mla %[t0], %[dl], %[t0], %[t1]\n\t"
                     "asr %[t0], %[t0], %[S]\n\t"
                     "clz %[t1], %[t0]\n\t"
                     "sub %[nz], %[nz], %[t1], lsr #5\n\t"
                     "ldrsh %[t1], [%[w]]\n\t"
                     "sub %[t1], %[t1], %[t0]\n\t"
                     "strh %[t1], [%[w]], #2\n\t"
                     "ssat %[t1], #16, %[t1]\n\t"
                     "cmp %[a], %[end]\n\t"
                     "bne 1b\n\t"
                     "eor %[x], %[x], %[x], lsl #13\n\t" /* the bias */
                     "eor %[x], %[x], %[x], lsr #17\n\t"
                     "eor %[x], %[x], %[x], lsl #5\n\t"
                     "lsr %[t1], %[x], %[rs]\n\t"
                     "add %[t0], %[dlo], %[t1]\n\t"
                     "asr %[t0], %[t0], %[S]\n\t"
                     "clz %[t1], %[t0]\n\t"
                     "sub %[nz], %[nz], %[t1], lsr #5\n\t"
                     "ldrsh %[t1], [%[b]]\n\t"
                     "sub %[t1], %[t1], %[t0]\n\t"
                     "strh %[t1], [%[b]]\n\t"
                     "ssat %[t1], #16, %[t1]\n\t"
                     "mrs %[t0], APSR\n\t"
                     "and %[t0], %[t0], #0x08000000\n\t" /* Q, bit 27 */
                     : [x] "+r"(x), [nz] "+r"(nzr), [w] "+r"(w), [a] "+r"(a), [t0] "+&r"(t0), [t1] "=&r"(t1)
                     : [end] "r"(end), [dl] "r"(dl), [S] "r"(S), [rs] "r"(rs), [b] "r"(b), [dlo] "r"(dlo)
                     : "cc", "memory");
    *rng = x;
    *nz = nzr;
    return t0;
}
#define EBP_HAVE_ARCH_ROW_SR_WRAP 1
#endif

#if EBP_ARMV7M
/*
 * One row of the online update with stochastic rounding, counters compiled out (EBP_STATS=0), any sign of
 * dl and of the inputs, 1 <= S <= 30. Reproduces, for i = 0..n-1 in order:
 *     w[i] = ebp_sat16(w[i] - ebp_rshift_sr32(dl * a[i], S, ebp_xorshift32(rng)))
 * as floor((dl a[i] + (r >> (32 - S))) / 2^S) by one multiply-accumulate and one arithmetic shift
 * (|dl a[i]| <= 2^30 and the draw < 2^S: no 32-bit wrap), saturated by SSAT; two weights per step with the
 * DSP extension (ebp_arm_row_sr_dsp) when every q fits int16.
 */
static inline void ebp_arm_row_sr(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S, uint32_t *rng) {
    const int rs = 32 - S;
    const int16_t *end = a + n;
    uint32_t x = *rng;
#if EBP_ARM_DSP
    if (dl < ((int32_t)1 << S) && dl > -((int32_t)1 << S)) {
        ebp_arm_row_sr_dsp(w, a, n, dl, S, rng);
        return;
    }
#endif
    do {
        int32_t q;
        x ^= x << 13; /* ebp_xorshift32, kept in a register */
        x ^= x >> 17;
        x ^= x << 5;
        q = ebp_arm_asr(dl * *a + (int32_t)(x >> rs), S);
        *w = (int16_t)ebp_arm_sat16(*w - q);
    } while (++w, ++a != end);
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

#if EBP_ARMV6M
/*
 * ARMv6-M (Cortex-M0/M0+) rows of the stochastic online update in assembly: GCC's Thumb-1 code for the portable
 * rows spills its 10 live values out of the 8 low registers. Both reproduce, for i = 0..n-1 in order,
 *     q = ebp_rshift_sr32(dl * a[i], S, ebp_xorshift32(rng)); w[i] = ebp_sat16(w[i] - q)
 * as q = floor((dl a[i] + (r >> (32 - S))) / 2^S) by MULS, ADDS and ASRS (|dl a[i]| <= 2^30, the draw < 2^S:
 * no wrap), with one index counting up to 0 over both arrays and a saturation branch taken only when
 * sign-extending the new weight's low 16 bits changes it. Seven low registers (r7 may be the frame pointer), the
 * count in a high one (-Os leaves GCC only r12), dl, S and the clips in memory (one LDR, as a MOV would be). ebp_arm_row_sr_count (EBP_STATS=1) also adds the
 * number of q != 0 to *nz and returns the number of weights that clipped. n >= 1, 1 <= S <= 30.
 * GCC assembles Thumb-1 inline assembly in divided syntax: each block switches to unified syntax and back.
 */
#define EBP_ARM_SR_ROW_HEAD                                                                                  \
    ".syntax unified\n"                                                                                       \
    "1:\n\t"                                                                                                  \
    "lsls %[t1], %[x], #13\n\t"                                                                              \
    "eors %[x], %[x], %[t1]\n\t"                                                                             \
    "lsrs %[t1], %[x], #17\n\t"                                                                              \
    "eors %[x], %[x], %[t1]\n\t"                                                                             \
    "lsls %[t1], %[x], #5\n\t"                                                                               \
    "eors %[x], %[x], %[t1]\n\t"                                                                             \
    "ldrsh %[t2], [%[ab], %[i]]\n\t"                                                                         \
    "ldr %[t1], %[dl]\n\t"                                                                                   \
    "muls %[t2], %[t1], %[t2]\n\t"                                                                           \
    "movs %[t1], %[x]\n\t"                                                                                   \
    "lsrs %[t1], %[t1], %[rs]\n\t"                                                                           \
    "adds %[t2], %[t2], %[t1]\n\t"                                                                           \
    "ldr %[t1], %[S]\n\t"                                                                                    \
    "asrs %[t2], %[t2], %[t1]\n\t"

#define EBP_ARM_SR_ROW_TAIL                                                                                  \
    "ldrsh %[t1], [%[wb], %[i]]\n\t"                                                                         \
    "subs %[t1], %[t1], %[t2]\n\t"                                                                           \
    "sxth %[t2], %[t1]\n\t"                                                                                  \
    "cmp %[t2], %[t1]\n\t"                                                                                   \
    "bne 3f\n"                                                                                                \
    "5:\n\t"                                                                                                  \
    "strh %[t1], [%[wb], %[i]]\n\t"                                                                          \
    "adds %[i], %[i], #2\n\t"                                                                                \
    "bne 1b\n\t"                                                                                             \
    "b 6f\n"                                                                                                  \
    "3:\n\t" /* clipped: +-32767 or -32768 by the sign of the new weight */                                  \
    EBP_ARM_SR_CLIP                                                                                          \
    "movs %[t2], #1\n\t"                                                                                     \
    "lsls %[t2], %[t2], #15\n\t"                                                                             \
    "subs %[t2], %[t2], #1\n\t"                                                                              \
    "cmp %[t1], #0\n\t"                                                                                      \
    "bge 4f\n\t"                                                                                             \
    "mvns %[t2], %[t2]\n"                                                                                    \
    "4:\n\t"                                                                                                  \
    "movs %[t1], %[t2]\n\t"                                                                                  \
    "b 5b\n"                                                                                                  \
    "6:\n\t"                                                                                                  \
    ".syntax divided\n"

static inline void ebp_arm_row_sr(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S, uint32_t *rng) {
    int32_t i = -2 * (int32_t)n, t1, t2;
    uint32_t x = *rng;
    const int rs = 32 - S;
#define EBP_ARM_SR_CLIP ""
    __asm__ volatile(EBP_ARM_SR_ROW_HEAD EBP_ARM_SR_ROW_TAIL
                     : [x] "+l"(x), [i] "+l"(i), [t1] "=&l"(t1), [t2] "=&l"(t2)
                     : [wb] "l"(w + n), [ab] "l"(a + n), [S] "m"(S), [rs] "l"(rs), [dl] "m"(dl)
                     : "cc", "memory");
#undef EBP_ARM_SR_CLIP
    *rng = x;
}
#define EBP_HAVE_ARCH_ROW_SR 1

static inline uint32_t ebp_arm_row_sr_count(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S,
                                            uint32_t *rng, uint32_t *nz) {
    int32_t i = -2 * (int32_t)n, t1, t2;
    uint32_t x = *rng, nzr = 0u - *nz, clips = 0; /* nzr counts down: minus the count */
    const int rs = 32 - S;
#define EBP_ARM_SR_CLIP                                                                                      \
    "ldr %[t2], %[clips]\n\t"                                                                                \
    "adds %[t2], %[t2], #1\n\t"                                                                              \
    "str %[t2], %[clips]\n\t"
    __asm__ volatile(EBP_ARM_SR_ROW_HEAD
                     "negs %[t1], %[t2]\n\t" /* C = (q == 0) */
                     "sbcs %[t1], %[t1]\n\t" /* -1 for a non-zero update, else 0 */
                     "add %[nz], %[t1]\n\t" EBP_ARM_SR_ROW_TAIL
                     : [x] "+l"(x), [i] "+l"(i), [t1] "=&l"(t1), [t2] "=&l"(t2), [nz] "+h"(nzr), [clips] "+m"(clips)
                     : [wb] "l"(w + n), [ab] "l"(a + n), [S] "m"(S), [rs] "l"(rs), [dl] "m"(dl)
                     : "cc", "memory");
#undef EBP_ARM_SR_CLIP
    *rng = x;
    *nz = 0u - nzr;
    return clips;
}
#define EBP_HAVE_ARCH_ROW_SR_COUNT 1
#endif

#if EBP_ARMV6M
/*
 * acc + sum_i w[i] x[i] exactly, as the portable dot16, on ARMv6-M in assembly: one index over both arrays
 * (LDRSH takes only a register offset), MULS for the 32-bit product, its sign extension added with ADDS/ADCS:
 * 8 instructions per multiply-accumulate against GCC's 12. Not inlined: the callers' registers stay theirs.
 */
__attribute__((noinline)) static int64_t ebp_arm_dot16(int64_t acc, const int16_t *w, const int16_t *x, uint32_t n) {
    uint32_t lo = (uint32_t)(uint64_t)acc, hi = (uint32_t)((uint64_t)acc >> 32), t1, t2;
    int32_t i = -2 * (int32_t)n;
    if (n == 0) return acc;
    __asm__ volatile(".syntax unified\n"
                     "1:\n\t"
                     "ldrsh %[t1], [%[wb], %[i]]\n\t"
                     "ldrsh %[t2], [%[xb], %[i]]\n\t"
                     "muls %[t1], %[t2], %[t1]\n\t"
                     "asrs %[t2], %[t1], #31\n\t"
                     "adds %[lo], %[lo], %[t1]\n\t"
                     "adcs %[hi], %[hi], %[t2]\n\t"
                     "adds %[i], %[i], #2\n\t"
                     "bne 1b\n\t"
                     ".syntax divided\n"
                     : [lo] "+l"(lo), [hi] "+l"(hi), [i] "+l"(i), [t1] "=&l"(t1), [t2] "=&l"(t2)
                     : [wb] "l"(w + n), [xb] "l"(x + n)
                     : "cc", "memory");
    { /* the sum's 64 bits as an int64 (GCC converts modulo 2^64) */
        const uint64_t u = ((uint64_t)hi << 32) | lo;
        return (int64_t)u;
    }
}
#define EBP_HAVE_ARCH_DOT16 1
#endif

#endif /* EBP_ARCH_ARM_H */
