/*
 * ebp_arch_armv7m.h - the ARMv7-M kernels (Cortex-M3) and their ARMv7E-M DSP versions (Cortex-M4, M7).
 * Included by ebp_arch_arm.h (the structs they share with csrc/core are there); each kernel names the plain rule it
 * reproduces.
 */
#ifndef EBP_ARCH_ARMV7M_H
#define EBP_ARCH_ARMV7M_H
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
 * Two weights of ebp_arm_row_sr at once (ARMv7E-M DSP), the same rule: per weight its value r of the row's Weyl
 * sequence (*rng, then + EBP_WEYL), then
 * q = floor((dl a + (r >> (32 - S))) / 2^S) by SMLABB/SMLABT (dl times the low/high input of a pair, plus the
 * draw's top bits) and ASR, the two q packed by PKHBT, and w = ebp_sat16(w - q) for both halves by QSUB16.
 * Needs every q in int16: |dl| < 2^S gives |q| <= ((2^S - 1) 2^15 + 2^S - 1) / 2^S < 2^15 (the caller checks).
 */
static inline void ebp_arm_row_sr_dsp(int16_t *w, const int16_t *a, uint32_t n, int32_t dl, int S, uint32_t *rng) {
    const int rs = 32 - S;
    uint32_t x = *rng, x1 = x + EBP_WEYL, k2 = 2u * EBP_WEYL; /* the even and the odd weights' values */
    int16_t *end2 = w + (n & ~1u);
    __asm__("" : "+r"(k2)); /* kept in a register (GCC would otherwise add it as three immediates a step) */
    for (; w != end2; w += 2, a += 2) {
        const uint32_t ap = ((const ebp_arm_u32_t *)(const void *)a)->v;
        uint32_t wp = ((const ebp_arm_u32_t *)(const void *)w)->v, u0, u1;
        int32_t q0, q1;
        u0 = x >> rs;
        u1 = x1 >> rs;
        x += k2;
        x1 += k2;
        __asm__("smlabb %0, %1, %2, %3" : "=r"(q0) : "r"(dl), "r"(ap), "r"(u0));
        __asm__("smlabt %0, %1, %2, %3" : "=r"(q1) : "r"(dl), "r"(ap), "r"(u1));
        q0 = ebp_arm_asr(q0, S);
        q1 = ebp_arm_asr(q1, S);
        __asm__("pkhbt %0, %0, %1, lsl #16" : "+r"(q0) : "r"(q1));
        __asm__("qsub16 %0, %0, %1" : "+r"(wp) : "r"(q0));
        ((ebp_arm_u32_t *)(void *)w)->v = wp;
    }
    if (n & 1u) {
        const int32_t q = ebp_arm_asr(dl * *a + (int32_t)(x >> rs), S);
        *w = (int16_t)ebp_arm_sat16(*w - q);
        x += EBP_WEYL;
    }
    *rng = x;
}
#endif

#if EBP_ARMV7M

/*
 * The ARMv7-M rows of the online update with the statistics (EBP_STATS=1), update_rows_nonneg_sr's loop over a
 * layer's rows, biases included, in assembly (Cortex-M3, M4, M7). GCC's code for the portable row spends 17
 * instructions a weight, and with the row in inline assembly its loop over the rows kept 16 values in 13 registers
 * (about 37 instructions a row besides the weights and the bias; 21 here). For each row from p->d on: skipped when
 * delta = 0 (counted: rows is the rows passed less those); else dl = ebp_rshift_rn32(delta lr_m, 16) (MUL by lr_m
 * in lr, the bias 2^31 + 2^15 - [negative], LSR, SUB); skipped when dl = 0 (no draw); else one xorshift32 draw r0
 * (the state kept on the stack; after a flagged row it is that row's r0)
 * and the rule of ebp_arm_row_sr, in order,
 *     q = floor((dl a[i] + (r >> (32 - S))) / 2^S)  by MLA and ASR, r = r0 + i EBP_WEYL (one ADD),
 * then for the bias r0 + n_in EBP_WEYL with the product dl 2^in_frac; a weight with q = 0 is left as it is (ASRS, BEQ),
 * else counted (ADD to nz; the bias's by CMP #1, C iff q != 0, and ADC); each new parameter stored as its low 16 bits,
 * and SSAT #16 of it sets the sticky Q flag (cleared once a call: a set Q ends it) iff some parameter left int16. The
 * weight is addressed from the input (r3 + (w - in - 2) after the input's post-increment). Two weights a loop step (an
 * odd n_in enters at the second), 12 instructions a weight with q != 0, 7 with q = 0 (with the DSP extension the
 * variant below, 9). It stops after the first row
 * that set Q (flagged = 1, with that row's dl, r0 (x0) and bias; w and d past it) for the caller's repair
 * (fix_row_sr_any), or at d_end (flagged = 0). Every register is saved and restored (PUSH/POP): the state goes
 * through *p. p->d != p->d_end, n_in >= 1, 1 <= S <= 30.
 */
/* ebp_xorshift32 of r0 in place, and one weight of ebp_arm_rows_sr_wrap's row loop (r3: the input, r3 + r2 after
 * its post-increment: the weight, z: the label past it, r0: its value of the row's Weyl sequence, r12: EBP_WEYL, r7: dl, r8: S, r9: 32 - S, r1: the non-zero
 * count; SSAT sets Q when the new weight left int16; r6: the inputs' end, r10: d, r11: b, lr: lr_m) */
#define EBP_ARM_XORSHIFT_R0 "eor r0, r0, r0, lsl #13\n\teor r0, r0, r0, lsr #17\n\teor r0, r0, r0, lsl #5\n\t"
#define EBP_ARM_ROWS_WEIGHT(z)                                                                                  \
    "ldrsh r4, [r3], #2\n\tlsr r5, r0, r9\n\tadd r0, r0, r12\n\tmla r4, r7, r4, r5\n\tasrs r4, r4, r8\n\t"    \
    "beq " z "f\n\tadd r1, r1, #1\n\tldrsh r5, [r3, r2]\n\tsub r5, r5, r4\n\tstrh r5, [r3, r2]\n\t"         \
    "ssat r5, #16, r5\n" z ":\n\t"

#if !EBP_ARM_DSP
static inline void ebp_arm_rows_sr_wrap(ebp_arm_rows_t *p) {
    __asm__ volatile("push {r0-r12, lr}\n\t"
                     "mov r4, %[p]\n\t"
                     /* [sp]: 0 p, 8 in, 12 in_frac, 16 rows with delta = 0, 20 d at entry, 24 n_in odd, 28 2 n_in,
                      * 32 x, 36 d_end */
                     "sub sp, sp, #40\n\t"
                     "str r4, [sp, #0]\n\t"
                     "ldr lr, [r4, #24]\n\t" /* lr: lr_m */
                     "ldr r3, [r4, #16]\n\t"
                     "str r3, [sp, #8]\n\t"
                     "ldr r5, [r4, #32]\n\t"
                     "str r5, [sp, #12]\n\t"
                     "movs r6, #0\n\t"
                     "str r6, [sp, #16]\n\t"
                     "msr APSR_nzcvq, r6\n\t" /* Q = 0: set only by a clip, which ends the call */
                     "ldr r5, [r4, #20]\n\t"
                     "and r6, r5, #1\n\t"
                     "str r6, [sp, #24]\n\t"
                     "lsl r6, r5, #1\n\t"
                     "str r6, [sp, #28]\n\t"
                     "add r6, r3, r6\n\t" /* r6: the inputs' end */
                     "ldr r8, [r4, #28]\n\t" /* r8: S, r9: 32 - S */
                     "rsb r9, r8, #32\n\t"
                     "ldr r2, [r4, #0]\n\t" /* r2: w - in - 2 (the weight of the input before r3), r11: b, r10: d */
                     "sub r2, r2, r3\n\t"
                     "sub r2, r2, #2\n\t"
                     "ldr r11, [r4, #4]\n\t"
                     "ldr r10, [r4, #8]\n\t"
                     "str r10, [sp, #20]\n\t"
                     "ldr r5, [r4, #12]\n\t"
                     "str r5, [sp, #36]\n\t"
                     "ldr r5, [r4, #36]\n\t" /* the generator's state */
                     "str r5, [sp, #32]\n\t"
                     "movw r12, #0x79B9\n\t" /* r12: EBP_WEYL */
                     "movt r12, #0x9E37\n\t"
                     "ldr r1, [r4, #40]\n\t" /* r1: nz, r7: dl, r0: the row's Weyl sequence */
                     "movs r7, #0\n"
                     "10:\n\t" /* a row */
                     "ldrsh r4, [r10], #2\n\t"
                     "cbnz r4, 11f\n\t"
                     "ldr r5, [sp, #16]\n\t" /* delta = 0: counted, the next row */
                     "add r5, r5, #1\n\t"
                     "str r5, [sp, #16]\n\t"
                     "ldr r5, [sp, #28]\n\t"
                     "add r2, r2, r5\n\t"
                     "b 18f\n"
                     "11:\n\t"
                     "mul r4, r4, lr\n\t"
                     "add r7, r4, #0x80008000\n\t"
                     "add r7, r7, r4, asr #31\n\t"
                     "lsr r7, r7, #16\n\t"
                     "subs r7, r7, #0x8000\n\t"
                     "beq 17f\n\t"
                     "ldr r0, [sp, #32]\n\t" EBP_ARM_XORSHIFT_R0 /* the row's draw, its Weyl sequence's start */
                     "str r0, [sp, #32]\n\t"
                     "ldr r3, [sp, #8]\n\t"
                     "ldr r4, [sp, #24]\n\t"
                     "cbnz r4, 13f\n"
                     "12:\n\t" EBP_ARM_ROWS_WEIGHT("14")
                     "13:\n\t" EBP_ARM_ROWS_WEIGHT("15")
                     "cmp r3, r6\n\t"
                     "bne 12b\n\t"
                     "ldr r5, [sp, #28]\n\t" /* w: the next row */
                     "add r2, r2, r5\n\t"
                     "ldr r4, [sp, #12]\n\t" /* the bias: dl 2^in_frac */
                     "lsl r4, r7, r4\n\t"
                     "lsr r5, r0, r9\n\t"
                     "add r4, r4, r5\n\t"
                     "asr r4, r4, r8\n\t"
                     "cmp r4, #1\n\t"
                     "adc r1, r1, #0\n\t"
                     "ldrsh r5, [r11]\n\t"
                     "sub r5, r5, r4\n\t"
                     "strh r5, [r11]\n\t"
                     "ssat r5, #16, r5\n\t"
                     "mrs r4, APSR\n\t"
                     "tst r4, #0x08000000\n\t" /* Q, bit 27 */
                     "bne 19f\n"
                     "18:\n\t"
                     "add r11, r11, #2\n\t"
                     "ldr r5, [sp, #36]\n\t"
                     "cmp r10, r5\n\t"
                     "bne 10b\n\t"
                     "movs r4, #0\n\t"
                     "b 20f\n"
                     "17:\n\t" /* dl = 0: the next row, no draws */
                     "ldr r5, [sp, #28]\n\t"
                     "add r2, r2, r5\n\t"
                     "b 18b\n"
                     "19:\n\t"
                     "movs r4, #1\n"
                     "20:\n\t"
                     "ldr r5, [sp, #0]\n\t"
                     "ldr r3, [sp, #8]\n\t"
                     "add r3, r3, r2\n\t"
                     "add r3, r3, #2\n\t"
                     "str r3, [r5, #0]\n\t"
                     "str r11, [r5, #4]\n\t"
                     "str r10, [r5, #8]\n\t"
                     "ldr r3, [sp, #32]\n\t" /* the state: the last row's draw */
                     "str r3, [r5, #36]\n\t"
                     "str r3, [r5, #52]\n\t"
                     "str r1, [r5, #40]\n\t"
                     "ldr r3, [sp, #20]\n\t" /* rows: those passed, less those with delta = 0 */
                     "sub r3, r10, r3\n\t"
                     "lsr r3, r3, #1\n\t"
                     "ldr r0, [sp, #16]\n\t"
                     "sub r3, r3, r0\n\t"
                     "ldr r0, [r5, #44]\n\t"
                     "add r3, r3, r0\n\t"
                     "str r3, [r5, #44]\n\t"
                     "str r7, [r5, #48]\n\t"
                     "str r4, [r5, #56]\n\t"
                     "add sp, sp, #40\n\t"
                     "pop {r0-r12, lr}\n\t"
                     :
                     : [p] "r"(p)
                     : "cc", "memory");
}
#else /* EBP_ARM_DSP */
/*
 * The same rows on ARMv7E-M with the DSP extension (Cortex-M4, M7), the same rule, the same state and flag/repair
 * protocol, two weights a step for each row with |dl| <= 2^min(S, 15) - 1 (then every q fits int16: |q| <=
 * ((2^S - 1) 2^15 + 2^S - 1) / 2^S < 2^15, and dl fits the 16-bit multiplier):
 *     q = floor((dl a + (r >> (32 - S))) / 2^S)   by SMLABB/SMLABT (dl times the low/high input of a pair loaded
 *                                                  as a word, plus the draw's top bits) and ASR, r = r0 + i EBP_WEYL,
 * the pair's two q packed by PKHBT; the non-zero updates counted as UQSUB16(0x00010001, q pair) (1 in a half whose
 * q is 0) then USADA8 against 0x00010001 (adds 1 per non-zero q: nz is counted up, not n_in + 1 less the zeros);
 * the new pair stored as SSUB16's wrapped halves, QSUB16 the saturated ones, a clip iff they differ: USADA8 of the
 * two (the sum of the bytes' absolute differences) into a clip flag. Four weights a loop step (an odd pair count
 * enters at the second pair), 9 instructions a weight. An odd n_in's first weight, the bias (product dl 2^in_frac)
 * and every weight of a row with a larger |dl| take the scalar rule (MLA, ASR, SUB, STRH of the low bits, SSAT
 * against the unsaturated value by USADA8 into the flag; the non-zero count by CMP #1, ADC). It stops after the
 * first row whose flag is set, as above. Registers: r0, r1, r4 scratch (r4: the input pair, then the weight pair),
 * r2 w, r3 the inputs, r5 the clip flag, r6 the inputs' end, r7 dl, r8 S, r9 32 - S, r10 the row's Weyl sequence,
 * r11 nz, r12 EBP_WEYL, lr 0x00010001; the rest on the stack.
 */
#define EBP_ARM_XORSHIFT_R10 "eor r10, r10, r10, lsl #13\n\teor r10, r10, r10, lsr #17\n\teor r10, r10, r10, lsl #5\n\t"
#define EBP_ARM_ROWS_PAIR                                                                                      \
    "ldr r4, [r3], #4\n\tlsr r0, r10, r9\n\tadd r10, r10, r12\n\tlsr r1, r10, r9\n\tadd r10, r10, r12\n\t"     \
    "smlabb r0, r7, r4, r0\n\tsmlabt r1, r7, r4, r1\n\tasr r0, r0, r8\n\tasr r1, r1, r8\n\t"                   \
    "pkhbt r0, r0, r1, lsl #16\n\tuqsub16 r1, lr, r0\n\tusada8 r11, r1, lr, r11\n\tldr r4, [r2]\n\t"          \
    "ssub16 r1, r4, r0\n\tqsub16 r4, r4, r0\n\tusada8 r5, r4, r1, r5\n\tstr r1, [r2], #4\n\t"
/* one weight by the scalar rule (r3: its input, r2: it) */
#define EBP_ARM_ROWS_SINGLE                                                                                    \
    "ldrsh r0, [r3], #2\n\tlsr r1, r10, r9\n\tadd r10, r10, r12\n\tmla r0, r7, r0, r1\n\tasr r0, r0, r8\n\t"   \
    "cmp r0, #1\n\tadc r11, r11, #0\n\tldrsh r1, [r2]\n\tsub r1, r1, r0\n\tstrh r1, [r2], #2\n\t"              \
    "ssat r4, #16, r1\n\tusada8 r5, r4, r1, r5\n\t"

static inline void ebp_arm_rows_sr_wrap(ebp_arm_rows_t *p) {
    __asm__ volatile("push {r0-r12, lr}\n\t"
                     "mov r4, %[p]\n\t"
                     /* [sp]: 0 p, 4 lr_m, 8 in, 12 in_frac, 16 d, 20 d_end, 24 x, 28 the entry (bit 0: n_in odd,
                      * bit 1: an odd pair count), 32 2^min(S, 15) - 1 (0 if the entry is not 0), 36 b - d - 2,
                      * 40 2^min(S, 15) - 1, 44 rows with delta = 0,
                      * 48 d at entry, 52 2 n_in, 56 in + 2 n_in */
                     "sub sp, sp, #64\n\t"
                     "str r4, [sp, #0]\n\t"
                     "ldr r5, [r4, #24]\n\t"
                     "str r5, [sp, #4]\n\t"
                     "ldr r3, [r4, #16]\n\t"
                     "str r3, [sp, #8]\n\t"
                     "ldr r5, [r4, #32]\n\t"
                     "str r5, [sp, #12]\n\t"
                     "ldr r0, [r4, #8]\n\t"
                     "str r0, [sp, #16]\n\t"
                     "str r0, [sp, #48]\n\t"
                     "ldr r5, [r4, #12]\n\t"
                     "str r5, [sp, #20]\n\t"
                     "ldr r5, [r4, #36]\n\t"
                     "str r5, [sp, #24]\n\t"
                     "ldr r1, [r4, #4]\n\t"
                     "sub r1, r1, r0\n\t"
                     "sub r1, r1, #2\n\t"
                     "str r1, [sp, #36]\n\t"
                     "ldr r5, [r4, #20]\n\t" /* n_in */
                     "lsl r1, r5, #1\n\t"
                     "str r1, [sp, #52]\n\t"
                     "add r6, r3, r1\n\t" /* r6: the inputs' end */
                     "str r6, [sp, #56]\n\t"
                     "and r1, r5, #3\n\t" /* the entry: n_in odd, (n_in >> 1) odd */
                     "str r1, [sp, #28]\n\t"
                     "movs r1, #0\n\t"
                     "str r1, [sp, #44]\n\t"
                     "ldr r8, [r4, #28]\n\t" /* r8: S, r9: 32 - S */
                     "rsb r9, r8, #32\n\t"
                     "movs r1, #1\n\t"
                     "cmp r8, #15\n\t"
                     "ite lt\n\t"
                     "lsllt r1, r1, r8\n\t"
                     "lslge r1, r1, #15\n\t"
                     "sub r1, r1, #1\n\t"
                     "str r1, [sp, #40]\n\t"
                     "ldr r0, [sp, #28]\n\t" /* not the common entry: the check below always fails */
                     "cmp r0, #0\n\t"
                     "it ne\n\t"
                     "movne r1, #0\n\t"
                     "str r1, [sp, #32]\n\t"
                     "ldr r2, [r4, #0]\n\t"
                     "ldr r11, [r4, #40]\n\t"
                     "movw r12, #0x79B9\n\t" /* r12: EBP_WEYL */
                     "movt r12, #0x9E37\n\t"
                     "movw lr, #1\n\t"
                     "movt lr, #1\n\t"
                     "movs r5, #0\n"
                     "10:\n\t" /* a row */
                     "ldr r0, [sp, #16]\n\t"
                     "ldr r1, [sp, #20]\n\t"
                     "cmp r0, r1\n\t"
                     "beq 90f\n\t"
                     "ldrsh r1, [r0], #2\n\t"
                     "str r0, [sp, #16]\n\t"
                     "cbnz r1, 11f\n\t"
                     "ldr r1, [sp, #44]\n\t" /* delta = 0: counted, the next row */
                     "add r1, r1, #1\n\t"
                     "str r1, [sp, #44]\n\t"
                     "ldr r1, [sp, #52]\n\t"
                     "add r2, r2, r1\n\t"
                     "b 10b\n"
                     "11:\n\t"
                     "ldr r4, [sp, #4]\n\t"
                     "mul r1, r1, r4\n\t"
                     "add r7, r1, #0x80008000\n\t"
                     "add r7, r7, r1, asr #31\n\t"
                     "lsr r7, r7, #16\n\t"
                     "subs r7, r7, #0x8000\n\t"
                     "beq 81f\n\t"
                     "ldr r10, [sp, #24]\n\t" EBP_ARM_XORSHIFT_R10 /* the row's draw, its Weyl sequence's start */
                     "str r10, [sp, #24]\n\t"
                     "ldr r3, [sp, #8]\n\t"
                     "ldr r4, [sp, #32]\n\t" /* |dl| > 2^min(S, 15) - 1 or not the common entry: 70 */
                     "add r1, r7, r4\n\t"
                     "cmp r1, r4, lsl #1\n\t"
                     "bhi 70f\n\t"
                     "12:\n\t" EBP_ARM_ROWS_PAIR
                     "13:\n\t" EBP_ARM_ROWS_PAIR
                     "cmp r3, r6\n\t"
                     "bne 12b\n"
                     "15:\n\t" /* the bias: dl 2^in_frac */
                     "ldr r1, [sp, #12]\n\t"
                     "lsl r0, r7, r1\n\t"
                     "lsr r1, r10, r9\n\t"
                     "add r0, r0, r1\n\t"
                     "asr r0, r0, r8\n\t"
                     "cmp r0, #1\n\t"
                     "adc r11, r11, #0\n\t"
                     "ldr r3, [sp, #16]\n\t"
                     "ldr r1, [sp, #36]\n\t"
                     "add r3, r3, r1\n\t"
                     "ldrsh r1, [r3]\n\t"
                     "sub r1, r1, r0\n\t"
                     "strh r1, [r3]\n\t"
                     "ssat r4, #16, r1\n\t"
                     "usada8 r5, r4, r1, r5\n\t"
                     "cbnz r5, 95f\n\t"
                     "b 10b\n"
                     "95:\n\t"
                     "movs r4, #1\n\t"
                     "b 96f\n"
                     "70:\n\t" /* not the common entry (then [sp, #32] = 0), or |dl| too large */
                     "ldr r4, [sp, #28]\n\t"
                     "cbz r4, 71f\n\t"
                     "ldr r4, [sp, #40]\n\t"
                     "add r1, r7, r4\n\t"
                     "cmp r1, r4, lsl #1\n\t"
                     "bhi 71f\n\t"
                     "ldr r4, [sp, #28]\n\t" /* n_in odd: its first weight; then no pair, or an odd pair count */
                     "tst r4, #1\n\t"
                     "beq 61f\n\t" EBP_ARM_ROWS_SINGLE
                     "ldr r4, [sp, #28]\n\t"
                     "cmp r3, r6\n\t"
                     "beq 15b\n"
                     "61:\n\t"
                     "tst r4, #2\n\t"
                     "bne 13b\n\t"
                     "b 12b\n"
                     "71:\n\t" /* a row of scalar steps */
                     EBP_ARM_ROWS_SINGLE
                     "cmp r3, r6\n\t"
                     "bne 71b\n\t"
                     "b 15b\n"
                     "81:\n\t" /* dl = 0: the next row, no draws */
                     "ldr r1, [sp, #52]\n\t"
                     "add r2, r2, r1\n\t"
                     "b 10b\n"
                     "90:\n\t"
                     "movs r4, #0\n"
                     "96:\n\t"
                     "ldr r3, [sp, #0]\n\t"
                     "str r2, [r3, #0]\n\t"
                     "ldr r0, [sp, #16]\n\t"
                     "str r0, [r3, #8]\n\t"
                     "ldr r1, [sp, #36]\n\t" /* b: the flagged row's bias, else the next row's */
                     "add r1, r0, r1\n\t"
                     "add r1, r1, #2\n\t"
                     "sub r1, r1, r4, lsl #1\n\t"
                     "str r1, [r3, #4]\n\t"
                     "ldr r1, [sp, #24]\n\t" /* the state: the last row's draw */
                     "str r1, [r3, #36]\n\t"
                     "str r1, [r3, #52]\n\t"
                     "str r11, [r3, #40]\n\t"
                     "ldr r1, [sp, #48]\n\t" /* rows: those passed, less those with delta = 0 */
                     "sub r1, r0, r1\n\t"
                     "lsr r1, r1, #1\n\t"
                     "ldr r0, [sp, #44]\n\t"
                     "sub r1, r1, r0\n\t"
                     "ldr r0, [r3, #44]\n\t"
                     "add r0, r0, r1\n\t"
                     "str r0, [r3, #44]\n\t"
                     "str r7, [r3, #48]\n\t"
                     "str r4, [r3, #56]\n\t"
                     "add sp, sp, #64\n\t"
                     "pop {r0-r12, lr}\n\t"
                     :
                     : [p] "r"(p)
                     : "cc", "memory");
}
#endif /* EBP_ARM_DSP */
#define EBP_HAVE_ARCH_ROWS_SR_WRAP 1
#endif

#if EBP_ARMV7M
/*
 * One row of the online update with stochastic rounding, counters compiled out (EBP_STATS=0), any sign of
 * dl and of the inputs, 1 <= S <= 30. Reproduces, for i = 0..n-1 in order (*rng: the row's Weyl sequence):
 *     w[i] = ebp_sat16(w[i] - ebp_rshift_sr32(dl * a[i], S, *rng)), *rng += EBP_WEYL
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
        const int32_t q = ebp_arm_asr(dl * *a + (int32_t)(x >> rs), S);
        *w = (int16_t)ebp_arm_sat16(*w - q);
        x += EBP_WEYL;
    } while (++w, ++a != end);
    *rng = x;
}
#define EBP_HAVE_ARCH_ROW_SR 1
#endif

#if EBP_ARMV7M
/*
 * fwd_sigmoid_kernel's loop for a sigmoid layer on ARMv7-M in assembly, the same rules as sigmoid_neuron on its
 * 32-bit path: acc = b 2^in_frac + sum w x by SMLAL (two LDRSH a multiply-accumulate, four a loop step; with the DSP
 * extension SMLALD on pairs loaded as words, two an instruction), then if acc fits int32 (hi = lo >> 31)
 *     a = (|acc| + 2^(s-1)) >> s,  v = 65535 if a >= 2^16 else y0 + (((y1 - y0) (a & 255) + 128) >> 8)
 *     (y0, y1 = tab[a >> 8], tab[(a >> 8) + 1]),  q = ((acc < 0 ? 65536 - v : v) + 2^(sh-1)) >> sh,
 *     q = 32767 (sat + 1) if q = 32768,
 * about 37 instructions a neuron besides the multiply-accumulates (GCC's loop: some 60, its 16 values spilled from
 * 13 registers). A neuron whose acc leaves int32 stops it (stopped = 1, lo and hi set, w and b past the neuron, y
 * at it) for the caller's 64-bit path. Every register is saved and restored: the state goes through *p.
 */
static inline void ebp_arm_fwd_sigmoid(ebp_arm_fwd_t *p) {
    __asm__ volatile("push {r0-r12, lr}\n\t"
                     "mov r4, %[p]\n\t"
                     "sub sp, sp, #32\n\t" /* [sp]: p, in, in_frac, in + (n_in & ~3), in + n_in, tab, sat */
                     "str r4, [sp, #0]\n\t"
                     "ldr r3, [r4, #16]\n\t"
                     "str r3, [sp, #4]\n\t"
                     "ldr r5, [r4, #24]\n\t"
                     "str r5, [sp, #8]\n\t"
                     "ldr r5, [r4, #20]\n\t"
                     "add r6, r3, r5, lsl #1\n\t"
                     "str r6, [sp, #16]\n\t"
                     "bic r5, r5, #3\n\t"
                     "add r6, r3, r5, lsl #1\n\t"
                     "str r6, [sp, #12]\n\t"
                     "ldr r5, [r4, #52]\n\t"
                     "str r5, [sp, #20]\n\t"
                     "ldr r5, [r4, #36]\n\t"
                     "str r5, [sp, #24]\n\t"
                     "ldr r8, [r4, #28]\n\t" /* r8: s, r9: 2^(s-1), r10: sh, r11: 2^(sh-1) */
                     "mov r9, #1\n\t"
                     "sub r5, r8, #1\n\t"
                     "lsl r9, r9, r5\n\t"
                     "ldr r10, [r4, #32]\n\t"
                     "mov r11, #1\n\t"
                     "sub r5, r10, #1\n\t"
                     "lsl r11, r11, r5\n\t"
                     "ldr r2, [r4, #0]\n\t" /* r2: w, r7: b, r6: y, lr: y_end */
                     "ldr r7, [r4, #4]\n\t"
                     "ldr r6, [r4, #8]\n\t"
                     "ldr lr, [r4, #12]\n"
                     "10:\n\t" /* a neuron: r0, r1 = b 2^in_frac */
                     "ldr r5, [sp, #8]\n\t"
                     "ldrsh r4, [r7], #2\n\t"
                     "lsl r0, r4, r5\n\t"
                     "asr r1, r0, #31\n\t"
                     "ldr r3, [sp, #4]\n\t"
                     "ldr r12, [sp, #12]\n"
                     "11:\n\t"
#if EBP_ARM_DSP
                     "ldr r4, [r2], #4\n\t"
                     "ldr r5, [r3], #4\n\t"
                     "smlald r0, r1, r4, r5\n\t"
                     "ldr r4, [r2], #4\n\t"
                     "ldr r5, [r3], #4\n\t"
                     "smlald r0, r1, r4, r5\n\t"
#else
                     "ldrsh r4, [r2], #2\n\t"
                     "ldrsh r5, [r3], #2\n\t"
                     "smlal r0, r1, r4, r5\n\t"
                     "ldrsh r4, [r2], #2\n\t"
                     "ldrsh r5, [r3], #2\n\t"
                     "smlal r0, r1, r4, r5\n\t"
                     "ldrsh r4, [r2], #2\n\t"
                     "ldrsh r5, [r3], #2\n\t"
                     "smlal r0, r1, r4, r5\n\t"
                     "ldrsh r4, [r2], #2\n\t"
                     "ldrsh r5, [r3], #2\n\t"
                     "smlal r0, r1, r4, r5\n\t"
#endif
                     "cmp r3, r12\n\t"
                     "bne 11b\n\t"
                     "ldr r12, [sp, #16]\n\t"
                     "cmp r3, r12\n\t"
                     "beq 13f\n"
                     "12:\n\t"
                     "ldrsh r4, [r2], #2\n\t"
                     "ldrsh r5, [r3], #2\n\t"
                     "smlal r0, r1, r4, r5\n\t"
                     "cmp r3, r12\n\t"
                     "bne 12b\n"
                     "13:\n\t"
                     "cmp r1, r0, asr #31\n\t"
                     "bne 40f\n\t" /* acc outside int32 */
                     "eor r4, r0, r1\n\t" /* |acc| */
                     "sub r4, r4, r1\n\t"
                     "add r4, r4, r9\n\t"
                     "lsr r4, r4, r8\n\t" /* a = |z|, Q12 */
                     "cmp r4, #65536\n\t"
                     "bhs 41f\n\t"
                     "ldr r12, [sp, #20]\n\t"
                     "lsr r5, r4, #8\n\t"
                     "add r12, r12, r5, lsl #1\n\t"
                     "ldrh r5, [r12]\n\t"
                     "ldrh r12, [r12, #2]\n\t"
                     "sub r12, r12, r5\n\t"
                     "uxtb r4, r4\n\t"
                     "mul r12, r12, r4\n\t"
                     "add r12, r12, #128\n\t"
                     "add r4, r5, r12, lsr #8\n" /* v */
                     "42:\n\t"
                     "cmp r1, #0\n\t"
                     "it lt\n\t"
                     "rsblt r4, r4, #65536\n\t"
                     "add r4, r4, r11\n\t"
                     "lsr r4, r4, r10\n\t"
                     "cmp r4, #32768\n\t"
                     "beq 43f\n"
                     "44:\n\t"
                     "strh r4, [r6], #2\n\t"
                     "cmp r6, lr\n\t"
                     "bne 10b\n\t"
                     "ldr r4, [sp, #0]\n\t"
                     "movs r5, #0\n\t"
                     "b 50f\n"
                     "41:\n\t" /* a >= 16.0 */
                     "movw r4, #65535\n\t"
                     "b 42b\n"
                     "43:\n\t" /* +1.0 clipped */
                     "ldr r5, [sp, #24]\n\t"
                     "add r5, r5, #1\n\t"
                     "str r5, [sp, #24]\n\t"
                     "movw r4, #32767\n\t"
                     "b 44b\n"
                     "40:\n\t"
                     "ldr r4, [sp, #0]\n\t"
                     "str r0, [r4, #40]\n\t"
                     "str r1, [r4, #44]\n\t"
                     "movs r5, #1\n"
                     "50:\n\t"
                     "str r5, [r4, #48]\n\t"
                     "str r2, [r4, #0]\n\t"
                     "str r7, [r4, #4]\n\t"
                     "str r6, [r4, #8]\n\t"
                     "ldr r5, [sp, #24]\n\t"
                     "str r5, [r4, #36]\n\t"
                     "add sp, sp, #32\n\t"
                     "pop {r0-r12, lr}\n\t"
                     :
                     : [p] "r"(p)
                     : "cc", "memory");
}
#define EBP_HAVE_ARCH_FWD_SIGMOID 1
#define EBP_ARM_FWD_MIN_IN 4u
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

#if EBP_ARMV7M
/*
 * hidden_pass with signs (ebp_dense.c) for a sigmoid or tanh layer on ARMv7-M in assembly, the same rules:
 * first f_i = act_deriv_q15(act, y_i) (as act_deriv_q15_pre, ((c + y (kc - y)) >> sr) << sl, v + half in one MLA)
 * into packed[i]; then for each neuron i in order
 *     r = (sum_k w[k][i] dk[k]) f_i             SMLAL over k (int64), then UMULL and MLA (the 64 x 32-bit product)
 *     bit i of the sign words = r < 0,  m = |r|,  maxabs = max(maxabs, m)
 *     when m > maxabs and bit_length(m) - 16 > a: packed[j] >>= (bit_length(m) - 16 - a) for j < i, a grown
 *     packed[i] = m >> a                       (m LSR a) | (hi LSL (32 - a)): a <= 31
 * The sign bits enter one register from the right behind a sentinel bit (ADCS; the sentinel's carry ends a word),
 * RBIT puts neuron 0 at bit 0. A shift a >= 32 (maxabs >= 2^47) is not handled: ok = 0 and the caller reruns the
 * portable pass. About 38 instructions a neuron for nk = 2 (GCC's loop with act_deriv_q15_pre: some 65).
 * Registers in the neuron loop: r0, r1 the sum then r (lo, hi); r2, r3 scratch; r4 the column walk, r5 dk's;
 * r6 the neuron's offset (-2 n .. 0, bytes), r7 packed + n, r8 w + n, r9 a, r10 2 n (the next layer's row, bytes),
 * r11, r12 maxabs, lr the sign word. Every register is saved and restored: the state goes through *p.
 */
static inline void ebp_arm_hidden_pack(ebp_arm_hidden_t *p) {
    __asm__ volatile("push {r0-r12, lr}\n\t"
                     "mov r0, %[p]\n\t"
                     "sub sp, sp, #24\n\t" /* [sp]: p, dk, dk + nk, signs, -2 n */
                     "str r0, [sp, #0]\n\t"
                     "ldr r1, [r0, #12]\n\t"
                     "str r1, [sp, #4]\n\t"
                     "ldr r2, [r0, #24]\n\t"
                     "add r1, r1, r2, lsl #1\n\t"
                     "str r1, [sp, #8]\n\t"
                     "ldr r1, [r0, #16]\n\t"
                     "str r1, [sp, #12]\n\t"
                     "ldr r10, [r0, #20]\n\t"
                     "lsl r10, r10, #1\n\t" /* r10: 2 n */
                     "rsb r6, r10, #0\n\t"
                     "str r6, [sp, #16]\n\t"
                     "ldr r1, [r0, #0]\n\t" /* f into packed: r1 y, r2 y's end, r7 packed, r3 kc, r4 c, r5 sr, r8 sl */
                     "add r2, r1, r10\n\t"
                     "ldr r7, [r0, #4]\n\t"
                     "ldr r3, [r0, #28]\n\t"
                     "ldr r4, [r0, #32]\n\t"
                     "ldr r5, [r0, #36]\n\t"
                     "ldr r8, [r0, #40]\n"
                     "1:\n\t"
                     "ldrsh r11, [r1], #2\n\t"
                     "sub r12, r3, r11\n\t"
                     "mla r11, r11, r12, r4\n\t"
                     "lsr r11, r11, r5\n\t"
                     "lsl r11, r11, r8\n\t"
                     "strh r11, [r7], #2\n\t"
                     "cmp r1, r2\n\t"
                     "bne 1b\n\t"
                     "ldr r8, [r0, #8]\n\t"
                     "add r8, r8, r10\n\t"
                     "movs r9, #0\n\t"
                     "movs r11, #0\n\t"
                     "movs r12, #0\n\t"
                     "mov lr, #1\n"
                     "10:\n\t" /* a neuron: the sum, its first product by SMULL */
                     "add r4, r8, r6\n\t"
                     "ldr r5, [sp, #4]\n\t"
                     "ldrsh r2, [r4]\n\t"
                     "ldrsh r3, [r5], #2\n\t"
                     "smull r0, r1, r2, r3\n\t"
                     "ldr r2, [sp, #8]\n\t"
                     "cmp r5, r2\n\t"
                     "beq 13f\n"
                     "11:\n\t"
                     "add r4, r4, r10\n\t"
                     "ldrsh r2, [r4]\n\t"
                     "ldrsh r3, [r5], #2\n\t"
                     "smlal r0, r1, r2, r3\n\t"
                     "ldr r2, [sp, #8]\n\t"
                     "cmp r5, r2\n\t"
                     "bne 11b\n"
                     "13:\n\t"
                     "ldrh r2, [r7, r6]\n\t" /* f */
                     "umull r0, r3, r0, r2\n\t"
                     "mla r1, r1, r2, r3\n\t" /* r */
                     "cmp r1, #0x80000000\n\t" /* C: r < 0 */
                     "adcs lr, lr, lr\n\t"
                     "bcs 30f\n" /* a word of signs full */
                     "31:\n\t"
                     "cmp r1, #0\n\t"
                     "bge 12f\n\t"
                     "rsbs r0, r0, #0\n\t"
                     "sbc r1, r1, r1, lsl #1\n" /* m = |r| */
                     "12:\n\t"
                     "subs r2, r11, r0\n\t"
                     "sbcs r2, r12, r1\n\t"
                     "bcc 20f\n" /* m > maxabs */
                     "21:\n\t"
                     "lsr r2, r0, r9\n\t"
                     "rsb r3, r9, #32\n\t"
                     "lsl r3, r1, r3\n\t"
                     "orr r2, r2, r3\n\t"
                     "strh r2, [r7, r6]\n\t"
                     "adds r6, r6, #2\n\t"
                     "bne 10b\n\t"
                     "cmp lr, #1\n\t" /* the last, partial word of signs */
                     "beq 40f\n\t"
                     "clz r2, lr\n\t"
                     "add r2, r2, #1\n\t"
                     "rbit r3, lr\n\t"
                     "lsr r3, r3, r2\n\t"
                     "ldr r2, [sp, #12]\n\t"
                     "str r3, [r2]\n"
                     "40:\n\t"
                     "movs r3, #1\n\t"
                     "b 50f\n"
                     "30:\n\t"
                     "rbit r2, lr\n\t"
                     "ldr r3, [sp, #12]\n\t"
                     "str r2, [r3], #4\n\t"
                     "str r3, [sp, #12]\n\t"
                     "mov lr, #1\n\t"
                     "b 31b\n"
                     "20:\n\t" /* a new maxabs: na = bit_length(m) - 16 */
                     "mov r11, r0\n\t"
                     "mov r12, r1\n\t"
                     "cbz r1, 22f\n\t"
                     "clz r2, r1\n\t"
                     "rsb r2, r2, #48\n\t"
                     "b 23f\n"
                     "22:\n\t"
                     "clz r2, r0\n\t"
                     "rsb r2, r2, #16\n"
                     "23:\n\t"
                     "cmp r2, r9\n\t"
                     "ble 21b\n\t"
                     "cmp r2, #32\n\t"
                     "bge 45f\n\t"
                     "sub r3, r2, r9\n\t" /* the earlier entries shifted on by na - a (>= 16: LSR gives 0) */
                     "mov r9, r2\n\t"
                     "ldr r4, [sp, #16]\n"
                     "24:\n\t"
                     "cmp r4, r6\n\t"
                     "beq 21b\n\t"
                     "ldrh r5, [r7, r4]\n\t"
                     "lsr r5, r5, r3\n\t"
                     "strh r5, [r7, r4]\n\t"
                     "adds r4, r4, #2\n\t"
                     "b 24b\n"
                     "45:\n\t"
                     "movs r3, #0\n"
                     "50:\n\t"
                     "ldr r0, [sp, #0]\n\t"
                     "str r11, [r0, #44]\n\t"
                     "str r12, [r0, #48]\n\t"
                     "str r3, [r0, #52]\n\t"
                     "add sp, sp, #24\n\t"
                     "pop {r0-r12, lr}\n\t"
                     :
                     : [p] "r"(p)
                     : "cc", "memory");
}
#define EBP_HAVE_ARCH_HIDDEN_PACK 1
#endif

#endif /* EBP_ARCH_ARMV7M_H */
