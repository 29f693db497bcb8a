/*
 * ebp_arch_arm.h - the Arm kernels beside the portable ones (csrc/arch/ebp_arch.h says how they are chosen):
 * here the state structs the kernels share with csrc/core and the Thumb-1 kernels both architectures run; the
 * ARMv7-M (Cortex-M3, and ARMv7E-M with DSP: M4, M7) kernels in ebp_arch_armv7m.h, the ARMv6-M (Cortex-M0, M0+)
 * ones in ebp_arch_armv6m.h. Included by csrc/core/ebp_internal.h; every function is static inline and exists
 * only when its architecture is selected. Each names the plain rule it reproduces; tests/test_kernels.py trains
 * random configurations with them on the emulated boards and compares every integer with the host's portable
 * kernels.
 */
#ifndef EBP_ARCH_ARM_H
#define EBP_ARCH_ARM_H

#include <stdint.h>

#include "ebp_arch.h"

typedef struct __attribute__((packed, may_alias)) { uint32_t v; } ebp_arm_u32_t; /* an unaligned word */



#if EBP_ARMV7M || EBP_ARMV6M
/* the state of ebp_arm_rows_sr_wrap: a layer's rows from d to d_end (offsets in bytes, used by the assembly) */
typedef struct {
    int16_t *w;           /*  0: the next row's weights */
    int16_t *b;           /*  4: its bias; after a flagged row, that row's */
    const int16_t *d;     /*  8: the next row's delta */
    const int16_t *d_end; /* 12 */
    const int16_t *in;    /* 16: the layer's inputs, n_in of them */
    uint32_t n_in;        /* 20 */
    int32_t lr_m;         /* 24 */
    int32_t S;            /* 28: 1..30 */
    int32_t in_frac;      /* 32 */
    uint32_t x;           /* 36: the generator's state */
    uint32_t nz;          /* 40: the non-zero updates, added (the count of the portable rows) */
    uint32_t rows;        /* 44: rows with a non-zero delta, added */
    int32_t dl;           /* 48: after a flagged row, its dl */
    uint32_t x0;          /* 52: and its draw, the first value of its Weyl sequence */
    uint32_t flagged;     /* 56: 1 if the last row processed left int16 somewhere */
} ebp_arm_rows_t;
#endif

#if EBP_ARMV7M || EBP_ARMV6M
/* the state of ebp_arm_fwd_sigmoid: a sigmoid layer's neurons from y to y_end (offsets in bytes, used by the
 * assembly) */
typedef struct {
    const int16_t *w;     /*  0: the next neuron's weights (the rows follow each other) */
    const int16_t *b;     /*  4: its bias */
    int16_t *y;           /*  8: its output */
    int16_t *y_end;       /* 12 */
    const int16_t *in;    /* 16: the layer's inputs */
    uint32_t n_in;        /* 20: >= EBP_ARM_FWD_MIN_IN */
    int32_t in_frac;      /* 24 */
    int32_t s;            /* 28: w_frac + in_frac - 12, 1..31 */
    int32_t sh;           /* 32: 16 - a_frac, 1..16 */
    uint32_t sat;         /* 36: outputs clipped at 32767, added */
    uint32_t lo, hi;      /* 40, 44: after a stop, the accumulator that left int32 (its two halves) */
    uint32_t stopped;     /* 48: 1 if it stopped at *y */
    const uint16_t *tab;  /* 52: ebp_sigmoid_q16 */
} ebp_arm_fwd_t;
#endif

#if EBP_ARMV7M || EBP_ARMV6M
/* the state of ebp_arm_hidden_pack: a sigmoid or tanh hidden layer's raw deltas against the dense layer above
 * (offsets in bytes, used by the assembly) */
typedef struct {
    const int16_t *y;     /*  0: the layer's outputs, n of them */
    uint16_t *packed;     /*  4: its delta array, whose bits receive the packed magnitudes */
    const int16_t *w;     /*  8: the next layer's weights, (nk, n) */
    const int16_t *dk;    /* 12: the next layer's deltas, nk of them */
    uint32_t *signs;      /* 16: the sign words, (n + 31) / 32 */
    uint32_t n;           /* 20: >= 1 */
    uint32_t nk;          /* 24: >= 1 */
    uint32_t kc;          /* 28: f'(y) = ((c + y (kc - y)) >> sr) << sl: kc = 2^a_frac (sigmoid) or 0 (tanh) */
    uint32_t c;           /* 32: 2^(sr-1) if sr > 0 (else 0), plus 2^(2 a_frac) for tanh */
    int32_t sr, sl;       /* 36, 40: 2 a_frac - 15 when > 0, 15 - 2 a_frac when > 0 (else 0) */
    uint32_t lo, hi;      /* 44, 48: out: the largest magnitude */
    uint32_t ok;          /* 52: out: 0 if the packing needed a shift of 32 or more (the caller reruns the
                           * portable pass, which rewrites every output) */
} ebp_arm_hidden_t;
#endif

#if EBP_ARMV7M || EBP_ARMV6M
/*
 * The number of zeros among n int16 values (ebp_update_online's zero inputs, for the statistics), Thumb-1
 * instructions that ARMv7-M also runs: per value LDRH, NEGS (C = 1 exactly for 0) and ADCS into the count, two
 * values a loop step with one index over both (5 instructions a value from GCC's loop on the M0 become 4; it reloaded
 * the array's address every step). An odd n takes its first value in C.
 */
#if EBP_ARMV6M
#define EBP_ARM_THUMB1_BEGIN ".syntax unified\n"
#define EBP_ARM_THUMB1_END ".syntax divided\n"
#else
#define EBP_ARM_THUMB1_BEGIN ""
#define EBP_ARM_THUMB1_END ""
#endif
static inline uint32_t ebp_arm_count_zero16(const int16_t *x, uint32_t n) {
    uint32_t c = 0, t;
    const uint32_t z = 0;
    int32_t i;
    if (n & 1u) {
        c = *x++ == 0;
        n--;
    }
    if (n == 0) return c;
    i = -2 * (int32_t)n;
    __asm__ volatile(EBP_ARM_THUMB1_BEGIN
                     "1:\n\t"
                     "ldrh %[t], [%[b0], %[i]]\n\t"
                     "negs %[t], %[t]\n\t"
                     "adcs %[c], %[z]\n\t"
                     "ldrh %[t], [%[b1], %[i]]\n\t"
                     "negs %[t], %[t]\n\t"
                     "adcs %[c], %[z]\n\t"
                     "adds %[i], #4\n\t"
                     "bne 1b\n\t" EBP_ARM_THUMB1_END
                     : [c] "+l"(c), [i] "+l"(i), [t] "=&l"(t)
                     : [b0] "l"(x + n), [b1] "l"(x + n + 1), [z] "l"(z)
                     : "cc", "memory");
    return c;
}
#define EBP_HAVE_ARCH_COUNT_ZERO16 1
#endif

#if EBP_ARMV7M || EBP_ARMV6M
/*
 * unpack_word's rule for a shift sh >= 1 (ebp_backward.c's unpack_delta of the packed hidden deltas), n >= 1 values
 * of one sign word: for i = 0..n-1, m = (p + half) >> sh with p = (uint16_t)d[i], then d[i] = the low 16 bits of
 * (bit i of sw ? -m : m). Per value LDRH, ADDS, LSRS by register, LSRS of the sign word (its bit into C), BCC past
 * a NEGS, STRH, one index over the array counting up to 0 (8 or 9 instructions a value). Registers: t the value, i
 * the offset (-2 n .. 0), sw the sign word shifted as it goes, e the array's end, h half, sh the shift.
 */
static inline void ebp_arm_unpack_word(int16_t *d, uint32_t n, uint32_t sw, uint32_t half, uint32_t sh) {
    int32_t i = -2 * (int32_t)n;
    uint32_t t;
    __asm__ volatile(EBP_ARM_THUMB1_BEGIN
                     "1:\n\t"
                     "ldrh %[t], [%[e], %[i]]\n\t"
                     "adds %[t], %[t], %[h]\n\t"
                     "lsrs %[t], %[sh]\n\t"
                     "lsrs %[sw], %[sw], #1\n\t"
                     "bcc 2f\n\t"
                     "negs %[t], %[t]\n"
                     "2:\n\t"
                     "strh %[t], [%[e], %[i]]\n\t"
                     "adds %[i], #2\n\t"
                     "bne 1b\n\t" EBP_ARM_THUMB1_END
                     : [t] "=&l"(t), [i] "+l"(i), [sw] "+l"(sw)
                     : [e] "l"(d + n), [h] "l"(half), [sh] "l"(sh)
                     : "cc", "memory");
}
#if !EBP_ARM_DSP /* on the Cortex-M4 it gains about 60 online but costs GCC's normalize_delta 1-2 with gradient memory */
#define EBP_HAVE_ARCH_UNPACK_WORD 1
#endif
#endif

#include "ebp_arch_armv7m.h"
#include "ebp_arch_armv6m.h"

#endif /* EBP_ARCH_ARM_H */
